//! The board catalogue of a PostgreSQL database: which boards it holds and
//! their display metadata, in one table (`kanban__catalogue.boards`, see
//! `schema`) that every host using the database reads, so a board created
//! on one host exists on all of them.
//!
//! - `default` always exists (its row is written on first need);
//! - creating is one `INSERT … ON CONFLICT DO NOTHING`, so hosts racing to
//!   create a board make one row, and the row is updated in the same
//!   transaction (`SELECT … FOR UPDATE`): concurrent edits never interleave;
//! - archiving sets a flag: the board's schema stays (recoverable by
//!   creating the board again), `list --all` shows it, it cannot be opened
//!   by name meanwhile; deleting drops the schema and the row in one
//!   transaction;
//! - a board schema created by any other path (`kanban init`, `boards
//!   migrate`) is registered when the store creates it.
//!
//! Reads and writes borrow a connection from the database's pool (`pool`),
//! the one its boards share in this process; only migrating the catalogue
//! takes a connection of its own, for its session advisory lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kanban_store::backend::{
    BoardCatalogue, BoardHandle, BoardLocation, BoardMeta, CatalogueEntry, CatalogueError,
    CreatedBoard, DEFAULT_BOARD_SLUG, DEFAULT_NOT_REMOVABLE, MetaUpdate, OpenRequest,
    PostgresLocation, RemoveAction, RemovedBoard, check_update, now_secs, open_board,
    require_board_slug,
};
use kanban_store::{BackendError, StoreError};
use postgres::{GenericClient, Row};

use crate::conn::error_chain;
use crate::conn::{Conn, DbError, DbResult};
use crate::connect::Connector;
use crate::db::{classify_sql, leaves_session_unusable};
use crate::pool::{self, CheckoutError, Pool};
use crate::schema::{self, BoardSchema, CATALOGUE_VERSION};

/// The catalogue's columns, in the order [`PgCatalogue::meta_from_row`] reads them.
const COLUMNS: &str = "slug, name, description, icon, color, default_workdir, created_at, archived";

/// Make a board's row exist (default metadata); an existing one is kept.
const INSERT_SQL: &str = "INSERT INTO kanban__catalogue.boards (slug, created_at) \
     VALUES ($1, $2) ON CONFLICT (slug) DO NOTHING";

const UPDATE_SQL: &str = "UPDATE kanban__catalogue.boards SET name = $2, description = $3, \
     icon = $4, color = $5, default_workdir = $6, created_at = $7, archived = $8 WHERE slug = $1";

/// The boards of one PostgreSQL database, read and written on the
/// database's shared pool.
pub(crate) struct PgCatalogue {
    /// The database (its `default` board): other boards are `with_board`.
    database: PostgresLocation,
    /// Opens the migration's connection; names the database in errors.
    connector: Connector,
    pool: Arc<Pool>,
    /// The catalogue's schema is known to be migrated (this object).
    migrated: AtomicBool,
}

impl PgCatalogue {
    /// The catalogue of the database at `location`, on the pool of that
    /// database (created with `req.pool_size` when this process has none
    /// yet). Connects lazily.
    pub(crate) fn new(
        location: &PostgresLocation,
        req: &OpenRequest,
    ) -> Result<PgCatalogue, StoreError> {
        let database = location
            .with_board(DEFAULT_BOARD_SLUG)
            .map_err(|e| StoreError::Backend(BackendError::msg(format!("board catalogue: {e}"))))?;
        let redacted = BoardLocation::Postgres(database.clone()).redacted();
        let connector = Connector::new(&database, redacted)?;
        let pool = pool::shared(database.connection_url(), connector.config(), req.pool_size);
        Ok(PgCatalogue {
            connector,
            database,
            pool,
            migrated: AtomicBool::new(false),
        })
    }

