//! Helm 2's protocol: Tiller's gRPC API and its release records.
//!
//! * [`hapi`]: the Rust code generated (by `build.rs`) from helm-bulk's own
//!   `proto/hapi` files, which are wire-compatible with Helm v2.17's protos.
//! * [`client`]: a connection to Tiller (`--tiller-host`, TLS as Helm 2 set it
//!   up, the `x-helm-api-client` version Tiller checks).
//! * [`record`]: what helm-bulk reads from a `hapi.release.Release`: the index
//!   row (Tiller's upper-case statuses mapped to Helm 3's lower-case ones),
//!   the user values, the kinds used.
//!
//! What helm-bulk does with Helm 2 lives with the same work for Helm 3/4:
//! saving from Tiller or its storage in [`crate::source::tiller`], frozen
//! charts from Helm 2 records in [`crate::restore::frozen_helm2`], their
//! conversion to Helm 3 records in [`crate::restore::helm2to3`], and
//! restoring into Tiller (`load --to-tiller`) in [`crate::restore::tiller`].

pub mod client;
pub mod record;

/// The Helm 2 version helm-bulk speaks as, in the `x-helm-api-client`
/// metadata, unless Tiller reports another 2.x version (Tiller accepts only
/// clients of its own major.minor version; see [`client`]).
pub const CLIENT_VERSION: &str = "v2.17.0";

/// Tiller's default gRPC port.
pub const DEFAULT_PORT: u16 = 44134;

/// The code generated from `proto/hapi`, one module per protobuf package.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod hapi {
    /// `hapi.chart`: charts, their metadata, templates and values.
    pub mod chart {
        include!(concat!(env!("OUT_DIR"), "/hapi.chart.rs"));
    }
    /// `hapi.release`: releases, their status, info and hooks.
    pub mod release {
        include!(concat!(env!("OUT_DIR"), "/hapi.release.rs"));
    }
    /// `hapi.version`: Helm's version message.
    pub mod version {
        include!(concat!(env!("OUT_DIR"), "/hapi.version.rs"));
    }
    /// `hapi.services`.
    pub mod services {
        /// `hapi.services.tiller`: Tiller's ReleaseService, client and server.
        pub mod tiller {
            include!(concat!(env!("OUT_DIR"), "/hapi.services.tiller.rs"));
        }
    }
}

/// Errors talking to Tiller or reading its records.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TillerError {
    /// No Tiller address was given.
    #[error("no Tiller address")]
    NoHost,
    /// The TLS settings cannot be used.
    #[error("{0}")]
    Tls(String),
    /// Tiller did not answer, or refused the connection.
    #[error("cannot connect to Tiller at {target}: {cause}")]
    Connect {
        /// `host:port` and the transport.
        target: String,
        /// Why.
        cause: String,
    },
    /// A call failed.
    #[error("Tiller {call} failed: {cause}")]
    Call {
        /// The method.
        call: &'static str,
        /// Tiller's message.
        cause: String,
    },
    /// The server is not a Helm 2 Tiller.
    #[error("{0}")]
    NotTiller(String),
    /// A record is not a valid `hapi.release.Release`.
    #[error("{0}")]
    Record(String),
}
