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

use std::path::PathBuf;

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
    /// TLS is to be used, and the CA certificate does not exist.
    #[error(
        "TLS to Tiller needs the CA certificate that signed Tiller's certificate, and {} does not exist; pass --tls-ca-cert FILE, or -t/--disable-tls for a Tiller without TLS",
        .0.display()
    )]
    NoCaCert(PathBuf),
    /// Only one of the client certificate and key was given.
    #[error("--tls-cert and --tls-key go together: give both, or neither")]
    HalfIdentity,
    /// The Helm home holds only one of the client certificate and key.
    #[error(
        "{} holds only one of cert.pem and key.pem; pass --tls-cert and --tls-key",
        .0.display()
    )]
    HalfDefaultIdentity(PathBuf),
    /// A client certificate or key file that does not exist.
    #[error("the TLS client certificate file {} does not exist", .0.display())]
    NoClientFile(PathBuf),
    /// A TLS file cannot be read.
    #[error("cannot read the {what} {}: {source}", path.display())]
    TlsFile {
        /// Which file (`TLS CA certificate`, …).
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS settings are refused by the transport.
    #[error("invalid TLS settings: {0}")]
    TlsSettings(#[source] client::GrpcFailure),
    /// Tiller did not answer, or refused the connection.
    #[error("cannot connect to Tiller at {target}: {cause}{advice}")]
    Connect {
        /// `host:port` and the transport.
        target: String,
        /// Why.
        #[source]
        cause: client::GrpcFailure,
        /// What may help, for some causes (may be empty).
        advice: String,
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
    #[error("the server reports version {0}, which is not a Helm 2 Tiller")]
    NotTiller(String),
}
