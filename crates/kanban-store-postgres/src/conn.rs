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
    pub(crate) client: Client,
    pub(crate) statements: HashMap<String, Statement>,
}

impl Conn {
    pub(crate) fn new(client: Client) -> Conn {
        Conn {
            client,
            statements: HashMap::new(),
        }
    }
}
