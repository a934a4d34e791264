//! helm-bulk: encrypted disaster-recovery snapshots of every Helm release in a
//! cluster.
//!
//! **Start here.** Saving is [`save::save`] over [`save::SaveOptions`];
//! loading is [`restore::load::load`] over [`restore::load::LoadOptions`]
//! (the pass sequence: verify, plan, preflight, install through
//! [`restore::execute::run_plan`] on the helm binary or a Tiller, history,
//! final check; see [`restore::pipeline`]). The `helm-bulk` binary (its
//! `cli` module, not part of this library) only turns flags into those
//! options, connects, and prints what their progress reports and results
//! say. `docs/ARCHITECTURE.md` has the module map.
//!
//! ```text
//! save: source::Source ──records──▶ snapshot writer ─▶ vault (age) ─▶ store sink ─▶ signature
//! load: store::input ─▶ signature check ─▶ vault ─▶ restore::load::load:
//!       snapshot reader ─▶ restore::plan ─▶ preflight ─▶ run_plan ─▶ helm │ Tiller ─▶ history
//! ```
//!
//! Helm 3/4 records come from [`source::helm`] and go back through
//! [`restore::helm`]; Helm 2 releases come from [`source::tiller`] and go
//! back through [`restore::tiller`] (or are migrated to Helm 3/4 by
//! [`restore::helm`]). [`tiller`] is Helm 2's protocol only.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cluster;
pub mod config;
pub mod debug;
pub mod errors;
pub mod freshness;
pub mod hardening;
pub mod release;
pub mod restore;
pub mod save;
pub mod select;
pub mod snapshot;
pub mod source;
pub mod store;
#[doc(hidden)]
pub mod testing;
pub mod tiller;
pub mod timefmt;
pub mod vault;
