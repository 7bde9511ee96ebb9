//! Opening connections to the board's database: the URL parsed once, the
//! board's schema on every connection's `search_path`.

use std::str::FromStr;

use kanban_store::backend::PostgresLocation;
use kanban_store::{BackendError, StoreError};
use postgres::{Config, NoTls};

use crate::db::{Conn, DbResult};
use crate::schema::BoardSchema;

/// `application_name` of our connections (shown in `pg_stat_activity`).
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

    /// A new connection with the board's schema on its search path.
    pub(crate) fn connect(&self) -> DbResult<Conn> {
        let mut client = self.config.connect(NoTls)?;
        client.batch_execute(&format!("SET search_path TO {}", self.schema.quoted()))?;
        Ok(Conn::new(client))
    }
}