    /// Run `f` on a pooled connection (migrating the catalogue first,
    /// once). The catalogue's SQL names its schema, so whichever board's
    /// `search_path` the connection has does not matter; a connection
    /// left unusable is closed by the pool.
    fn with_conn<T>(&self, f: impl FnOnce(&mut Conn) -> DbResult<T>) -> Result<T, CatalogueError> {
        self.ensure_migrated()?;
        let mut conn = self.pool.checkout().map_err(|e| self.checkout_error(e))?;
        let out = f(&mut conn);
        if let Err(DbError::Sql(e)) = &out
            && leaves_session_unusable(e)
        {
            conn.broken = true;
        }
        out.map_err(|e| CatalogueError::Store(self.classify(e)))
    }

    /// Create or migrate the catalogue once per object. Checked on a
    /// pooled connection; migrated on one of its own, since the migration
    /// lock is a session lock no pooled connection may carry.
    fn ensure_migrated(&self) -> Result<(), CatalogueError> {
        if self.migrated.load(Ordering::Acquire) {
            return Ok(());
        }
        let fail = |e| CatalogueError::Store(self.classify(e));
        let applied = {
            let mut conn = self.pool.checkout().map_err(|e| self.checkout_error(e))?;
            schema::catalogue_version(&mut conn).map_err(fail)?
        };
        if applied != CATALOGUE_VERSION {
            let mut conn = self.connector.connect().map_err(fail)?;
            ensure_catalogue(&mut conn, self.connector.redacted()).map_err(fail)?;
        }
        self.migrated.store(true, Ordering::Release);
        Ok(())
    }

    fn checkout_error(&self, e: CheckoutError) -> CatalogueError {
        CatalogueError::Store(e.at(self.connector.redacted()))
    }

    /// Errors of the connection itself name the (redacted) database.
    fn classify(&self, e: DbError) -> StoreError {
        match e {
            DbError::Store(s) => s,
            DbError::Sql(e) if e.code().is_none() => StoreError::Backend(BackendError::msg(
                format!("{}: {}", self.connector.redacted(), error_chain(&e)),
            )),
            DbError::Sql(e) => classify_sql(e),
        }
    }

    fn board_location(&self, slug: &str) -> Result<PostgresLocation, CatalogueError> {
        self.database
            .with_board(slug)
            .map_err(|e| CatalogueError::usage(e.to_string()))
    }

    /// Where a board's database is, for `db_path` (redacted).
    fn db_path(&self, slug: &str) -> String {
        match self.database.with_board(slug) {
            Ok(pg) => BoardLocation::Postgres(pg).redacted(),
            Err(_) => BoardLocation::Postgres(self.database.clone()).redacted(),
        }
    }

    fn meta_from_row(&self, r: &Row) -> DbResult<BoardMeta> {
        let slug: String = r.try_get(0)?;
        let mut m = BoardMeta::defaults(&slug, self.db_path(&slug));
        if let Some(name) = r.try_get::<_, Option<String>>(1)? {
            m.name = name;
        }
        m.description = r.try_get(2)?;
        m.icon = r.try_get(3)?;
        m.color = r.try_get(4)?;
        m.default_workdir = r.try_get(5)?;
        m.created_at = Some(r.try_get(6)?);
        m.archived = r.try_get(7)?;
        Ok(m)
    }

    /// The board's row, locked for update in `tx` (`None`: no row).
    fn locked_row(&self, tx: &mut impl GenericClient, slug: &str) -> DbResult<Option<BoardMeta>> {
        let sql =
            format!("SELECT {COLUMNS} FROM kanban__catalogue.boards WHERE slug = $1 FOR UPDATE");
        match tx.query_opt(&sql, &[&slug])? {
            Some(r) => Ok(Some(self.meta_from_row(&r)?)),
            None => Ok(None),
        }
    }
}

/// Create or migrate the catalogue of the database `conn` is on; a
/// catalogue a newer kanban migrated is refused.
fn ensure_catalogue(conn: &mut Conn, redacted: &str) -> DbResult<()> {
    let applied = schema::catalogue_version(conn)?;
    if applied > CATALOGUE_VERSION {
        return Err(DbError::Store(StoreError::Backend(BackendError::msg(
            format!(
                "{redacted}: board catalogue version {applied} is newer than this kanban knows \
             ({CATALOGUE_VERSION}); upgrade kanban"
            ),
        ))));
    }
    if applied < CATALOGUE_VERSION {
        schema::migrate_catalogue(conn, now_secs())?;
    }
    Ok(())
}

