//! Restore: from snapshot records back to installed Helm releases.
//!
//! [`frozen`] rebuilds an installable chart from a stored release, [`plan`]
//! decides what to do with each release (given what the cluster has, and
//! whether an earlier load left it unfinished), [`preflight`] renders every
//! frozen chart with the real helm before anything is installed, [`crds`]
//! creates the CRDs the releases need, and [`execute`] runs the real helm
//! (and stops when told to); [`history`] writes the other saved revisions
//! of each release back to Helm's storage; [`stream`] reads a verified
//! snapshot's records again with bounded memory.

pub mod crds;
pub mod execute;
pub mod frozen;
pub mod history;
pub mod load;
pub mod plan;
pub mod preflight;
pub mod stream;

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
