//! What makes an installation a Hermes installation, apart from storage:
//! where the root and its boards live (`layout`), the `kanban:` section of
//! `config.yaml` (`config`), worker command templates (`template`), which
//! assignees can be spawned (`profiles`), where a board keeps its
//! attachment blobs and scratch workspaces (`attachments`, `scratch`), and
//! the board catalogue of a root on SQLite (`catalogue`: a `Root` turned
//! into the backend factory's `BoardCatalogue` and board locations).
//!
//! This crate opens no database: the store (`kanban-store`) decides how a
//! board is initialised. Module dependencies point one way:
//! `profiles` → `config` → `layout`, `template`; `scratch` and
//! `catalogue` → `layout`.

pub mod attachments;
pub mod catalogue;
pub mod config;
pub mod host;
pub mod layout;
pub mod profiles;
pub mod scratch;
pub mod template;
