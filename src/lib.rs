//! helm-bulk: encrypted disaster-recovery snapshots of every Helm release in a
//! cluster.
//!
//! The data path reads straight through the modules:
//! cluster → [`release`] records → [`snapshot`] writer (tar+gzip) →
//! [`vault`] (age) → [`store`] sink, and back again for `show` and `load`.
//! Helm 2 releases come from and go back to [`tiller`].
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
pub mod tiller;
pub mod timefmt;
pub mod vault;
