//! The board catalogue of a PostgreSQL database (`kanban__catalogue`):
//! what every host using the database sees. Two catalogue objects on one
//! database stand for two hosts. Real PostgreSQL (the test kit's cluster).

use std::sync::{Arc, Barrier};

use kanban_store::NewTask;
use kanban_store::backend::{
    BoardCatalogue, BoardLocation, CatalogueError, MetaUpdate, OpenRequest, PostgresLocation,
    RemoveAction, open_board, postgres_catalogue,
};
use kanban_testkit::postgres::TestCluster;

/// A pool size no default has, to see who sized the pool.
const CATALOGUE_POOL_SIZE: u32 = 3;
/// How long a closed connection's backend may take to leave `pg_stat_activity`.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A fresh database: its cluster, name and `default` location.
fn database(prefix: &str) -> Option<(&'static TestCluster, String, PostgresLocation)> {
    kanban_store_postgres::register();
    let pg = kanban_testkit::postgres::cluster()?;
    let db = pg.unique_database(prefix);
    let BoardLocation::Postgres(loc) = BoardLocation::parse(&pg.url(&db)).expect("URL") else {
        panic!("not a PostgreSQL location")
    };
    Some((pg, db, loc))
}

fn catalogue(loc: &PostgresLocation) -> Box<dyn BoardCatalogue> {
    postgres_catalogue(loc, &OpenRequest::existing()).expect("catalogue")
}

fn slugs(cat: &dyn BoardCatalogue, all: bool) -> Vec<String> {
    cat.list(all)
        .expect("list")
        .into_iter()
        .map(|m| m.slug)
        .collect()
}

fn schema_exists(pg: &TestCluster, db: &str, schema: &str) -> bool {
    pg.client(db)
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            &[&schema],
        )
        .expect("query")
        .get(0)
}

#[test]
fn boards_are_created_listed_located_archived_and_deleted_for_every_host() {
    let Some((pg, db, loc)) = database("kb_catalogue") else {
        return;
    };
    let (host_a, host_b) = (catalogue(&loc), catalogue(&loc));
    // The default board exists before anything was written.
    assert!(host_a.exists("default") && !host_a.exists("proj"));
    assert_eq!(slugs(&*host_b, true), ["default"]);
    assert!(matches!(
        host_a.locate("proj"),
        Err(CatalogueError::NotFound { ref slug }) if slug == "proj"
    ));
    assert_eq!(host_a.locate("Bad Slug!").unwrap_err().exit_code(), 2);
    assert_eq!(host_a.locate("proj").unwrap_err().exit_code(), 1);

    let update = MetaUpdate {
        name: Some("Project X".into()),
        icon: Some("🚀".into()),
        ..MetaUpdate::default()
    };
    let created = host_a.write_metadata("Proj", &update).unwrap();
    assert!(!created.already_existed && !created.restored);
    assert_eq!(created.meta.slug, "proj");
    let board = host_a.create("proj", &OpenRequest::existing()).unwrap();
    board
        .store()
        .create_task(&NewTask {
            title: "kept".into(),
            ..Default::default()
        })
        .unwrap();
    // Idempotent: the existing board, its metadata unchanged.
    let again = host_b
        .write_metadata("proj", &MetaUpdate::default())
        .unwrap();
    assert!(again.already_existed);
    assert_eq!(again.meta.name, "Project X");
    host_b.create("proj", &OpenRequest::existing()).unwrap();

    // Host B sees host A's board, its metadata and where it lives.
    assert!(host_b.exists("proj"));
    assert_eq!(slugs(&*host_b, false), ["default", "proj"]);
    let meta = host_b.metadata("proj").unwrap();
    assert_eq!(
        (meta.name.as_str(), meta.icon.as_str()),
        ("Project X", "🚀")
    );
    assert!(meta.created_at.is_some_and(|t| t > 0));
    assert!(meta.db_path.contains("(board proj)"), "{}", meta.db_path);
    let BoardLocation::Postgres(at) = host_b.locate("proj").unwrap() else {
        panic!("not postgres")
    };
    assert_eq!(at.board(), "proj");
    let renamed = host_b.rename("proj", "Renamed").unwrap();
    assert_eq!(renamed.icon, "🚀", "a rename keeps the other fields");
    assert_eq!(host_a.metadata("proj").unwrap().name, "Renamed");
    assert!(matches!(
        host_a.rename("nope", "x"),
        Err(CatalogueError::NotFound { .. })
    ));
    assert_eq!(
        host_a
            .set_default_workdir("proj", Some("relative"))
            .unwrap_err()
            .exit_code(),
        2
    );

    // Archived: not listed or openable, the schema and its tasks kept.
    let archived = host_a.remove("proj", true).unwrap();
    assert_eq!(
        (archived.action, archived.new_path),
        (RemoveAction::Archived, None)
    );
    assert!(!host_b.exists("proj"));
    assert_eq!(slugs(&*host_b, false), ["default"]);
    let all = host_b.list(true).unwrap();
    assert!(
        all.iter().any(|m| m.slug == "proj" && m.archived),
        "{all:?}"
    );
    assert!(host_b.open("proj", &OpenRequest::existing()).is_err());
    assert!(matches!(
        host_b.remove("proj", true),
        Err(CatalogueError::NotFound { .. })
    ));
    assert!(schema_exists(pg, &db, "kanban_proj"));
    // Creating it again brings it back, tasks and all.
    let restored = host_b
        .write_metadata("proj", &MetaUpdate::default())
        .unwrap();
    assert!(restored.restored && restored.already_existed);
    let back = host_a.open("proj", &OpenRequest::existing()).unwrap();
    assert_eq!(
        back.store()
            .stats()
            .unwrap()
            .by_status
            .values()
            .sum::<i64>(),
        1
    );
    drop((board, back));

    // Deleted: schema and row gone in one go.
    let deleted = host_b.remove("proj", false).unwrap();
    assert_eq!(deleted.action, RemoveAction::Deleted);
    assert!(!schema_exists(pg, &db, "kanban_proj"));
    assert_eq!(slugs(&*host_a, true), ["default"]);
    assert!(matches!(
        host_a.remove("proj", false),
        Err(CatalogueError::NotFound { .. })
    ));
    let refused = host_a.remove("default", false).unwrap_err();
    assert_eq!(refused.exit_code(), 1);
    assert!(
        refused.to_string().contains("cannot be removed"),
        "{refused}"
    );
}

