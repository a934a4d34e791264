//! Restore: from snapshot records back to installed Helm releases.
//!
//! [`load`] strings the steps together. [`plan`] decides what to do with
//! each release (given what the target has, and whether an earlier load
//! left it unfinished); [`frozen`] rebuilds an installable chart from a
//! stored Helm 3/4 release and [`frozen_helm2`] from a Helm 2 one;
//! [`preflight`] renders every frozen chart with the real helm before
//! anything is installed; [`crds`] creates the CRDs the releases need.
//! [`execute`] is the one scheduler (ordered steps, then `jobs` at a time,
//! stopped when told to) over a [`execute::Target`]: the helm binary
//! ([`helm`]) or a Tiller ([`tiller`], `load --to-tiller`). [`history`]
//! writes the other saved revisions of each release back to Helm's
//! storage, Helm 2 ones converted by [`helm2to3`]. [`stream`] reads a
//! verified snapshot's records again with bounded memory.

pub mod crds;
pub mod execute;
pub mod frozen;
pub mod frozen_helm2;
pub mod helm;
pub mod helm2to3;
pub mod history;
pub mod load;
pub mod plan;
pub mod preflight;
pub mod stream;
pub mod tiller;

/// Errors preparing a restore.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// A stored record cannot be turned into a chart.
    #[error("{0}")]
    Record(String),
    /// Running helm failed.
    #[error("{0}")]
    Helm(String),
}
