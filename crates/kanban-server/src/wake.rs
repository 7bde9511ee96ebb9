//! How a gateway's board watchers wake: on the poke our own processes
//! send after each commit (`kanban_store::sqlite::poke`), on the board
//! files' change (inotify), and on the poll as a last resort.
//!
//! Only the gateway (which holds the root's lock) listens for pokes; an
//! API server alone (`RunningServer`) and `kanban top` do not.

use std::time::Duration;

use kanban_store::watch::ChangeProbe;

/// Internal, for tests of the poke: when set (non-empty) in a gateway's
/// environment, its watchers wake on pokes only: no file watch, and the
/// poll every [`POKES_ONLY_POLL`].
pub const ENV_WAKE_ON_POKES_ONLY: &str = "KANBAN_INTERNAL_WAKE_ON_POKES_ONLY";

/// The watchers' poll under [`ENV_WAKE_ON_POKES_ONLY`].
pub const POKES_ONLY_POLL: Duration = Duration::from_secs(3600);

/// Whether a hub's watchers listen for pokes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PokeWake {
    /// Not a gateway: file watch and poll only.
    #[default]
    Off,
    /// The gateway: pokes, file watch and poll.
    On,
    /// [`ENV_WAKE_ON_POKES_ONLY`]: pokes only (and the hour's poll).
    Only,
}

impl PokeWake {
    /// A gateway's mode, from its environment.
    pub fn for_gateway() -> PokeWake {
        match std::env::var_os(ENV_WAKE_ON_POKES_ONLY) {
            Some(v) if !v.is_empty() => PokeWake::Only,
            _ => PokeWake::On,
        }
    }

    /// Set up a freshly opened probe for this mode.
    pub fn apply(self, probe: &mut dyn ChangeProbe) {
        match self {
            PokeWake::Off => {}
            PokeWake::On => {
                probe.listen_for_pokes();
            }
            PokeWake::Only => {
                probe.listen_for_pokes();
                probe.drop_file_watch();
            }
        }
    }

    /// The watchers' poll interval, given the configured one.
    pub fn poll(self, configured: Duration) -> Duration {
        match self {
            PokeWake::Only => POKES_ONLY_POLL,
            _ => configured,
        }
    }
}
