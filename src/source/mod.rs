//! Where release records come from. Each source produces an index in a first
//! pass and then the records in index order, so the snapshot writer can put
//! the index first while holding only one page of records at a time.

pub mod crds;
pub mod helm;

/// Errors from reading a source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The storage driver is unknown or not supported.
    #[error("{0}")]
    Driver(String),
    /// The Kubernetes API failed.
    #[error("listing Helm {what} failed: {cause}")]
    Api {
        /// What was being listed.
        what: &'static str,
        /// The API's message.
        cause: String,
    },
    /// The consistent list expired (etcd compaction) between the passes.
    #[error(
        "the cluster's release list changed too much while saving (resource version expired); run save again"
    )]
    Expired,
    /// A record present in the first pass was missing in the second.
    #[error("release record {0} disappeared while saving; run save again")]
    Vanished(String),
    /// Writing to the snapshot failed.
    #[error("{0}")]
    Write(String),
}
