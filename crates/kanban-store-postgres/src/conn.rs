//! A live connection with its statement cache, and the backend's error
//! type: the pieces every other module builds on (no dependencies inside
//! the crate).

use std::collections::HashMap;

use kanban_core::CoreError;
use kanban_store::StoreError;
use postgres::types::ToSql;
use postgres::{Client, Statement};

/// Error inside the backend: PostgreSQL's or an already-typed store error.
#[derive(Debug)]
pub(crate) enum DbError {
    Sql(postgres::Error),
    Store(StoreError),
}

pub(crate) type DbResult<T> = std::result::Result<T, DbError>;

impl From<postgres::Error> for DbError {
    fn from(e: postgres::Error) -> Self {
        DbError::Sql(e)
    }
}

impl From<StoreError> for DbError {
    fn from(e: StoreError) -> Self {
        DbError::Store(e)
    }
}

impl From<CoreError> for DbError {
    fn from(e: CoreError) -> Self {
        DbError::Store(StoreError::Invalid(e))
    }
}

/// A SQL parameter list.
pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// A live connection with the statements it has prepared.
///
/// A pooled connection serves every board of its database in turn, so the
/// cache is kept per schema: `statements` holds those prepared under the
/// current `search_path` only, the other boards' wait in `parked`. A
/// statement prepared for one board is never run for another (PostgreSQL
/// would re-parse it under the new path, against that board's tables).
pub(crate) struct Conn {
    pub(crate) client: OwnedClient,
    /// Prepared under the current `search_path` (see [`Conn::use_schema`]).
    pub(crate) statements: HashMap<String, Statement>,
    /// The schema on the session's `search_path`; `None` before the first
    /// [`Conn::use_schema`] (or after one failed).
    schema: Option<String>,
    /// Statements of the other schemas this session served, by schema.
    parked: HashMap<String, HashMap<String, Statement>>,
    /// Left in a state the next user must not inherit: the pool closes it.
    pub(crate) broken: bool,
    /// When the last user gave it back to the pool (or it was opened).
    pub(crate) idle_since: std::time::Instant,
    /// Set on a stand-in for a connection that could not be opened (it
    /// has no client): the pool lends it so that a waiting caller learns of
    /// the failure at once (see `pool`).
    pub(crate) connect_error: Option<String>,
}

impl Conn {
    pub(crate) fn new(client: Client) -> Conn {
        Conn {
            client: OwnedClient(Some(client)),
            statements: HashMap::new(),
            schema: None,
            parked: HashMap::new(),
            broken: false,
            idle_since: std::time::Instant::now(),
            connect_error: None,
        }
    }

    /// The stand-in for a connection that could not be opened.
    pub(crate) fn failed(error: String) -> Conn {
        Conn {
            client: OwnedClient(None),
            statements: HashMap::new(),
            schema: None,
            parked: HashMap::new(),
            broken: true,
            idle_since: std::time::Instant::now(),
            connect_error: Some(error),
        }
    }

    /// Put schema `name` (`quoted`: as an identifier) on the session's
    /// `search_path` unless it is there already (no round trip then), and
    /// bring out that schema's statements.
    pub(crate) fn use_schema(&mut self, name: &str, quoted: &str) -> Result<(), postgres::Error> {
        if self.schema.as_deref() == Some(name) {
            return Ok(());
        }
        // Park first: whatever happens next, these belong to the old path.
        let current = std::mem::take(&mut self.statements);
        if let Some(old) = self.schema.take() {
            self.parked.insert(old, current);
        }
        self.client
            .batch_execute(&format!("SET search_path TO {quoted}"))?;
        self.statements = self.parked.remove(name).unwrap_or_default();
        self.schema = Some(name.to_string());
        Ok(())
    }
}

/// The blocking client, closed off any async runtime when dropped.
///
/// `postgres::Client` runs its own runtime and closes the connection with
/// `block_on` when dropped, which panics on a thread that is driving a
/// tokio runtime (the gateway's handlers, the MCP server). Such a drop
/// hands the client to a short-lived thread of its own instead.
pub(crate) struct OwnedClient(Option<Client>);

impl std::ops::Deref for OwnedClient {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.0.as_ref().expect("client present until drop")
    }
}

impl std::ops::DerefMut for OwnedClient {
    fn deref_mut(&mut self) -> &mut Client {
        self.0.as_mut().expect("client present until drop")
    }
}

impl Drop for OwnedClient {
    fn drop(&mut self) {
        let Some(client) = self.0.take() else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            // Closing only sends a terminate message; nobody waits for it.
            let _ = std::thread::Builder::new()
                .name("kanban-pg-close".into())
                .spawn(move || drop(client));
        }
    }
}

/// `postgres::Error` prints only its kind ("error connecting to server");
/// the cause (no such socket, authentication failed, the server's message)
/// is what the operator needs.
pub(crate) fn error_chain(e: &postgres::Error) -> String {
    let mut out = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}
