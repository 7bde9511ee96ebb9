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
pub(crate) struct Conn {
    pub(crate) client: OwnedClient,
    pub(crate) statements: HashMap<String, Statement>,
}

impl Conn {
    pub(crate) fn new(client: Client) -> Conn {
        Conn {
            client: OwnedClient(Some(client)),
            statements: HashMap::new(),
        }
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
