//! Store operations of the notifier (reference §7.4), as a capability trait
//! on top of [`Store`].
//!
//! A subscription's cursor (`kanban_notify_subs.last_event_id`) is the only
//! dedup mechanism, shared with Hermes gateways pointed at the same board:
//! events are *claimed* by moving the cursor past them in one write
//! transaction (compare-and-swap on the cursor read), so of several
//! notifiers exactly one sends a given event. A failed send moves the
//! cursor back, again by compare-and-swap so a newer claim is never undone.
//!
//! Consecutive failures are counted in our own table
//! (`kanban_rs_notify_failures`, ignored by the Python code): a
//! subscription failing [`MAX_SEND_FAILURES`] times in a row is dropped,
//! like the reference does with its in-memory counter, but the count
//! survives a gateway restart.
//!
//! # Concurrency contract
//!
//! On top of [`Store`]'s (the conformance suite checks both):
//! - **Claims are exclusive.** Of notifiers claiming one subscription at
//!   once, each event goes to exactly one of them: the cursor read, the
//!   events chosen and the cursor write are one compare-and-swap.
//! - **A cursor never skips an event.** Claims read events in id order,
//!   and events become visible in commit order (the [`Store`] rule), so an
//!   event committed while a notifier claims lands after the moved cursor,
//!   never behind it (tests `notify_claims_are_exclusive_under_concurrency`).
//! - **Rewinds and drops are compare-and-swaps too.** A rewind only moves
//!   a cursor that still stands where the failed claim put it
//!   (tests `claim_moves_cursor_once_and_rewind_is_cas`).
//! - `pending_notify_subs` and `notify_failures` only read.

use kanban_core::{Event, NotifySub};

use crate::{NotifyKey, Result, Store};

/// Event kinds a subscription is notified of (reference `TERMINAL_KINDS`).
/// `archived` and `unblocked` are claimed too so they cannot wedge later
/// events behind an unclaimed row.
pub const NOTIFY_KINDS: [&str; 8] = [
    "completed",
    "blocked",
    "gave_up",
    "crashed",
    "timed_out",
    "status",
    "archived",
    "unblocked",
];

/// Consecutive send failures after which a subscription is dropped.
pub const MAX_SEND_FAILURES: i64 = 3;

/// Most events claimed at once for one subscription; the rest are claimed
/// on the next round, so one chatty task cannot make a round unbounded.
pub const NOTIFY_CLAIM_BATCH: usize = 100;

/// Task statuses after which a fully notified subscription is removed.
pub const NOTIFY_FINAL_STATUSES: [&str; 2] = ["done", "archived"];

/// Events claimed for one subscription.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClaimedEvents {
    /// Cursor before the claim.
    pub old_cursor: i64,
    /// Cursor after the claim (id of the last claimed event; `old_cursor`
    /// when nothing was claimed).
    pub new_cursor: i64,
    /// In id order.
    pub events: Vec<Event>,
}

/// A failed delivery of claimed events.
#[derive(Debug, Clone)]
pub struct DeliveryFailure {
    pub key: NotifyKey,
    /// The cursor before the claim.
    pub old_cursor: i64,
    /// The cursor the claim set (CAS guard of the rewind).
    pub claimed_cursor: i64,
    /// Where to put the cursor back: the last event delivered before the
    /// failure, else `old_cursor`.
    pub rewind_to: i64,
    /// Why, for the failure record.
    pub error: String,
}

/// What became of a subscription after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureOutcome {
    /// Kept; the cursor was moved back (`rewound` false when another
    /// notifier advanced it since our claim).
    Retry { failures: i64, rewound: bool },
    /// Removed after [`MAX_SEND_FAILURES`] consecutive failures.
    Dropped { failures: i64 },
    /// The subscription no longer exists (removed meanwhile).
    Gone,
}

/// What became of a subscription after a successful delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveredOutcome {
    /// Kept: the task is not finished, or more events wait.
    Kept,
    /// Removed: its task is done or archived (or deleted) and every
    /// notifying event has been delivered.
    Unsubscribed,
}

/// The notifier's store capability.
pub trait NotifyStore: Store {
    /// Subscriptions on `platforms` with at least one unseen event among
    /// `kinds`. Read-only, so an idle notifier never writes.
    fn pending_notify_subs(&self, platforms: &[&str], kinds: &[&str]) -> Result<Vec<NotifySub>>;
    /// Claim up to [`NOTIFY_CLAIM_BATCH`] unseen events among `kinds`:
    /// the cursor moves past them in the same transaction (CAS on the
    /// cursor read). Nothing claimed (and nothing written) when there are
    /// none or the subscription is gone.
    fn claim_notify_events(&self, key: &NotifyKey, kinds: &[&str]) -> Result<ClaimedEvents>;
    /// Delivery failed: count it; below [`MAX_SEND_FAILURES`] move the
    /// cursor back to `rewind_to` (CAS on `claimed_cursor`), at it remove
    /// the subscription. Progress (`rewind_to > old_cursor`) restarts the
    /// count, the failures being consecutive ones.
    fn notify_delivery_failed(&self, failure: &DeliveryFailure) -> Result<FailureOutcome>;
    /// Every claimed event was delivered: reset the failure count and
    /// remove the subscription when its task is done or archived and no
    /// unseen event among `kinds` remains.
    fn notify_delivered(&self, key: &NotifyKey, kinds: &[&str]) -> Result<DeliveredOutcome>;
    /// Consecutive failures recorded for a subscription (0 when none).
    fn notify_failures(&self, key: &NotifyKey) -> Result<i64>;
}
