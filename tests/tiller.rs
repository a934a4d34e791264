//! Acceptance tests of Helm 2 support: "Tiller over gRPC, Helm 2 storage,
//! and migration of Helm 2 releases to Helm 3/4".
//!
//! * Against a real Tiller v2.17.0 and the real Helm 2 client, both built from
//!   source by `scripts/testenv build` and run outside the cluster against the
//!   real test environment (tests/tiller/real.rs): releases installed by the
//!   Helm 2 client (values, a random password, a pre-install hook, a CRD of a
//!   crd-install hook and a custom resource), `save --source tiller` and
//!   `--source tiller-storage` (the same records both ways), `show`, migration
//!   into Helm 4 and into Helm 3 after the cluster is lost (objects, values and
//!   the random password byte-equal), `load --to-tiller` into an empty Tiller
//!   (`helm list`, `helm get values`, idempotence, `--upgrade`, reuse of a
//!   deleted name, `--replace`), Tiller's Secret storage, and TLS with client
//!   certificates (each failure one line).
//! * Against the stand-in Tiller of tests/fake_tiller, only what a real Tiller
//!   cannot show (see there): the calls and request flags helm-bulk sends,
//!   the version echo for another 2.x minor, a non-Helm-2 server.
//! * Wire compatibility of the `hapi` messages with Python's protobuf
//!   (tests/tiller/wire.rs).

mod fake_tiller;
mod kit;
#[path = "tiller/real.rs"]
mod real;
mod support;
#[path = "tiller/wire.rs"]
mod wire;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use fake_tiller::{FakeTiller, sample_release};
use helm_bulk::snapshot::{Entry, Limits, read_snapshot};
use helm_bulk::tiller::hapi::release::Release;
use helm_bulk::tiller::hapi::release::hook::Event;
use helm_bulk::tiller::hapi::release::status::Code;
use kit::{fails_with, ok};
use prost::Message;
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
        let (key, recipient) = kit::keygen(dir.path(), "key.txt");
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
        let mut c = kit::bin();
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

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
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

/// The fleet of the source Tiller: histories, a failed upgrade, a deleted
/// release, a crd-install hook, and enough releases for several list pages.
fn seed_fleet(t: &FakeTiller) {
    t.seed(sample_release(
        "web",
        "prod",
        1,
        Code::Superseded,
        "password: s3cr3t-web-1\n",
        false,
    ));
    t.seed(sample_release(
        "web",
        "prod",
        2,
        Code::Deployed,
        "password: s3cr3t-web-2\nreplicas: 3\n",
        false,
    ));
    t.seed(sample_release(
        "db",
        "data",
        1,
        Code::Deployed,
        "password: s3cr3t-db\n",
        false,
    ));
    t.seed(sample_release(
        "db",
        "data",
        2,
        Code::Failed,
        "password: broken\n",
        false,
    ));
    t.seed(sample_release(
        "gone",
        "prod",
        1,
        Code::Deleted,
        "x: 1\n",
        false,
    ));
    t.seed(sample_release(
        "crds",
        "infra",
        1,
        Code::Deployed,
        "{}\n",
        true,
    ));
    for i in 0..4 {
        t.seed(sample_release(
            &format!("app{i}"),
            "apps",
            1,
            Code::Deployed,
            &format!("n: {i}\n"),
            false,
        ));
    }
}

fn code(r: &Release) -> i32 {
    r.info.as_ref().unwrap().status.as_ref().unwrap().code
}

// --- wire compatibility --------------------------------------------------------------

#[test]
fn wire_compatible_with_python_protobuf() {
    wire::check_against_python();
}

// --- the stand-in Tiller: what helm-bulk sends (see tests/fake_tiller) ----------------------

