use std::path::{Path, PathBuf};

use super::*;
use crate::catalogue::set_current_board;

fn env_home(home: &Path) -> MapEnv {
    MapEnv::new().with("HOME", home.to_string_lossy())
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn root_defaults_to_dot_hermes() {
    let t = tmp();
    let root = Root::resolve(&env_home(t.path())).unwrap();
    assert_eq!(root.path(), t.path().join(".hermes"));
}

#[test]
fn root_kanban_home_override_and_blank_ignored() {
    let t = tmp();
    let env = env_home(t.path()).with(ENV_KANBAN_HOME, "/srv/kb");
    assert_eq!(Root::resolve(&env).unwrap().path(), Path::new("/srv/kb"));
    let env = env_home(t.path()).with(ENV_KANBAN_HOME, "   ");
    assert_eq!(
        Root::resolve(&env).unwrap().path(),
        t.path().join(".hermes")
    );
    let env = env_home(t.path()).with(ENV_KANBAN_HOME, "~/kb");
    assert_eq!(Root::resolve(&env).unwrap().path(), t.path().join("kb"));
}

#[test]
fn root_profile_home_under_native_maps_to_native() {
    let t = tmp();
    let native = t.path().join(".hermes");
    std::fs::create_dir_all(native.join("profiles/coder")).unwrap();
    let env = env_home(t.path()).with(
        ENV_HERMES_HOME,
        native.join("profiles/coder").to_string_lossy(),
    );
    assert_eq!(Root::resolve(&env).unwrap().path(), native);
    // Not existing yet: still under ~/.hermes.
    let env = env_home(t.path()).with(
        ENV_HERMES_HOME,
        native.join("profiles/ghost").to_string_lossy(),
    );
    assert_eq!(Root::resolve(&env).unwrap().path(), native);
}

#[test]
fn root_custom_hermes_home_and_its_profiles_walk_up() {
    let t = tmp();
    let custom = t.path().join("opt/data");
    let env = env_home(&t.path().join("home")).with(ENV_HERMES_HOME, custom.to_string_lossy());
    assert_eq!(Root::resolve(&env).unwrap().path(), custom);
    let env = env_home(&t.path().join("home")).with(
        ENV_HERMES_HOME,
        custom.join("profiles/worker").to_string_lossy(),
    );
    assert_eq!(Root::resolve(&env).unwrap().path(), custom);
    // Kanban home beats HERMES_HOME.
    let env = env.with(ENV_KANBAN_HOME, "/elsewhere");
    assert_eq!(Root::resolve(&env).unwrap().path(), Path::new("/elsewhere"));
}

#[test]
fn root_without_home_is_an_error() {
    assert!(matches!(
        Root::resolve(&MapEnv::new()),
        Err(LayoutError::NoHome)
    ));
}

#[test]
fn default_board_uses_legacy_paths() {
    let root = Root::at("/r");
    let p = root.board_paths(DEFAULT_BOARD);
    assert_eq!(p.db, PathBuf::from("/r/kanban.db"));
    assert_eq!(p.workspaces_root, PathBuf::from("/r/kanban/workspaces"));
    assert_eq!(p.logs_dir, PathBuf::from("/r/kanban/logs"));
    assert_eq!(p.attachments_root, PathBuf::from("/r/kanban/attachments"));
    assert_eq!(
        p.board_json,
        PathBuf::from("/r/kanban/boards/default/board.json")
    );
    assert_eq!(p.dispatch_lock, PathBuf::from("/r/kanban.db.dispatch.lock"));
    assert_eq!(p.log_file("t_1"), PathBuf::from("/r/kanban/logs/t_1.log"));
    assert_eq!(
        root.gateway_lock(),
        PathBuf::from("/r/kanban/.dispatcher.lock")
    );
    assert_eq!(root.config_file(), PathBuf::from("/r/config.yaml"));
    assert_eq!(
        root.profile_dir("coder"),
        Some(PathBuf::from("/r/profiles/coder"))
    );
    assert_eq!(root.profile_dir("default"), Some(PathBuf::from("/r")));
    assert_eq!(root.profile_dir("../x"), None);
}

#[test]
fn named_board_paths() {
    let p = Root::at("/r").board_paths("proj");
    let b = PathBuf::from("/r/kanban/boards/proj");
    assert_eq!(p.db, b.join("kanban.db"));
    assert_eq!(p.workspaces_root, b.join("workspaces"));
    assert_eq!(p.logs_dir, b.join("logs"));
    assert_eq!(p.attachments_root, b.join("attachments"));
    assert_eq!(p.board_json, b.join("board.json"));
    assert_eq!(p.dispatch_lock, b.join("kanban.db.dispatch.lock"));
}

fn make_board(root: &Root, slug: &str) {
    create_board(root, slug, &MetaUpdate::default()).unwrap();
}

#[test]
fn resolution_order() {
    let t = tmp();
    let root = Root::at(t.path());
    let none = MapEnv::new();
    make_board(&root, "alpha");
    make_board(&root, "beta");

    let p = root.resolve_board(None, &none).unwrap();
    assert_eq!(
        (p.slug.as_str(), p.source),
        ("default", BoardSource::Default)
    );

    set_current_board(&root, "alpha").unwrap();
    let p = root.resolve_board(None, &none).unwrap();
    assert_eq!(
        (p.slug.as_str(), p.source),
        ("alpha", BoardSource::CurrentPointer)
    );

    let pinned = MapEnv::new().with(ENV_KANBAN_DB, "/pin/k.db");
    let p = root.resolve_board(None, &pinned).unwrap();
    assert_eq!((p.slug.as_str(), p.source), ("default", BoardSource::DbPin));
    assert_eq!(p.db, PathBuf::from("/pin/k.db"));
    assert_eq!(p.dispatch_lock, PathBuf::from("/pin/k.db.dispatch.lock"));

    let env = pinned.clone().with(ENV_KANBAN_BOARD, "Beta");
    let p = root.resolve_board(None, &env).unwrap();
    assert_eq!((p.slug.as_str(), p.source), ("beta", BoardSource::EnvBoard));
    assert_eq!(
        p.db,
        PathBuf::from("/pin/k.db"),
        "pins still apply to the env board"
    );

    let p = root.resolve_board(Some("ALPHA"), &env).unwrap();
    assert_eq!(
        (p.slug.as_str(), p.source),
        ("alpha", BoardSource::Explicit)
    );
    assert_eq!(
        p.db,
        root.board_paths("alpha").db,
        "explicit board beats the pin"
    );

    // A fenced worker stays on its pinned file.
    let worker = env.clone().with(ENV_KANBAN_TASK, "t_1");
    assert_eq!(
        root.resolve_board(Some("alpha"), &worker).unwrap().db,
        PathBuf::from("/pin/k.db")
    );
}

#[test]
fn stale_or_invalid_pointer_and_env_fall_back() {
    let t = tmp();
    let root = Root::at(t.path());
    create_private_dir(&root.kanban_dir()).unwrap();
    std::fs::write(root.current_pointer(), "gone\n").unwrap();
    assert_eq!(
        root.resolve_board(None, &MapEnv::new()).unwrap().slug,
        "default"
    );
    std::fs::write(root.current_pointer(), "../../etc\n").unwrap();
    assert_eq!(
        root.resolve_board(None, &MapEnv::new()).unwrap().slug,
        "default"
    );
    // `boards list/show` never fail, whatever the variable says.
    let env = MapEnv::new().with(ENV_KANBAN_BOARD, "nope");
    assert_eq!(root.current_board(&env), "default");
}

#[test]
fn bad_env_board_is_refused_naming_the_variable() {
    let t = tmp();
    let root = Root::at(t.path());
    let e = root
        .resolve_board(None, &MapEnv::new().with(ENV_KANBAN_BOARD, "nope"))
        .unwrap_err();
    assert_eq!(e.exit_code(), 1);
    assert!(
        matches!(&e, LayoutError::BoardNotFound(s) if s == "nope"),
        "{e}"
    );
    assert_eq!(
        root.env_board_value(None, &MapEnv::new().with(ENV_KANBAN_BOARD, " nope ")),
        Some("nope".into())
    );
    assert_eq!(
        root.env_board_value(Some("x"), &MapEnv::new().with(ENV_KANBAN_BOARD, "nope")),
        None
    );
    let e = root
        .resolve_board(None, &MapEnv::new().with(ENV_KANBAN_BOARD, "../x"))
        .unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("invalid board slug"), "{e}");
    // An explicit board does not look at the variable; blank means unset.
    let env = MapEnv::new().with(ENV_KANBAN_BOARD, "nope");
    assert_eq!(
        root.resolve_board(Some("default"), &env).unwrap().slug,
        "default"
    );
    let blank = MapEnv::new().with(ENV_KANBAN_BOARD, "  ");
    assert_eq!(root.resolve_board(None, &blank).unwrap().slug, "default");
}

