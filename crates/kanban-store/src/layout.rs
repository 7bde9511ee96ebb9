//! Root and board resolution (in progress).