#[test]
fn save_show_and_load_through_tiller() {
    let w = Work::new();
    let src = FakeTiller::start("v2.16.12");
    seed_fleet(&src);
    let snap = w.path("helm2.tar.gz.age");

    // ---- save: paged ListReleases, GetHistory per release, Tiller's version sent back.
    let out = ok(w.save(&src.host(), &snap, &["--page-size", "2"]));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("Saved 7 releases (9 revisions, 0 CRDs"),
        "{stderr}"
    );
    let calls = src.state.lock().unwrap().calls.clone();
    assert_eq!(calls[0].method, "GetVersion", "{calls:?}");
    assert!(
        calls[1..].iter().all(|c| c.client_version == "v2.16.12"),
        "{calls:?}"
    );
    assert!(
        src.calls("ListReleases").len() >= 4,
        "pages: {:?}",
        src.calls("ListReleases")
    );
    assert!(
        src.calls("GetHistory")
            .iter()
            .all(|c| c.detail == format!("max={}", i32::MAX))
    );

    // The records are the bytes Tiller sent, unchanged.
    let plain = w.path("helm2.age");
    ok(w.run([
        "save",
        "--source",
        "tiller",
        "--tiller-host",
        &src.host(),
        "-r",
        &w.recipient,
        "-o",
        plain.to_str().unwrap(),
    ]));
    let (index, records) = records_of(&w.key, &plain);
    assert_eq!(index.source.kind.to_string(), "tiller");
    assert_eq!(index.source.driver, "tiller");
    assert_eq!(index.cluster.server, format!("grpc://{}", src.host()));
    assert_eq!(records.len(), 9);
    for (name, ns) in [("web", "prod"), ("db", "data"), ("crds", "infra")] {
        for r in src.history(name) {
            let path = format!("releases/{ns}/{name}/{}.pb", r.version);
            assert_eq!(records[&path], r.encode_to_vec(), "{path}");
        }
    }
    assert!(
        !records.keys().any(|p| p.contains("/gone/")),
        "DELETED is not saved by default"
    );

    // ---- show: Helm 2, Helm 3 style statuses, values.
    let table = w.show(&snap, &[]);
    assert!(
        table.contains("Source:   Helm 2 (Tiller), read over gRPC, created"),
        "{table}"
    );
    assert!(
        table.contains(&format!("from grpc://{}", src.host())),
        "{table}"
    );
    let web_line = table
        .lines()
        .find(|l| l.starts_with("prod ") && l.contains(" web "))
        .unwrap();
    assert!(
        web_line.contains(" 2 ")
            && web_line.contains("deployed")
            && web_line.contains("legacy-1.4.2")
            && web_line.contains("2.0.1"),
        "{web_line}"
    );
    let db_line = table.lines().find(|l| l.contains(" db ")).unwrap();
    assert!(db_line.contains("failed"), "{db_line}");
    let json: Value = serde_json::from_str(&w.show(&snap, &["-o", "json", "--history"])).unwrap();
    let statuses: Vec<(String, u64, String)> = json["releases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["name"] == "web" || r["name"] == "db")
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["revision"].as_u64().unwrap(),
                r["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("db".to_owned(), 1, "deployed".to_owned()),
            ("db".to_owned(), 2, "failed".to_owned()),
            ("web".to_owned(), 1, "superseded".to_owned()),
            ("web".to_owned(), 2, "deployed".to_owned()),
        ]
    );
    assert_eq!(
        w.show(&snap, &["--values", "prod/web"]),
        "password: s3cr3t-web-2\nreplicas: 3\n"
    );
    let values: Value =
        serde_json::from_str(&w.show(&snap, &["--values", "prod/web", "-o", "json"])).unwrap();
    assert_eq!(
        values,
        serde_json::json!({"password": "s3cr3t-web-2", "replicas": 3})
    );

    // ---- --status all and -n.
    let all = w.path("all.age");
    ok(w.run([
        "save",
        "--source",
        "tiller",
        "--tiller-host",
        &src.host(),
        "-r",
        &w.recipient,
        "-o",
        all.to_str().unwrap(),
        "--status",
        "all",
        "-n",
        "prod",
    ]));
    let (index, _) = records_of(&w.key, &all);
    let rows: Vec<(String, u32, String)> = index
        .releases
        .iter()
        .map(|r| (r.name.clone(), r.revision, r.status.clone()))
        .collect();
    assert_eq!(
        rows,
        [
            ("gone".to_owned(), 1, "uninstalled".to_owned()),
            ("web".to_owned(), 1, "superseded".to_owned()),
            ("web".to_owned(), 2, "deployed".to_owned()),
        ]
    );

    // ---- load --to-tiller --dry-run: the plan, nothing changed.
    let dst = FakeTiller::start("v2.17.0");
    let out = ok(w.load_tiller(&dst.host(), &snap, &["--dry-run"]));
    let plan = text(&out.stdout);
    assert!(
        plan.starts_with("Plan (dry run, nothing was changed):"),
        "{plan}"
    );
    for (release, revision) in [("prod/web", "2"), ("data/db", "1"), ("infra/crds", "1")] {
        let line = plan
            .lines()
            .find(|l| l.starts_with(&format!("{release} ")))
            .unwrap_or_else(|| panic!("no {release} in\n{plan}"));
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells[1..], [revision, "legacy-1.4.2", "install"], "{line}");
    }
    assert_eq!(plan.matches("install").count(), 7, "{plan}");
    assert!(dst.calls("InstallRelease").is_empty());

    // ---- load --to-tiller: every release installed from its frozen chart.
    let out = ok(w.load_tiller(&dst.host(), &snap, &[]));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("Restored 7, skipped 0, failed 0"),
        "{stderr}"
    );
    let installs = dst.calls("InstallRelease");
    assert_eq!(installs.len(), 7);
    assert!(
        installs.iter().all(|c| c.client_version == "v2.17.0"),
        "{installs:?}"
    );
    let original = &src.history("web")[1];
    let restored = dst.history("web");
    assert_eq!(restored.len(), 1);
    let r = &restored[0];
    assert_eq!((r.namespace.as_str(), r.version), ("prod", 1));
    assert_eq!(code(r), Code::Deployed as i32);
    assert_eq!(
        r.config.as_ref().unwrap().raw,
        "password: s3cr3t-web-2\nreplicas: 3\n"
    );
    assert!(
        r.manifest.contains(&original.manifest),
        "restored manifest:\n{}\noriginal:\n{}",
        r.manifest,
        original.manifest
    );
    assert!(r.manifest.contains("hello {{ not a template }}"));
    assert_eq!(r.hooks.len(), 1);
    assert_eq!(r.hooks[0].manifest, original.hooks[0].manifest);
    assert_eq!(r.hooks[0].events, [Event::PreInstall as i32]);
    assert_eq!(
        r.info.as_ref().unwrap().status.as_ref().unwrap().notes,
        "web is installed. Try {{ .Release.Name }}."
    );
    let chart = r.chart.as_ref().unwrap();
    let meta = chart.metadata.as_ref().unwrap();
    assert_eq!(
        (
            meta.name.as_str(),
            meta.version.as_str(),
            meta.app_version.as_str()
        ),
        ("legacy", "1.4.2", "2.0.1")
    );
    assert_eq!(meta.annotations["helm-bulk.io/frozen-from-revision"], "2");
    assert_eq!(
        chart.values.as_ref().unwrap().raw,
        "replicas: 1\nimage: legacy:2.0.1\n"
    );
    let db = dst.history("db");
    assert_eq!(
        db[0].config.as_ref().unwrap().raw,
        "password: s3cr3t-db\n",
        "the deployed revision, not the failed one"
    );
    let crds = &dst.history("crds")[0];
    assert!(
        crds.hooks
            .iter()
            .any(|h| h.events == [Event::CrdInstall as i32]),
        "crd-install hook kept for Tiller"
    );

    // ---- idempotence: a second load changes nothing.
    let out = ok(w.load_tiller(&dst.host(), &snap, &[]));
    assert!(
        text(&out.stderr).contains("Nothing to install"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(dst.calls("InstallRelease").len(), 7);

    // ---- --upgrade: UpdateRelease with reset values.
    let out = ok(w.load_tiller(&dst.host(), &snap, &["--upgrade", "--jobs", "3"]));
    assert!(
        text(&out.stderr).contains("Restored 7, skipped 0, failed 0"),
        "{}",
        text(&out.stderr)
    );
    let updates = dst.calls("UpdateRelease");
    assert_eq!(updates.len(), 7);
    assert!(updates.iter().all(|c| c.detail == "reset_values=true"));
    let web = dst.history("web");
    assert_eq!(
        web.iter().map(code).collect::<Vec<_>>(),
        [Code::Superseded as i32, Code::Deployed as i32]
    );

    // ---- --replace: purge, then install.
    let out = ok(w.load_tiller(&dst.host(), &snap, &["--replace", "--include", "prod/*"]));
    assert!(
        text(&out.stderr).contains("replaced  prod/web"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        dst.calls("UninstallRelease")
            .iter()
            .map(|c| c.detail.as_str())
            .collect::<Vec<_>>(),
        ["purge=true"]
    );
    assert_eq!(dst.history("web").len(), 1);

    // ---- a deleted (not purged) release's name is reused.
    {
        let mut s = dst.state.lock().unwrap();
        let db = s.releases.get_mut("db").unwrap().last_mut().unwrap();
        db.info.as_mut().unwrap().status.as_mut().unwrap().code = Code::Deleted as i32;
    }
    let out = ok(w.load_tiller(&dst.host(), &snap, &[]));
    assert!(
        text(&out.stderr).contains("Restored 1, skipped 6, failed 0"),
        "{}",
        text(&out.stderr)
    );
    let last = dst.calls("InstallRelease").pop().unwrap();
    assert_eq!(last.detail, "namespace=data reuse_name=true");
    assert_eq!(
        dst.history("db").iter().map(code).collect::<Vec<_>>(),
        [
            Code::Superseded as i32,
            Code::Superseded as i32,
            Code::Deployed as i32
        ]
    );
}

#[test]
fn clear_errors() {
    let w = Work::new();
    // No address.
    let out = w.run(["save", "--source", "tiller", "-r", &w.recipient]);
    fails_with(&out, 1, "no Tiller address");
    // Nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = w.save(&format!("127.0.0.1:{port}"), &w.path("x.age"), &[]);
    fails_with(
        &out,
        1,
        &format!("cannot connect to Tiller at 127.0.0.1:{port} (plaintext)"),
    );
    assert!(!w.path("x.age").exists());
    // A bad status.
    let t = FakeTiller::start("v2.17.0");
    let out = w.save(&t.host(), &w.path("x.age"), &["--status", "gone"]);
    fails_with(&out, 1, "unknown release status `gone`");
    // A server of another major version.
    let t3 = FakeTiller::start("v3.0.0");
    let out = w.save(&t3.host(), &w.path("x.age"), &[]);
    fails_with(&out, 1, "not a Helm 2 Tiller");
    // --to-tiller with a Helm 3 snapshot.
    let helm3 = w.path("helm3.age");
    std::fs::write(
        &helm3,
        kit::encrypt_to(&kit::plain_snapshot(&kit::sample()), &w.recipient, false),
    )
    .unwrap();
    let out = w.run([
        "load",
        "--to-tiller",
        "--tiller-host",
        &t.host(),
        "-i",
        w.key.to_str().unwrap(),
        helm3.to_str().unwrap(),
    ]);
    // (load warns first that the snapshot's origin is unverified.)
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("Error: --to-tiller restores Helm 2 snapshots"),
        "{stderr}"
    );
}

// --- TLS, against a real Tiller ------------------------------------------------------------

/// A CA made by openssl that signed nothing Tiller uses: `DIR/other-ca.pem`.
fn unrelated_ca(dir: &Path) -> PathBuf {
    let openssl = kit::require("openssl", "openssl");
    let out = Command::new(&openssl)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=helm-bulk test other-ca",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-keyout",
            "other-ca.key",
            "-out",
            "other-ca.pem",
        ])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl: {}", text(&out.stderr));
    dir.join("other-ca.pem")
}