#[test]
fn explicit_board_errors() {
    let t = tmp();
    let root = Root::at(t.path());
    let e = root.resolve_board(Some("a/b"), &MapEnv::new()).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("invalid board slug"), "{e}");
    let e = root
        .resolve_board(Some("ghost"), &MapEnv::new())
        .unwrap_err();
    assert_eq!(e.exit_code(), 1);
    assert_eq!(
        e.to_string(),
        "board 'ghost' does not exist. Create it with `kanban boards create ghost`."
    );
    assert_eq!(
        root.resolve_board(Some("  "), &MapEnv::new())
            .unwrap_err()
            .exit_code(),
        2
    );
    // default never needs creating.
    assert_eq!(
        root.resolve_board(Some("default"), &MapEnv::new())
            .unwrap()
            .slug,
        "default"
    );
}

#[test]
fn blank_pins_ignored_and_pins_independent() {
    let env = MapEnv::new()
        .with(ENV_KANBAN_DB, " ")
        .with(ENV_KANBAN_WORKSPACES_ROOT, "/w")
        .with(ENV_KANBAN_ATTACHMENTS_ROOT, "");
    let t = tmp();
    let root = Root::at(t.path());
    let p = root.resolve_board(None, &env).unwrap();
    assert_eq!(p.db, t.path().join("kanban.db"));
    assert_eq!(p.workspaces_root, PathBuf::from("/w"));
    assert_eq!(p.attachments_root, t.path().join("kanban/attachments"));
    assert_eq!(p.source, BoardSource::Default);
}

