//! `list` output held back while the promotion sweep runs beside it.
//!
//! `kanban list` promotes first (a todo task whose parents finished shows
//! as ready), as the reference does. On a 100k-task board that sweep
//! costs about as much as the listing, and it almost always finds nothing
//! to promote. So the sweep runs on a second connection and thread while
//! the listing is produced into [`HeldOutput`]: nothing reaches stdout
//! until the sweep has answered. It promoted nothing: the held text goes
//! out and the rest streams. It promoted something: the held text is
//! dropped and the listing starts again on the new state. Memory stays
//! bounded: past [`HOLD_BYTES`] the listing waits for the sweep.

use std::io::Write;
use std::sync::mpsc::{Receiver, TryRecvError};

use anyhow::{Result, anyhow};

/// Listing text held back at most while the sweep runs.
pub const HOLD_BYTES: usize = 4 * 1024 * 1024;

/// How many tasks the sweep promoted.
pub type SweepResult = Result<usize>;

/// How a listing through [`HeldOutput`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// Everything went out (or stdout closed): done.
    Written,
    /// The sweep promoted tasks: list again (the sweep is over).
    ListAgain,
}

pub struct HeldOutput<W: Write> {
    out: W,
    held: Vec<u8>,
    /// The sweep's answer, while it has not come.
    sweep: Option<Receiver<SweepResult>>,
    list_again: bool,
}

impl<W: Write> HeldOutput<W> {
    pub fn new(out: W, sweep: Receiver<SweepResult>) -> Self {
        HeldOutput {
            out,
            held: Vec::new(),
            sweep: Some(sweep),
            list_again: false,
        }
    }

    /// Write (or hold) `text`. `Ok(false)`: stop this listing, it is
    /// stale (see [`HeldOutput::finish`]).
    pub fn write(&mut self, text: &[u8]) -> Result<bool> {
        if let Some(sweep) = &self.sweep {
            let answer = if self.held.len() + text.len() > HOLD_BYTES {
                Some(sweep.recv().map_err(|_| sweep_lost())?)
            } else {
                match sweep.try_recv() {
                    Ok(answer) => Some(answer),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => return Err(sweep_lost()),
                }
            };
            match answer {
                None => {
                    self.held.extend_from_slice(text);
                    return Ok(true);
                }
                Some(answer) => self.settle(answer)?,
            }
        }
        if self.list_again {
            return Ok(false);
        }
        self.out.write_all(text)?;
        Ok(true)
    }

    /// After a listing: wait for the sweep if it is still running, then
    /// flush. [`Held::ListAgain`] when the text was stale.
    pub fn finish(&mut self) -> Result<Held> {
        if let Some(sweep) = self.sweep.take() {
            self.settle(sweep.recv().map_err(|_| sweep_lost())?)?;
        }
        if std::mem::take(&mut self.list_again) {
            return Ok(Held::ListAgain);
        }
        self.out.flush()?;
        Ok(Held::Written)
    }

    /// The sweep answered: let the held text out, or drop it.
    fn settle(&mut self, answer: SweepResult) -> Result<()> {
        self.sweep = None;
        let held = std::mem::take(&mut self.held);
        if answer? > 0 {
            self.list_again = true;
        } else {
            self.out.write_all(&held)?;
        }
        Ok(())
    }
}

fn sweep_lost() -> anyhow::Error {
    anyhow!("the promotion sweep beside the listing stopped without an answer")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    #[test]
    fn text_waits_for_a_sweep_that_promoted_nothing() {
        let (tx, rx) = channel();
        let mut out = HeldOutput::new(Vec::new(), rx);
        assert!(out.write(b"a").unwrap());
        assert!(out.out.is_empty(), "held while the sweep runs");
        tx.send(Ok(0)).unwrap();
        assert!(out.write(b"b").unwrap());
        assert_eq!(out.finish().unwrap(), Held::Written);
        assert_eq!(out.out, b"ab");
    }

    #[test]
    fn a_sweep_that_promoted_makes_the_listing_start_again() {
        let (tx, rx) = channel();
        let mut out = HeldOutput::new(Vec::new(), rx);
        assert!(out.write(b"stale").unwrap());
        tx.send(Ok(2)).unwrap();
        assert!(!out.write(b"more").unwrap(), "the listing stops");
        assert_eq!(out.finish().unwrap(), Held::ListAgain);
        assert!(out.out.is_empty(), "nothing stale went out");
        assert!(out.write(b"fresh").unwrap());
        assert_eq!(out.finish().unwrap(), Held::Written);
        assert_eq!(out.out, b"fresh");
    }

    #[test]
    fn past_the_hold_limit_the_listing_waits_for_the_sweep() {
        let (tx, rx) = channel();
        let mut out = HeldOutput::new(Vec::new(), rx);
        let big = vec![b'x'; HOLD_BYTES];
        assert!(out.write(&big).unwrap());
        let sweep = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            tx.send(Ok(0)).unwrap();
        });
        assert!(out.write(b"y").unwrap());
        sweep.join().unwrap();
        assert_eq!(out.out.len(), HOLD_BYTES + 1);
    }

    #[test]
    fn a_failed_sweep_is_the_listings_error() {
        let (tx, rx) = channel();
        let mut out = HeldOutput::new(Vec::new(), rx);
        out.write(b"a").unwrap();
        tx.send(Err(anyhow!("board is busy"))).unwrap();
        assert!(out.finish().is_err());
        assert!(out.out.is_empty());
        let (tx, rx) = channel::<SweepResult>();
        drop(tx);
        let mut out = HeldOutput::new(Vec::new(), rx);
        assert!(
            out.write(b"a").is_err(),
            "a sweep thread that died is an error"
        );
    }
}