/// List a board whose schema the store just created (`kanban init`,
/// `boards migrate`, ...) in its database's catalogue; a board already
/// listed is left as it is.
pub(crate) fn register_board(conn: &mut Conn, slug: &str, redacted: &str) -> DbResult<()> {
    ensure_catalogue(conn, redacted)?;
    conn.client.execute(INSERT_SQL, &[&slug, &now_secs()])?;
    Ok(())
}

fn write_row(tx: &mut impl GenericClient, m: &BoardMeta) -> DbResult<()> {
    tx.execute(
        UPDATE_SQL,
        &[
            &m.slug,
            &m.name,
            &m.description,
            &m.icon,
            &m.color,
            &m.default_workdir,
            &m.created_at.unwrap_or_else(now_secs),
            &m.archived,
        ],
    )?;
    Ok(())
}

impl BoardCatalogue for PgCatalogue {
    fn boards(&self, include_archived: bool) -> Vec<CatalogueEntry> {
        let metas = match self.list(include_archived) {
            Ok(m) => m,
            Err(e) => {
                // Asked every second by a gateway's rescan: the outage
                // itself is reported by the boards' watchers.
                tracing::debug!(error = %e, "cannot read the board catalogue");
                vec![BoardMeta::defaults(DEFAULT_BOARD_SLUG, "")]
            }
        };
        metas
            .into_iter()
            .filter_map(|m| {
                let location = BoardLocation::Postgres(self.database.with_board(&m.slug).ok()?);
                Some(CatalogueEntry {
                    slug: m.slug,
                    archived: m.archived,
                    location,
                })
            })
            .collect()
    }

