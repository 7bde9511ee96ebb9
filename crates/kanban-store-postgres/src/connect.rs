//! Opening connections to the board's database: the URL parsed once, the
//! board's schema on every connection's `search_path`. These are the
//! dedicated connections (a change probe's `LISTEN`, the dispatch lock's
//! and the migration lock's sessions); everything else borrows from the
//! database's pool (`pool`), which gets its configuration from here.

use std::str::FromStr;

use kanban_store::backend::PostgresLocation;
use kanban_store::{BackendError, StoreError};
use postgres::{Config, NoTls};

use crate::db::{Conn, DbResult};
use crate::schema::BoardSchema;

/// `application_name` of our dedicated connections (shown in
/// `pg_stat_activity`; the pooled ones are `crate::pool::POOL_APPLICATION_NAME`).
const APPLICATION_NAME: &str = "kanban";

/// Everything needed to open another connection to one board.
pub(crate) struct Connector {
    config: Config,
    schema: BoardSchema,
    redacted: String,
}

impl Connector {
    /// Parse the location's URL. The error never repeats the URL itself
    /// (it may hold a password), only the redacted location.
    pub(crate) fn new(
        location: &PostgresLocation,
        redacted: String,
    ) -> Result<Connector, StoreError> {
        let mut config = Config::from_str(location.connection_url()).map_err(|e| {
            StoreError::Backend(BackendError::msg(format!(
                "cannot use {redacted}: bad PostgreSQL URL ({})",
                // The parser's message names the bad part, not the secret.
                e.to_string().replace(location.connection_url(), "<url>")
            )))
        })?;
        config.application_name(APPLICATION_NAME);
        Ok(Connector {
            config,
            schema: BoardSchema::new(location.board()),
            redacted,
        })
    }

    pub(crate) fn schema(&self) -> &BoardSchema {
        &self.schema
    }

    /// The location for messages.
    pub(crate) fn redacted(&self) -> &str {
        &self.redacted
    }

    /// The connection settings, for the database's pool.
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// A new connection with the board's schema on its search path.
    pub(crate) fn connect(&self) -> DbResult<Conn> {
        let mut conn = Conn::new(self.config.connect(NoTls)?);
        conn.use_schema(self.schema.name(), &self.schema.quoted())?;
        Ok(conn)
    }
}
