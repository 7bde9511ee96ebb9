//! Links the `kanban` binary at a fixed address (`-no-pie`) on GNU/Linux.
//!
//! Every CLI verb, every worker's `kanban complete` and every exit-recording
//! wrapper is a fresh process of this binary. As a position-independent
//! executable the loader first applies ~55,000 relative relocations, writing
//! about 200 pages of `.data.rel.ro` and the GOT: ~1.2 ms of CPU per process,
//! a third of `kanban create`. A fixed-address executable has them resolved at
//! link time. The price is ASLR for the binary's own image (the libraries, heap
//! and stacks stay randomised); Go's default Linux builds make the same trade.
//! See docs/adr/0003-fixed-address-binary.md. `KANBAN_BUILD_PIE=1` keeps PIE.

use std::env;

/// Setting this to `1` at build time keeps the position-independent default.
const KEEP_PIE_VARIABLE: &str = "KANBAN_BUILD_PIE";

fn main() {
    println!("cargo:rerun-if-env-changed={KEEP_PIE_VARIABLE}");
    println!("cargo:rerun-if-changed=build.rs");
    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let keep_pie = env::var(KEEP_PIE_VARIABLE).is_ok_and(|value| value.trim() == "1");
    if target_os == "linux" && target_env == "gnu" && !keep_pie {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