    fn list(&self, include_archived: bool) -> Result<Vec<BoardMeta>, CatalogueError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM kanban__catalogue.boards \
             WHERE slug = $1 OR $2 OR NOT archived \
             ORDER BY slug = $1 DESC, slug COLLATE \"C\""
        );
        let mut metas = self.with_conn(|conn| {
            let rows = conn
                .client
                .query(&sql, &[&DEFAULT_BOARD_SLUG, &include_archived])?;
            rows.iter()
                .map(|r| self.meta_from_row(r))
                .collect::<DbResult<Vec<_>>>()
        })?;
        if metas.first().is_none_or(|m| m.slug != DEFAULT_BOARD_SLUG) {
            let default = BoardMeta::defaults(DEFAULT_BOARD_SLUG, self.db_path(DEFAULT_BOARD_SLUG));
            metas.insert(0, default);
        }
        Ok(metas)
    }

    fn contains(&self, slug: &str) -> Result<bool, CatalogueError> {
        let slug = require_board_slug(slug)?;
        if slug == DEFAULT_BOARD_SLUG {
            return Ok(true);
        }
        self.with_conn(|conn| {
            let row = conn.client.query_opt(
                "SELECT NOT archived FROM kanban__catalogue.boards WHERE slug = $1",
                &[&slug],
            )?;
            Ok(match row {
                Some(r) => r.try_get(0)?,
                None => false,
            })
        })
    }

    fn location(&self, slug: &str) -> Result<BoardLocation, CatalogueError> {
        let slug = require_board_slug(slug)?;
        Ok(BoardLocation::Postgres(self.board_location(&slug)?))
    }

    fn metadata(&self, slug: &str) -> Result<BoardMeta, CatalogueError> {
        let slug = require_board_slug(slug)?;
        let sql = format!("SELECT {COLUMNS} FROM kanban__catalogue.boards WHERE slug = $1");
        let row = self.with_conn(|conn| match conn.client.query_opt(&sql, &[&slug])? {
            Some(r) => Ok(Some(self.meta_from_row(&r)?)),
            None => Ok(None),
        })?;
        Ok(row.unwrap_or_else(|| BoardMeta::defaults(&slug, self.db_path(&slug))))
    }

    fn write_metadata(
        &self,
        slug: &str,
        update: &MetaUpdate,
    ) -> Result<CreatedBoard, CatalogueError> {
        let slug = require_board_slug(slug)?;
        check_update(update)?;
        self.board_location(&slug)?;
        self.with_conn(|conn| {
            let mut tx = conn.client.transaction()?;
            let inserted = tx.execute(INSERT_SQL, &[&slug, &now_secs()])? == 1;
            let Some(mut meta) = self.locked_row(&mut tx, &slug)? else {
                return Err(DbError::Store(StoreError::Backend(BackendError::msg(
                    format!("board catalogue: the row of '{slug}' vanished while it was written"),
                ))));
            };
            // Creating an archived board brings it back, tasks and all.
            let restored = !inserted && meta.archived && update.archived.is_none();
            if restored {
                meta.archived = false;
            }
            update.apply(&mut meta);
            write_row(&mut tx, &meta)?;
            tx.commit()?;
            Ok(CreatedBoard {
                already_existed: !inserted && slug != DEFAULT_BOARD_SLUG,
                restored,
                meta,
            })
        })
    }

    fn update_metadata(
        &self,
        slug: &str,
        update: &MetaUpdate,
    ) -> Result<BoardMeta, CatalogueError> {
        let slug = require_board_slug(slug)?;
        let updated = self.with_conn(|conn| {
            let mut tx = conn.client.transaction()?;
            if slug == DEFAULT_BOARD_SLUG {
                tx.execute(INSERT_SQL, &[&slug, &now_secs()])?;
            }
            let Some(mut meta) = self
                .locked_row(&mut tx, &slug)?
                .filter(|m| !m.archived || m.slug == DEFAULT_BOARD_SLUG)
            else {
                return Ok(None);
            };
            // An unknown board is refused first, then a bad workdir.
            if let Err(refusal) = check_update(update) {
                return Ok(Some(Err(refusal)));
            }
            update.apply(&mut meta);
            write_row(&mut tx, &meta)?;
            tx.commit()?;
            Ok(Some(Ok(meta)))
        })?;
        updated.unwrap_or(Err(CatalogueError::NotFound { slug }))
    }

    /// Make the board's row exist (restoring an archived board), then
    /// create and migrate its schema and open it.
    fn create(&self, slug: &str, req: &OpenRequest) -> Result<BoardHandle, CatalogueError> {
        let created = self.write_metadata(slug, &MetaUpdate::default())?;
        let location = BoardLocation::Postgres(self.board_location(&created.meta.slug)?);
        let req = OpenRequest {
            create: true,
            ..req.clone()
        };
        Ok(open_board(&location, &req)?)
    }

    fn remove(&self, slug: &str, archive: bool) -> Result<RemovedBoard, CatalogueError> {
        let slug = require_board_slug(slug)?;
        if slug == DEFAULT_BOARD_SLUG {
            return Err(CatalogueError::refused(DEFAULT_NOT_REMOVABLE));
        }
        let board_schema = BoardSchema::new(&slug);
        let done = self.with_conn(|conn| {
            if archive {
                let n = conn.client.execute(
                    "UPDATE kanban__catalogue.boards SET archived = TRUE \
                     WHERE slug = $1 AND NOT archived",
                    &[&slug],
                )?;
                return Ok(n == 1);
            }
            let mut tx = conn.client.transaction()?;
            let rows = tx.execute(
                "DELETE FROM kanban__catalogue.boards WHERE slug = $1",
                &[&slug],
            )?;
            let has_schema: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)",
                    &[&board_schema.name()],
                )?
                .try_get(0)?;
            if rows == 0 && !has_schema {
                return Ok(false);
            }
            tx.batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                board_schema.quoted()
            ))?;
            tx.commit()?;
            // This session may have statements of the dropped board parked:
            // let the pool close it rather than lend them again.
            conn.broken = true;
            Ok(true)
        })?;
        if !done {
            return Err(CatalogueError::NotFound { slug });
        }
        Ok(RemovedBoard {
            slug,
            action: if archive {
                RemoveAction::Archived
            } else {
                RemoveAction::Deleted
            },
            new_path: None,
        })
    }
}
