//! Acceptance tests of Helm 2 support: "Tiller over gRPC, Helm 2 storage,
//! and migration of Helm 2 releases to Helm 3/4".
//!
//! * Against a real Tiller v2.17.0 and the real Helm 2 client, both built from
//!   source by `scripts/testenv build` and run outside the cluster against the
//!   real test environment (`real.rs`): releases installed by the
//!   Helm 2 client (values, a random password, a pre-install hook, a CRD of a
//!   crd-install hook and a custom resource), `save --source tiller` and
//!   `--source tiller-storage` (the same records both ways), `show`, migration
//!   into Helm 4 and into Helm 3 after the cluster is lost (objects, values and
//!   the random password byte-equal), `load --to-tiller` into an empty Tiller
//!   (`helm list`, `helm get values`, idempotence, `--upgrade`, reuse of a
//!   deleted name, `--replace`), Tiller's Secret storage, and TLS with client
//!   certificates (each failure one line).
//! * Against the recording Tiller of `recording_tiller.rs`, only what a real
//!   Tiller cannot show (see there): the calls and request flags helm-bulk
//!   sends, the version echo for another 2.x minor, a non-Helm-2 server.
//! * Wire compatibility of the `hapi` messages with Python's protobuf
//!   (`wire.rs`).
//!
//! Files: `migrate.rs` (the real Tiller scenario), `tls.rs`, `requests.rs`
//! (against the recording Tiller), `real.rs` (starting real Tillers),
//! `recording_tiller.rs`, `wire.rs`.

#[path = "../cluster/mod.rs"]
mod cluster;
#[path = "../no_cluster/mod.rs"]
mod no_cluster;

mod helm2_fixture;
mod migrate;
mod real;
mod recording_tiller;
mod requests;
mod tls;
mod wire;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use helm_bulk::snapshot::{Entry, Limits, read_snapshot};
use helm_bulk::tiller::hapi::release::Release;
use helm_bulk::tiller::hapi::release::hook::Event;
use helm_bulk::tiller::hapi::release::status::Code;
use helm2_fixture::helm2_values;
use no_cluster::{fails_with, ok, text};
use prost::Message;
use recording_tiller::{RecordingTiller, sample_release};
use serde_json::Value;

// --- helpers ---------------------------------------------------------------------

/// A working directory with an age key.
struct Work {
    dir: tempfile::TempDir,
    key: PathBuf,
    recipient: String,
    /// An empty HELM_HOME, so no TLS default files are found unless a test puts them there.
    helm_home: PathBuf,
}

impl Work {
    fn new() -> Work {
        let dir = tempfile::Builder::new()
            .prefix("helm-bulk-tiller.")
            .tempdir()
            .unwrap();
        let (key, recipient) = no_cluster::keygen(dir.path(), "key.txt");
        let helm_home = dir.path().join("helm-home");
        std::fs::create_dir(&helm_home).unwrap();
        Work {
            dir,
            key,
            recipient,
            helm_home,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// helm-bulk, isolated from the caller's Helm 2 settings.
    fn cmd(&self) -> Command {
        let mut c = no_cluster::bin();
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("HELM_TLS_") || k.starts_with("TILLER_") || k == "HELM_HOST" {
                c.env_remove(k);
            }
        }
        c.env("HELM_HOME", &self.helm_home)
            .current_dir(self.dir.path());
        c
    }

    fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd().args(args).output().unwrap()
    }

    /// `save --source tiller --tiller-host HOST -r RECIPIENT -o FILE [extra]`.
    fn save(&self, host: &str, file: &Path, extra: &[&str]) -> Output {
        let mut c = self.cmd();
        c.args(["save", "--source", "tiller", "--tiller-host", host, "-r"])
            .arg(&self.recipient)
            .arg("-o")
            .arg(file)
            .args(extra);
        c.output().unwrap()
    }

    /// `load --to-tiller --tiller-host HOST -i KEY [extra] FILE`.
    fn load_tiller(&self, host: &str, file: &Path, extra: &[&str]) -> Output {
        let mut c = self.cmd();
        c.args(["load", "--to-tiller", "--tiller-host", host, "-i"])
            .arg(&self.key)
            .args(extra)
            .arg(file);
        c.output().unwrap()
    }

    fn show(&self, file: &Path, extra: &[&str]) -> String {
        let mut c = self.cmd();
        c.args(["show", "-i"]).arg(&self.key).args(extra).arg(file);
        text(&ok(c.output().unwrap()).stdout)
    }
}

/// The records of a plaintext snapshot: path → bytes.
fn records_of(key: &Path, file: &Path) -> (helm_bulk::snapshot::Index, BTreeMap<String, Vec<u8>>) {
    let mut out = BTreeMap::new();
    let opened =
        helm_bulk::vault::open(std::fs::File::open(file).unwrap(), &[key.to_path_buf()]).unwrap();
    let index = read_snapshot(opened.reader, &Limits::default(), |_, e, data| {
        if let Entry::Release(r) = e {
            out.insert(r.path.clone(), data.to_vec());
        }
        Ok(())
    })
    .unwrap();
    (index, out)
}

fn code(r: &Release) -> i32 {
    r.info.as_ref().unwrap().status.as_ref().unwrap().code
}

// --- wire compatibility --------------------------------------------------------------

#[test]
fn wire_compatible_with_python_protobuf() {
    wire::check_against_python();
}
