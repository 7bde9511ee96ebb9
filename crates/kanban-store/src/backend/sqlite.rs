//! The SQLite arm of the factory: a board file and its `PRAGMA data_version`
//! probe (its dispatch lock is `crate::sqlite::dispatch_lock`).

use std::path::Path;

use super::{BoardStore, HostLoad, OpenRequest};
use crate::Result;
use crate::dump::BoardDump;
use crate::sqlite::{OpenOptions, SqliteStore};
use crate::watch::ChangeProbe;

pub(super) fn open(path: &Path, req: &OpenRequest) -> Result<SqliteStore> {
    let opts = OpenOptions {
        create: req.create,
        busy_timeout_ms: req.busy_timeout_ms,
    };
    Ok(SqliteStore::open(path, opts, req.clock.clone())?
        .with_local_host(req.local_host_or_hostname()))
}

impl BoardStore for SqliteStore {
    fn open_change_probe(&self) -> Result<Box<dyn ChangeProbe>> {
        Ok(Box::new(self.change_probe()?))
    }

    fn dump_board(&self) -> Result<BoardDump> {
        self.dump_all()
    }

    fn load_board(&self, dump: &BoardDump) -> Result<()> {
        self.load_all(dump)
    }

    fn host_loads(&self) -> Result<Vec<HostLoad>> {
        self.read(crate::sqlite::host_loads::host_loads_of)
    }
}