#[test]
fn hosts_racing_to_create_one_board_make_one_row() {
    let Some((pg, db, loc)) = database("kb_catalogue_race") else {
        return;
    };
    const HOSTS: usize = 4;
    let barrier = Arc::new(Barrier::new(HOSTS));
    let handles: Vec<_> = (0..HOSTS)
        .map(|i| {
            let (loc, barrier) = (loc.clone(), barrier.clone());
            std::thread::spawn(move || {
                let cat = catalogue(&loc);
                // Connect and migrate the catalogue first, then race.
                assert!(cat.exists("default"));
                barrier.wait();
                let update = MetaUpdate {
                    description: Some(format!("host {i}")),
                    ..MetaUpdate::default()
                };
                let created = cat.write_metadata("race", &update).unwrap();
                cat.create("race", &OpenRequest::existing()).unwrap();
                created.already_existed
            })
        })
        .collect();
    let existed: Vec<bool> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(existed.iter().filter(|e| !**e).count(), 1, "{existed:?}");
    let rows: i64 = pg
        .client(&db)
        .query_one(
            "SELECT COUNT(*) FROM kanban__catalogue.boards WHERE slug = 'race'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
    assert_eq!(slugs(&*catalogue(&loc), false), ["default", "race"]);
}

#[test]
fn boards_created_by_the_store_or_before_the_catalogue_are_listed() {
    let Some((pg, db, loc)) = database("kb_catalogue_adopt") else {
        return;
    };
    // `kanban init` / `boards migrate` create a board through the store.
    let at = BoardLocation::Postgres(loc.with_board("ops-team").unwrap());
    drop(open_board(&at, &OpenRequest::create()).unwrap());
    assert_eq!(slugs(&*catalogue(&loc), false), ["default", "ops-team"]);
    // A database whose boards predate the catalogue: they are adopted.
    pg.client(&db)
        .batch_execute("DROP SCHEMA kanban__catalogue CASCADE")
        .unwrap();
    let cat = catalogue(&loc);
    assert_eq!(slugs(&*cat, false), ["default", "ops-team"]);
    assert_eq!(cat.metadata("ops-team").unwrap().name, "Ops Team");
}

/// Backends connected to `db` whose `application_name` is `app`.
fn backends(pg: &TestCluster, db: &str, app: &str) -> i64 {
    pg.client(db)
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
            &[&db, &app],
        )
        .expect("query")
        .get(0)
}

#[test]
fn the_catalogue_reads_and_writes_on_the_pool_its_boards_share() {
    let Some((pg, db, loc)) = database("kb_catalogue_pool") else {
        return;
    };
    let req = OpenRequest::existing().with_pool_size(Some(CATALOGUE_POOL_SIZE));
    let cat = postgres_catalogue(&loc, &req).expect("catalogue");
    // The first use migrates the catalogue, then reads and writes.
    let update = MetaUpdate {
        name: Some("Project".into()),
        ..MetaUpdate::default()
    };
    cat.write_metadata("proj", &update).unwrap();
    assert_eq!(slugs(&*cat, false), ["default", "proj"]);
    assert!(cat.contains("proj").unwrap());
    assert_eq!(cat.metadata("proj").unwrap().name, "Project");
    // No connection of its own stays open (the migration's is closed);
    // what it used is pooled.
    let dedicated = kanban_testkit::wait_for(CLOSE_WAIT, || {
        (backends(pg, &db, "kanban") == 0).then_some(())
    });
    assert!(
        dedicated.is_some(),
        "the catalogue keeps {} dedicated connection(s)",
        backends(pg, &db, "kanban")
    );
    let pooled = backends(pg, &db, kanban_store_postgres::POOL_APPLICATION_NAME);
    assert!(pooled >= 1, "the catalogue used no pooled connection");
    // A board opened afterwards shares that very pool, sized by the
    // catalogue's request.
    let at = BoardLocation::Postgres(loc.with_board("proj").unwrap());
    let board = open_board(&at, &OpenRequest::create()).unwrap();
    let status = board.pool_status().expect("a pooled store");
    assert_eq!(status.size, CATALOGUE_POOL_SIZE);
    assert!(status.idle + status.busy >= pooled as u32, "{status:?}");
}
