//! What makes an installation a Hermes installation, apart from storage:
//! where the root and its boards live (`layout`), the `kanban:` section of
//! `config.yaml` (`config`), worker command templates (`template`), which
//! assignees can be spawned (`profiles`), where a board keeps its
//! attachment blobs and scratch workspaces (`attachments`, `scratch`), and
//! the board catalogue of a root (`catalogue`: a `Root` on SQLite turned
//! into the backend factory's `BoardCatalogue`, or its database's own).
//!
//! This crate opens no database: the store (`kanban-store`) decides how a
//! board is initialised. Module dependencies point one way:
//! `profiles` → `config` → `layout`, `template`; `scratch` and
//! `catalogue` → `layout`, except that `layout` asks `catalogue::for_root`
//! which boards exist when it resolves one.

pub mod attachments;
pub mod auxiliary;
pub mod catalogue;
pub mod config;
pub mod diagnostics_config;
pub mod gateway_log;
pub mod host;
pub mod layout;
pub mod orchestration;
pub mod pool_size;
pub mod profile_meta;
pub mod profiles;
pub mod scratch;
pub mod template;