#[test]
fn tls_with_client_certificates() {
    // A real Tiller started with --tls --tls-verify (client certificates
    // required), its certificates made by openssl in scripts/testenv, the
    // client key RSA PKCS#1 as Helm 2's TLS guide made it.
    let env = support::TestEnv::shared();
    let tiller = real::RealTiller::start(env, "tls", "configmap", true);
    let ns = support::unique_name("h2tls");
    // The chart's CRD first, and no crd-install hook: see
    // real_tiller_save_show_migrate_and_restore.
    env.kubectl([
        "apply",
        "-f",
        &format!("{}/templates/crd.yaml", real::chart()),
    ]);
    tiller.helm2_ok(&[
        "install",
        &real::chart(),
        "--name",
        "secure",
        "--namespace",
        &ns,
        "--no-crd-hook",
        "--tls",
        "--set",
        "db.password=over-tls",
    ]);
    let w = Work::new();
    let host = tiller.host.clone();
    let (ca, cert, key) = (
        tiller.pki("ca.pem"),
        tiller.pki("client.pem"),
        tiller.pki("client.key"),
    );
    let key_text = std::fs::read_to_string(&key).unwrap();
    assert!(key_text.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let tls = [
        "--tls-ca-cert",
        ca.as_str(),
        "--tls-cert",
        cert.as_str(),
        "--tls-key",
        key.as_str(),
    ];

    // Explicit files; then the name in the certificate with -s.
    let snap = w.path("tls.age");
    let out = ok(w.save(&host, &snap, &tls));
    assert!(
        text(&out.stderr).contains("Saved 1 releases"),
        "{}",
        text(&out.stderr)
    );
    let mut named = tls.to_vec();
    named.extend(["-s", "tiller-server"]);
    ok(w.save(&host, &w.path("named.age"), &named));
    let table = w.show(&snap, &[]);
    assert!(table.contains(&format!("from grpcs://{host}")), "{table}");
    let values: Value =
        serde_json::from_str(&w.show(&snap, &["--values", &format!("{ns}/secure"), "-o", "json"]))
            .unwrap();
    assert_eq!(values, serde_json::json!({"db": {"password": "over-tls"}}));

    // Helm 2's defaults: $HELM_HOME/ca.pem, cert.pem, key.pem turn TLS on.
    for (from, to) in [(&ca, "ca.pem"), (&cert, "cert.pem"), (&key, "key.pem")] {
        std::fs::copy(from, w.helm_home.join(to)).unwrap();
    }
    ok(w.save(&host, &w.path("defaults.age"), &[]));

    // load --to-tiller over TLS (from the defaults too); the release exists, so --replace.
    let out = ok(w.load_tiller(&host, &snap, &["--replace"]));
    assert!(
        text(&out.stderr).contains(&format!("replaced  {ns}/secure")),
        "{}\n--- tiller log ---\n{}",
        text(&out.stderr),
        real::read_lossy(&tiller.log())
    );
    let history = tiller.helm2_ok(&["history", "secure", "--tls"]);
    let rows: Vec<&str> = history.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "purged, then installed again:\n{history}");
    assert!(rows[0].contains("DEPLOYED"), "{history}");
    assert_eq!(
        helm2_values(&tiller.helm2_ok(&["get", "values", "secure", "--tls"])),
        serde_json::json!({"db": {"password": "over-tls"}})
    );
    for f in ["ca.pem", "cert.pem", "key.pem"] {
        std::fs::remove_file(w.helm_home.join(f)).unwrap();
    }

    // A CA that did not sign Tiller's certificate.
    let other_ca = unrelated_ca(w.dir.path());
    let mut wrong = tls.to_vec();
    wrong[1] = other_ca.to_str().unwrap();
    let out = w.save(&host, &w.path("bad.age"), &wrong);
    eprintln!("tls: {}", text(&out.stderr).trim());
    fails_with(&out, 1, "not signed by the CA");
    assert!(!w.path("bad.age").exists());

    // No client certificate, which this Tiller requires.
    let out = w.save(&host, &w.path("bad.age"), &["--tls-ca-cert", &ca]);
    eprintln!("tls: {}", text(&out.stderr).trim());
    fails_with(&out, 1, "client certificate");
    assert!(text(&out.stderr).contains("pass --tls-cert and --tls-key"));
    assert!(!w.path("bad.age").exists());

    // The wrong name.
    let mut misnamed = tls.to_vec();
    misnamed.extend(["-s", "elsewhere"]);
    let out = w.save(&host, &w.path("bad.age"), &misnamed);
    eprintln!("tls: {}", text(&out.stderr).trim());
    fails_with(&out, 1, "not valid for elsewhere");

    // Plaintext (-t) to a TLS Tiller.
    let out = w.save(&host, &w.path("bad.age"), &["-t"]);
    eprintln!("tls: {}", text(&out.stderr).trim());
    fails_with(
        &out,
        1,
        &format!("cannot connect to Tiller at {host} (plaintext)"),
    );

    // TLS to a plaintext Tiller.
    let plain = real::RealTiller::start(env, "plain", "configmap", false);
    let out = w.save(&plain.host, &w.path("bad.age"), &tls);
    eprintln!("tls: {}", text(&out.stderr).trim());
    fails_with(
        &out,
        1,
        &format!("cannot connect to Tiller at {} (TLS)", plain.host),
    );
}

