//! Restore: from snapshot records back to installed Helm releases.
//!
//! [`load::load`] is the load pipeline ([`pipeline`]: the passes over the
//! snapshot, in order); [`load`] holds its options, errors, first pass and
//! planning steps. [`plan`] decides what to do with each release (given
//! what the target has, and whether an earlier load left it unfinished);
//! [`frozen`] rebuilds an installable chart from a stored Helm 3/4 release
//! and [`frozen_helm2`] from a Helm 2 one; [`preflight`] renders every
//! frozen chart with the real helm before anything is installed; [`crds`]
//! creates the CRDs the releases need. [`execute`] is the one scheduler
//! (ordered steps, then `jobs` at a time, stopped when told to) over a
//! [`execute::Target`]: the helm binary ([`helm`]) or a Tiller ([`tiller`],
//! `load --to-tiller`). [`history`] writes the other saved revisions of
//! each release back to Helm's storage, Helm 2 ones converted by
//! [`helm2to3`], in the passes of [`histories`]. [`stream`] reads a
//! verified snapshot's records again with bounded memory.

pub mod crds;
pub mod execute;
pub mod frozen;
pub mod frozen_helm2;
pub mod helm;
pub mod helm2to3;
pub mod histories;
pub mod history;
pub mod load;
pub mod pipeline;
pub mod plan;
pub mod preflight;
pub mod stream;
pub mod tiller;

/// Errors preparing a restore.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// A Helm 3/4 record without a chart.
    #[error("the record has no chart")]
    NoChart,
    /// A record whose chart has no name.
    #[error("the record's chart has no name")]
    UnnamedChart,
    /// A Helm 2 release (named) without a chart.
    #[error("release {0} has no chart")]
    ReleaseWithoutChart(String),
    /// A Helm 2 release (named) whose chart has no metadata.
    #[error("the chart of release {0} has no metadata")]
    ChartWithoutMetadata(String),
    /// A Helm 2 release (named) whose chart has no name.
    #[error("the chart of release {0} has no name")]
    ReleaseChartUnnamed(String),
    /// A Helm 2 record does not decode.
    #[error(transparent)]
    Helm2Record(#[from] crate::tiller::record::RecordError),
    /// A Helm 3/4 record is not the JSON Helm writes.
    #[error("not a Helm release record: {0}")]
    NotARecord(#[source] serde_json::Error),
    /// A file of the record's chart is not base64.
    #[error("chart file {name} is not base64: {source}")]
    ChartFile {
        /// The file's name in the chart.
        name: String,
        /// Why it does not decode.
        source: base64::DecodeError,
    },
    /// A part of the frozen chart cannot be serialized.
    #[error("{0}")]
    Json(#[source] serde_json::Error),
    /// Writing the frozen chart's archive failed.
    #[error("cannot build the frozen chart: {0}")]
    Build(#[source] std::io::Error),
    /// No in-memory file could be made to hand the chart to helm.
    #[error("cannot create an in-memory file: {0}")]
    MemoryFile(#[source] rustix::io::Errno),
    /// The chart could not be placed for helm to read.
    #[error("{what}: {source}")]
    Place {
        /// What failed (`cannot write the chart`).
        what: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl RestoreError {
    /// [`RestoreError::Place`] of an I/O error, saying `what` failed.
    pub(crate) fn placing(what: &'static str) -> impl FnOnce(std::io::Error) -> RestoreError {
        move |source| RestoreError::Place { what, source }
    }
}
