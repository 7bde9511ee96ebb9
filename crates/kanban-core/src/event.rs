//! Event kinds written to `task_events.kind`, as the reference names them.

/// Every event kind this implementation writes. The strings are the storage
/// format shared with the Python implementation; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Created,
    Promoted,
    PromotedManual,
    Claimed,
    ClaimRejected,
    Completed,
    Blocked,
    DependencyWait,
    BlockLoopDetected,
    Unblocked,
    Scheduled,
    Archived,
    Linked,
    Unlinked,
    Assigned,
    Edited,
    Reprioritized,
    StatusChanged,
    Commented,
    Attached,
    AttachmentRemoved,
    Spawned,
    Heartbeat,
    ClaimExtended,
    Reclaimed,
    ReclaimDeferred,
    Crashed,
    ProtocolViolation,
    RateLimited,
    TimedOut,
    Stale,
    SpawnFailed,
    GaveUp,
    RespawnGuarded,
    TipScratchWorkspace,
    CompletionBlockedHallucination,
    SuspectedHallucinatedReferences,
    /// Newer Hermes: the implementer handed the card to review.
    ReviewRequested,
    /// Newer Hermes: a card in (or under) review went back to its implementer.
    ReviewReopened,
    /// A triage card got its spec from the specifier (triage → todo).
    Specified,
    /// A triage card was fanned out into child cards (triage → todo).
    Decomposed,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        use EventKind::*;
        match self {
            Created => "created",
            Promoted => "promoted",
            PromotedManual => "promoted_manual",
            Claimed => "claimed",
            ClaimRejected => "claim_rejected",
            Completed => "completed",
            Blocked => "blocked",
            DependencyWait => "dependency_wait",
            BlockLoopDetected => "block_loop_detected",
            Unblocked => "unblocked",
            Scheduled => "scheduled",
            Archived => "archived",
            Linked => "linked",
            Unlinked => "unlinked",
            Assigned => "assigned",
            Edited => "edited",
            Reprioritized => "reprioritized",
            StatusChanged => "status",
            Commented => "commented",
            Attached => "attached",
            AttachmentRemoved => "attachment_removed",
            Spawned => "spawned",
            Heartbeat => "heartbeat",
            ClaimExtended => "claim_extended",
            Reclaimed => "reclaimed",
            ReclaimDeferred => "reclaim_deferred",
            Crashed => "crashed",
            ProtocolViolation => "protocol_violation",
            RateLimited => "rate_limited",
            TimedOut => "timed_out",
            Stale => "stale",
            SpawnFailed => "spawn_failed",
            GaveUp => "gave_up",
            RespawnGuarded => "respawn_guarded",
            TipScratchWorkspace => "tip_scratch_workspace",
            CompletionBlockedHallucination => "completion_blocked_hallucination",
            SuspectedHallucinatedReferences => "suspected_hallucinated_references",
            ReviewRequested => "review_requested",
            ReviewReopened => "review_reopened",
            Specified => "specified",
            Decomposed => "decomposed",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