// --- a real Tiller ---------------------------------------------------------------------
//
// Tiller v2.17.0 and the Helm 2 client, built from source by `scripts/testenv
// build`, run against the real test environment: releases are installed by
// the real Helm 2 client, stored by Tiller itself, read back by helm-bulk,
// migrated into Helm 4 and Helm 3, and restored into an empty Tiller.

/// The values the Helm 2 client was given for each fixture release (Helm 2
/// keeps only those as the release's config).
fn helm2_values(text: &str) -> Value {
    let v: Value = serde_norway::from_str(text)
        .unwrap_or_else(|e| panic!("helm get values printed invalid YAML ({e}): {text}"));
    v
}

/// `helm history NAME` of the Helm 2 client: (revision, status) rows.
fn helm2_statuses(tiller: &real::RealTiller, name: &str) -> Vec<(u32, String)> {
    let out = tiller.helm2_ok(&["history", name, "--max", "100", "-o", "json"]);
    let rows: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["revision"].as_u64().unwrap() as u32,
                r["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// web's Helm 2 history before the save: `helm history` rows and each
/// revision's manifest.
struct Helm2History {
    rows: Vec<Value>,
    manifests: Vec<String>,
}

impl Helm2History {
    fn record(tiller: &real::RealTiller) -> Helm2History {
        let out = tiller.helm2_ok(&["history", "web", "--max", "100", "-o", "json"]);
        let rows: Vec<Value> = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(rows.len(), 2, "web has 2 revisions: {out}");
        let manifests = rows
            .iter()
            .map(|r| {
                let rev = r["revision"].to_string();
                tiller.helm2_ok(&["get", "manifest", "web", "--revision", &rev])
            })
            .collect();
        Helm2History { rows, manifests }
    }

    /// Helm 3/4's history of the migrated web: the same revisions, statuses
    /// (Helm 3's names), charts, app versions and descriptions, and the same
    /// manifest for each revision.
    fn verify(&self, env: &support::TestEnv, helm: support::Helm, what: &str) {
        let out = env.helm(helm, ["history", "web", "-n", "h2app", "-o", "json"]);
        let rows: Vec<Value> = serde_json::from_str(&out).unwrap();
        let pick = |r: &Value| {
            (
                r["revision"].as_u64(),
                r["status"]
                    .as_str()
                    .unwrap_or_default()
                    .to_ascii_lowercase(),
                r["chart"].clone(),
                r["description"].clone(),
            )
        };
        // Helm 2's history has no app version column; the chart's is 2.0.1.
        for r in &rows {
            assert_eq!(r["app_version"], "2.0.1", "{what}: {r}");
        }
        assert_eq!(
            rows.iter().map(pick).collect::<Vec<_>>(),
            self.rows.iter().map(pick).collect::<Vec<_>>(),
            "{what}: helm history of web"
        );
        for (row, manifest) in self.rows.iter().zip(&self.manifests) {
            let rev = row["revision"].to_string();
            let got = env.helm(
                helm,
                ["get", "manifest", "web", "-n", "h2app", "--revision", &rev],
            );
            assert_eq!(
                got.trim(),
                manifest.trim(),
                "{what}: manifest of web revision {rev}"
            );
        }
    }
}

/// One Helm 2 fixture release as it was before the save.
#[derive(Debug)]
struct Helm2Release {
    ns: &'static str,
    name: &'static str,
    /// `helm get values` of its deployed revision (the user's values).
    values: Value,
    /// Its objects (manifest, pre-install hook, custom resource), without
    /// metadata and status, by `Kind/name`.
    objects: BTreeMap<String, Value>,
}

/// The objects the fixture chart makes for a release: `Kind/name` and the
/// kubectl argument that gets it.
fn helm2_objects(name: &str) -> Vec<(String, String)> {
    [
        ("ConfigMap", "configmap", "config"),
        ("ConfigMap", "configmap", "pre-install"),
        ("Secret", "secret", "db"),
        ("Secret", "secret", "random"),
        ("Widget", "widgets.legacy2.example.com", "widget"),
    ]
    .iter()
    .map(|(kind, res, suffix)| {
        (
            format!("{kind}/{name}-{suffix}"),
            format!("{res}/{name}-{suffix}"),
        )
    })
    .collect()
}

/// The live objects of a fixture release (those that exist), without
/// metadata and status.
fn live_helm2_objects(env: &support::TestEnv, ns: &str, name: &str) -> BTreeMap<String, Value> {
    let objects = helm2_objects(name);
    let mut args = vec!["get", "-n", ns, "--ignore-not-found", "-o", "json"];
    args.extend(objects.iter().map(|(_, arg)| arg.as_str()));
    let stdout = env.kubectl(args);
    let mut out = BTreeMap::new();
    if stdout.trim().is_empty() {
        return out;
    }
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let items = if v["kind"] == "List" {
        v["items"].as_array().cloned().unwrap_or_default()
    } else {
        vec![v]
    };
    for mut item in items {
        let key = format!(
            "{}/{}",
            item["kind"].as_str().unwrap(),
            item["metadata"]["name"].as_str().unwrap()
        );
        let o = item.as_object_mut().unwrap();
        o.remove("metadata");
        o.remove("status");
        out.insert(key, item);
    }
    out
}

impl Helm2Release {
    fn record(
        env: &support::TestEnv,
        tiller: &real::RealTiller,
        ns: &'static str,
        name: &'static str,
    ) -> Helm2Release {
        let values = helm2_values(&tiller.helm2_ok(&["get", "values", name]));
        let objects = live_helm2_objects(env, ns, name);
        let want: Vec<String> = helm2_objects(name).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            objects.keys().cloned().collect::<Vec<_>>(),
            {
                let mut w = want.clone();
                w.sort();
                w
            },
            "the objects Tiller made for {ns}/{name}"
        );
        Helm2Release {
            ns,
            name,
            values,
            objects,
        }
    }

    /// Asserts the release's objects are in the cluster as they were, the
    /// render-time random password byte-equal.
    fn verify_objects(&self, env: &support::TestEnv, what: &str) {
        let live = live_helm2_objects(env, self.ns, self.name);
        assert_eq!(
            live, self.objects,
            "{what}: the objects of {}/{}",
            self.ns, self.name
        );
        let random = format!("Secret/{}-random", self.name);
        let pw = self.objects[&random]["data"]["password"].as_str().unwrap();
        assert_eq!(live[&random]["data"]["password"].as_str(), Some(pw));
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(pw)
            .unwrap();
        assert_eq!(decoded.len(), 32, "a randAlphaNum 32 password");
    }

    /// Asserts Helm 3/4 holds the release as migrated: helm list, helm get
    /// values, notes, and the objects.
    fn verify_migrated(&self, env: &support::TestEnv, helm: support::Helm, what: &str) {
        let list = env.helm_list(helm);
        let row = list
            .iter()
            .find(|r| r["name"] == self.name && r["namespace"] == self.ns)
            .unwrap_or_else(|| panic!("{what}: {} not in helm list: {list:?}", self.name));
        assert_eq!(row["status"], "deployed", "{what}");
        assert_eq!(row["chart"], "legacy2-1.4.2", "{what}");
        assert_eq!(row["app_version"], "2.0.1", "{what}");
        let values: Value = serde_json::from_str(&env.helm(
            helm,
            ["get", "values", self.name, "-n", self.ns, "-o", "json"],
        ))
        .unwrap();
        assert_eq!(values, self.values, "{what}: values of {}", self.name);
        let all: Value = serde_json::from_str(&env.helm(
            helm,
            [
                "get", "values", self.name, "-n", self.ns, "--all", "-o", "json",
            ],
        ))
        .unwrap();
        assert_eq!(
            all["image"], "legacy:2.0.1",
            "{what}: the chart's defaults: {all}"
        );
        let notes = env.helm(helm, ["get", "notes", self.name, "-n", self.ns]);
        assert!(
            notes.contains(&format!(
                "{} is installed. Literal: {{{{ not a template }}}}.",
                self.name
            )),
            "{what}: {notes}"
        );
        self.verify_objects(env, what);
    }
}

#[test]
fn real_tiller_save_show_migrate_and_restore() {
    use support::{Helm, TestEnv};
    // Owned: the cluster is wiped ("lost") between the migrations.
    let env = TestEnv::start();
    let w = Work::new();
    let chart = real::chart();
    let src = real::RealTiller::start(&env, "src", "configmap", false);

    // ---- releases installed by the real Helm 2 client, through Tiller.
    // Tiller 2.17 creates a crd-install hook's CRD, then waits for it as an
    // apiextensions.k8s.io/v1beta1 CRD, which Kubernetes 1.22 and later no
    // longer serve: the hook fails on this API server. As Helm 2 users on
    // such clusters did, the CRD is applied first and the releases are
    // installed with --no-crd-hook; their records still hold the hook.
    let failed = src.helm2(&["install", &chart, "--name", "web", "--namespace", "h2app"]);
    assert!(
        !failed.status.success() && text(&failed.stderr).contains("unable to convert to CRD type"),
        "Tiller's crd-install hook on Kubernetes 1.37: {}",
        text(&failed.stderr)
    );
    env.kubectl(["get", "crd", "widgets.legacy2.example.com"]);
    src.helm2_ok(&[
        "install",
        &chart,
        "--name",
        "web",
        "--namespace",
        "h2app",
        "--no-crd-hook",
        "--set",
        "db.password=s3cr3t-web-1",
    ]);
    src.helm2_ok(&[
        "upgrade",
        "web",
        &chart,
        "--set",
        "db.password=s3cr3t-web-2,replicas=3",
    ]);
    let values_file = w.path("db-values.yaml");
    std::fs::write(
        &values_file,
        "greeting: from-a-file\ndb:\n  password: s3cr3t-db\n",
    )
    .unwrap();
    src.helm2_ok(&[
        "install",
        &chart,
        "--name",
        "db",
        "--namespace",
        "h2data",
        "--no-crd-hook",
        "-f",
        values_file.to_str().unwrap(),
    ]);
    src.helm2_ok(&[
        "install",
        &chart,
        "--name",
        "gone",
        "--namespace",
        "h2app",
        "--no-crd-hook",
    ]);
    src.helm2_ok(&["delete", "gone"]);
    assert_eq!(
        src.stored("configmap"),
        ["db.v1", "gone.v1", "web.v1", "web.v2"],
        "Tiller's own records"
    );
    let before = [
        Helm2Release::record(&env, &src, "h2app", "web"),
        Helm2Release::record(&env, &src, "h2data", "db"),
    ];
    // web's Helm 2 history, which the migration keeps (as `helm 2to3` does).
    let web_history = Helm2History::record(&src);
    assert_eq!(
        before[0].values,
        serde_json::json!({"db": {"password": "s3cr3t-web-2"}, "replicas": 3})
    );
    assert_eq!(
        before[1].values,
        serde_json::json!({"greeting": "from-a-file", "db": {"password": "s3cr3t-db"}})
    );
    assert_eq!(
        before[0].objects["ConfigMap/web-config"]["data"]["template"],
        "{{ .Values.x }}"
    );
    let bulk = |helm: Helm, args: &[&str]| -> Output {
        let mut c = w.cmd();
        env.configure(&mut c);
        c.env("HELM_BIN", env.helm_bin(helm))
            .env("HELM_HOME", &w.helm_home)
            .args(args);
        support::run(&mut c)
    };

    // ---- save over gRPC (one release a page) and from Tiller's ConfigMaps.
    let snap = w.path("tiller.age");
    let out = ok(w.save(&src.host, &snap, &["--page-size", "1"]));
    assert!(
        text(&out.stderr).contains("Saved 2 releases (3 revisions, 0 CRDs"),
        "{}",
        text(&out.stderr)
    );
    let stored = w.path("storage.age");
    let out = ok(bulk(
        Helm::V4,
        &[
            "save",
            "--source",
            "tiller-storage",
            "--tiller-namespace",
            &src.namespace,
            "-r",
            &w.recipient,
            "-o",
            stored.to_str().unwrap(),
        ],
    ));
    assert!(
        text(&out.stderr).contains("Saved 2 releases (3 revisions,"),
        "{}",
        text(&out.stderr)
    );
    // The same records both ways: what Tiller sends is what it stored.
    let (grpc_plain, storage_plain) = (w.path("grpc.age"), w.path("storage.age"));
    ok(w.run([
        "save",
        "--source",
        "tiller",
        "--tiller-host",
        &src.host,
        "-r",
        &w.recipient,
        "-o",
        grpc_plain.to_str().unwrap(),
    ]));
    ok(bulk(
        Helm::V4,
        &[
            "save",
            "--source",
            "tiller-storage",
            "--tiller-namespace",
            &src.namespace,
            "-r",
            &w.recipient,
            "-o",
            storage_plain.to_str().unwrap(),
        ],
    ));
    let (grpc_index, grpc_records) = records_of(&w.key, &grpc_plain);
    let (storage_index, storage_records) = records_of(&w.key, &storage_plain);
    assert_eq!(
        grpc_records.keys().collect::<Vec<_>>(),
        [
            "releases/h2app/web/1.pb",
            "releases/h2app/web/2.pb",
            "releases/h2data/db/1.pb"
        ]
    );
    assert_eq!(
        grpc_records.keys().collect::<Vec<_>>(),
        storage_records.keys().collect::<Vec<_>>()
    );
    for (path, bytes) in &grpc_records {
        let a = Release::decode(bytes.as_slice()).unwrap();
        let b = Release::decode(storage_records[path].as_slice()).unwrap();
        assert_eq!(a, b, "{path}: over gRPC and from storage");
    }
    assert_eq!(grpc_index.source.kind.to_string(), "tiller");
    assert_eq!(storage_index.source.driver, "configmap");
    let web2 = Release::decode(grpc_records["releases/h2app/web/2.pb"].as_slice()).unwrap();
    assert_eq!(
        web2.config.as_ref().unwrap().raw,
        "db:\n  password: s3cr3t-web-2\nreplicas: 3\n"
    );
    assert!(
        web2.hooks
            .iter()
            .any(|h| h.events == [Event::CrdInstall as i32]),
        "the crd-install hook: {:?}",
        web2.hooks
    );

    // ---- show.
    let table = w.show(&snap, &[]);
    assert!(
        table.contains("Source:   Helm 2 (Tiller), read over gRPC"),
        "{table}"
    );
    let web_line = table
        .lines()
        .find(|l| l.starts_with("h2app ") && l.contains(" web "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        web_line.contains(" 2 ")
            && web_line.contains("deployed")
            && web_line.contains("legacy2-1.4.2")
            && web_line.contains("2.0.1"),
        "{web_line}"
    );
    assert!(!table.contains(" gone "), "DELETED is not saved: {table}");
    let values: Value =
        serde_json::from_str(&w.show(&snap, &["--values", "h2app/web", "-o", "json"])).unwrap();
    assert_eq!(values, before[0].values);
    let table = w.show(&stored, &[]);
    assert!(
        table.contains("Source:   Helm 2 (Tiller) release storage (configmap)"),
        "{table}"
    );

    // ---- the cluster is lost; migrate into Helm 4 (the gRPC snapshot).
    drop(src);
    env.wipe();
    let out = ok(bulk(
        Helm::V4,
        &[
            "load",
            "-i",
            w.key.to_str().unwrap(),
            "--dry-run",
            snap.to_str().unwrap(),
        ],
    ));
    let plan = text(&out.stdout);
    for (release, revision) in [("h2app/web", "2"), ("h2data/db", "1")] {
        let line = plan
            .lines()
            .find(|l| l.starts_with(&format!("{release} ")))
            .unwrap_or_else(|| panic!("no {release} in\n{plan}"));
        let cells: Vec<&str> = line.split_whitespace().collect();
        // REVISION, CHART, ACTION and the preflight's verdict.
        assert_eq!(
            cells[1..5],
            [revision, "legacy2-1.4.2", "install", "ok"],
            "{line}"
        );
        // REASON: the history to write (web has 2 revisions, db 1).
        let history = if revision == "2" {
            "history: revisions 1-2 as saved (2 restored); would write 1-2; would remove helm's revision 1"
        } else {
            "history: revisions 1 as saved (1 restored); would write 1"
        };
        assert_eq!(cells[5..].join(" "), history, "{line}");
    }
    assert!(
        env.helm_list(Helm::V4).is_empty(),
        "a dry run installs nothing"
    );
    let out = ok(bulk(
        Helm::V4,
        &[
            "load",
            "-i",
            w.key.to_str().unwrap(),
            snap.to_str().unwrap(),
        ],
    ));
    assert!(
        text(&out.stderr).contains("Restored 2, skipped 0, failed 0"),
        "{}",
        text(&out.stderr)
    );
    for r in &before {
        r.verify_migrated(&env, Helm::V4, "into Helm 4");
    }
    web_history.verify(&env, Helm::V4, "into Helm 4");
    env.kubectl(["get", "crd", "widgets.legacy2.example.com"]);
    let out = ok(bulk(
        Helm::V4,
        &[
            "load",
            "-i",
            w.key.to_str().unwrap(),
            snap.to_str().unwrap(),
        ],
    ));
    assert!(
        text(&out.stderr).contains("Nothing to install"),
        "{}",
        text(&out.stderr)
    );

    // ---- lost again; migrate into Helm 3 (the storage snapshot).
    env.wipe();
    let out = ok(bulk(
        Helm::V3,
        &[
            "load",
            "-i",
            w.key.to_str().unwrap(),
            stored.to_str().unwrap(),
        ],
    ));
    assert!(
        text(&out.stderr).contains("Restored 2, skipped 0, failed 0"),
        "{}",
        text(&out.stderr)
    );
    for r in &before {
        r.verify_migrated(&env, Helm::V3, "into Helm 3");
    }
    web_history.verify(&env, Helm::V3, "into Helm 3");
    // Rollback to the migrated revision 1 works.
    env.helm(Helm::V3, ["rollback", "web", "1", "-n", "h2app"]);
    let values: Value = serde_json::from_str(&env.helm(
        Helm::V3,
        ["get", "values", "web", "-n", "h2app", "-o", "json"],
    ))
    .unwrap();
    assert_eq!(
        values,
        serde_json::json!({"db": {"password": "s3cr3t-web-1"}}),
        "revision 1's values after the rollback"
    );
    assert_eq!(
        env.kubectl([
            "get",
            "secret",
            "web-db",
            "-n",
            "h2app",
            "-o",
            "jsonpath={.data.password}"
        ]),
        base64::engine::general_purpose::STANDARD.encode("s3cr3t-web-1"),
        "revision 1's objects after the rollback"
    );

    // ---- lost again; restore into an empty Tiller (Secret storage this time).
    env.wipe();
    let dst = real::RealTiller::start(&env, "dst", "secret", false);
    assert!(
        dst.helm2_ok(&["list", "--all", "--short"])
            .trim()
            .is_empty(),
        "an empty Tiller"
    );
    let out = ok(w.load_tiller(&dst.host, &snap, &[]));
    assert!(
        text(&out.stderr).contains("Restored 2, skipped 0, failed 0"),
        "{}\n--- tiller log ---\n{}",
        text(&out.stderr),
        real::read_lossy(&dst.log())
    );
    let list = dst.helm2_ok(&["list", "--all"]);
    for (name, ns) in [("web", "h2app"), ("db", "h2data")] {
        let line = list
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} not in helm2 list:\n{list}"));
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert!(
            cells.contains(&"DEPLOYED")
                && cells.contains(&"legacy2-1.4.2")
                && cells.contains(&"2.0.1")
                && cells.contains(&ns),
            "{line}"
        );
    }
    for r in &before {
        assert_eq!(
            helm2_values(&dst.helm2_ok(&["get", "values", r.name])),
            r.values,
            "values of {} in the restored Tiller",
            r.name
        );
        r.verify_objects(&env, "restored into Tiller");
    }
    assert_eq!(dst.stored("secret"), ["db.v1", "web.v1"]);
    let notes = dst.helm2_ok(&["status", "web"]);
    assert!(
        notes.contains("web is installed. Literal: {{ not a template }}."),
        "{notes}"
    );
    // ---- a second load changes nothing.
    let out = ok(w.load_tiller(&dst.host, &snap, &[]));
    assert!(
        text(&out.stderr).contains("Nothing to install"),
        "{}",
        text(&out.stderr)
    );

    // ---- --upgrade: a new revision from the snapshot's values (UpdateRelease
    // with reset_values), the restored one superseded.
    let out = ok(w.load_tiller(&dst.host, &snap, &["--upgrade", "--jobs", "2"]));
    assert!(
        text(&out.stderr).contains("Restored 2, skipped 0, failed 0"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        helm2_statuses(&dst, "web"),
        [(1, "SUPERSEDED".to_owned()), (2, "DEPLOYED".to_owned())]
    );
    assert_eq!(
        helm2_values(&dst.helm2_ok(&["get", "values", "web"])),
        before[0].values
    );

    // ---- a deleted (not purged) release: its name is reused.
    dst.helm2_ok(&["delete", "db"]);
    let out = ok(w.load_tiller(&dst.host, &snap, &[]));
    assert!(
        text(&out.stderr).contains("Restored 1, skipped 1, failed 0"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        helm2_statuses(&dst, "db"),
        [
            (1, "SUPERSEDED".to_owned()),
            (2, "SUPERSEDED".to_owned()),
            (3, "DEPLOYED".to_owned())
        ],
        "the --upgrade revision, deleted, then superseded by the reinstall"
    );
    assert_eq!(
        helm2_values(&dst.helm2_ok(&["get", "values", "db"])),
        before[1].values
    );
    before[1].verify_objects(&env, "reinstalled under a deleted name");

    // ---- --replace: purged, then installed again (its crd-install hook's
    // CRD is still there, which Tiller cannot create twice).
    let out = ok(w.load_tiller(&dst.host, &snap, &["--replace", "--include", "h2app/*"]));
    assert!(
        text(&out.stderr).contains("replaced  h2app/web"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(helm2_statuses(&dst, "web"), [(1, "DEPLOYED".to_owned())]);
    before[0].verify_objects(&env, "replaced in Tiller");

    // ---- Tiller's Secrets (tiller --storage=secret), one namespace's releases.
    let secrets = w.path("secrets.age");
    ok(bulk(
        Helm::V3,
        &[
            "save",
            "--source",
            "tiller-storage",
            "--tiller-storage",
            "secret",
            "--tiller-namespace",
            &dst.namespace,
            "--include",
            "h2app/*",
            "-r",
            &w.recipient,
            "-o",
            secrets.to_str().unwrap(),
        ],
    ));
    let table = w.show(&secrets, &[]);
    assert!(table.contains("release storage (secret)"), "{table}");
    assert!(
        table.contains(" web ") && !table.contains(" db "),
        "{table}"
    );
    let values: Value =
        serde_json::from_str(&w.show(&secrets, &["--values", "h2app/web", "-o", "json"])).unwrap();
    assert_eq!(values, before[0].values);
}