#[test]
fn metadata_round_trip_and_format() {
    let t = tmp();
    let root = Root::at(t.path());
    let c = create_board(
        &root,
        "atm10-server",
        &MetaUpdate {
            description: Some("Mod pack".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!c.already_existed);
    assert_eq!(c.meta.name, "Atm10 Server");
    let text = std::fs::read_to_string(root.board_dir("atm10-server").join("board.json")).unwrap();
    let ts = c.meta.created_at.unwrap();
    assert_eq!(
        text,
        format!(
            "{{\n  \"slug\": \"atm10-server\",\n  \"name\": \"Atm10 Server\",\n  \"description\": \"Mod pack\",\n  \"icon\": \"\",\n  \"color\": \"\",\n  \"default_workdir\": null,\n  \"created_at\": {ts},\n  \"archived\": false\n}}\n"
        )
    );
    // Idempotent; unknown keys preserved; created_at kept.
    let p = root.board_dir("atm10-server").join("board.json");
    std::fs::write(
        &p,
        text.replace(
            "\"archived\": false",
            "\"archived\": false,\n  \"future\": [1]",
        ),
    )
    .unwrap();
    let again = create_board(&root, "atm10-server", &MetaUpdate::default()).unwrap();
    assert!(again.already_existed);
    assert_eq!(again.meta.created_at, Some(ts));
    assert_eq!(again.meta.description, "Mod pack");
    assert!(std::fs::read_to_string(&p).unwrap().contains("\"future\""));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(root.board_dir("atm10-server"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}

#[test]
fn malformed_board_json_reads_as_defaults() {
    let t = tmp();
    let root = Root::at(t.path());
    create_private_dir(&root.board_dir("x")).unwrap();
    std::fs::write(root.board_dir("x").join("board.json"), "{not json").unwrap();
    let m = read_board_metadata(&root, "x");
    assert_eq!(m.name, "X");
    assert_eq!(m.db_path, root.board_dir("x").join("kanban.db"));
    std::fs::write(
        root.board_dir("x").join("board.json"),
        r#"{"slug":"evil","name":"Nice"}"#,
    )
    .unwrap();
    let m = read_board_metadata(&root, "x");
    assert_eq!((m.slug.as_str(), m.name.as_str()), ("x", "Nice"));
}

#[test]
fn list_boards_order_and_filters() {
    let t = tmp();
    let root = Root::at(t.path());
    assert_eq!(list_boards(&root, false).len(), 1);
    make_board(&root, "zeta");
    make_board(&root, "alpha");
    // A directory with a DB only counts; one with neither does not.
    create_private_dir(&root.board_dir("dbonly")).unwrap();
    std::fs::write(root.board_dir("dbonly").join("kanban.db"), b"").unwrap();
    create_private_dir(&root.board_dir("empty")).unwrap();
    create_private_dir(&root.board_dir("Upper")).unwrap();
    std::fs::write(root.board_dir("Upper").join("board.json"), "{}").unwrap();
    write_board_metadata(
        &root,
        "zeta",
        &MetaUpdate {
            archived: Some(true),
            ..Default::default()
        },
    )
    .unwrap();
    remove_board(&root, "alpha", true).unwrap();
    make_board(&root, "alpha");
    let slugs = |all| {
        list_boards(&root, all)
            .into_iter()
            .map(|b| b.slug)
            .collect::<Vec<_>>()
    };
    assert_eq!(slugs(false), ["default", "alpha", "dbonly"]);
    assert_eq!(slugs(true), ["default", "alpha", "dbonly", "zeta"]);
}

#[test]
fn remove_archives_with_suffix_and_clears_pointer() {
    let t = tmp();
    let root = Root::at(t.path());
    make_board(&root, "p");
    set_current_board(&root, "p").unwrap();
    let r = boards::remove_board_at(&root, "p", true, 1000).unwrap();
    assert_eq!(r.action, RemoveAction::Archived);
    assert_eq!(
        r.new_path.as_deref(),
        Some(root.archived_root().join("p-1000").as_path())
    );
    assert!(!root.current_pointer().exists());
    assert!(!root.board_exists("p"));
    make_board(&root, "p");
    let r = boards::remove_board_at(&root, "p", true, 1000).unwrap();
    assert_eq!(r.new_path.unwrap(), root.archived_root().join("p-1000-1"));
    make_board(&root, "p");
    let r = remove_board(&root, "p", false).unwrap();
    assert_eq!(r.action, RemoveAction::Deleted);
    assert_eq!(
        serde_json::to_value(&r).unwrap(),
        serde_json::json!({"slug": "p", "action": "deleted", "new_path": ""})
    );
    assert!(!root.board_dir("p").exists());
    assert!(matches!(
        remove_board(&root, "default", true),
        Err(LayoutError::DefaultNotRemovable)
    ));
    assert!(matches!(
        remove_board(&root, "p", true),
        Err(LayoutError::BoardNotFound(_))
    ));
}

#[test]
fn switch_rename_workdir() {
    let t = tmp();
    let root = Root::at(t.path());
    assert!(matches!(
        set_current_board(&root, "ghost"),
        Err(LayoutError::BoardNotFound(_))
    ));
    make_board(&root, "b");
    set_current_board(&root, "B").unwrap();
    assert_eq!(
        std::fs::read_to_string(root.current_pointer()).unwrap(),
        "b\n"
    );
    assert_eq!(root.current_board(&MapEnv::new()), "b");
    assert_eq!(
        rename_board(&root, "b", "  Big Board ").unwrap().name,
        "Big Board"
    );
    assert_eq!(rename_board(&root, "b", " ").unwrap().name, "B");
    assert!(set_default_workdir(&root, "b", Some("rel/dir")).is_err());
    assert!(set_default_workdir(&root, "b", Some("/definitely/not/here")).is_err());
    let wd = t.path().to_string_lossy().into_owned();
    assert_eq!(
        set_default_workdir(&root, "b", Some(&wd))
            .unwrap()
            .default_workdir,
        Some(wd)
    );
    assert_eq!(
        set_default_workdir(&root, "b", None)
            .unwrap()
            .default_workdir,
        None
    );
    assert!(rename_board(&root, "ghost", "x").is_err());
    // default can carry metadata too.
    assert_eq!(rename_board(&root, "default", "Main").unwrap().name, "Main");
    assert!(root.board_dir("default").join("board.json").exists());
}

#[test]
fn display_names() {
    assert_eq!(default_display_name("atm10-server"), "Atm10 Server");
    assert_eq!(default_display_name("proj_1"), "Proj 1");
    assert_eq!(default_display_name("default"), "Default");
}
