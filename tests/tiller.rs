//! Acceptance tests of Helm 2 support: "Tiller over gRPC, Helm 2 storage,
//! and migration of Helm 2 releases to Helm 3/4".
//!
//! * Wire compatibility of the `hapi` messages with Python's protobuf
//!   (tests/tiller/wire.rs).
//! * `save --source tiller`, `show`, `load --to-tiller` (dry run, install,
//!   idempotence, `--upgrade`, `--replace`, reuse of deleted names) against
//!   the stand-in Tiller of tests/fake_tiller (a real Tiller cannot be built
//!   here; see there), in plaintext and over TLS with openssl-made
//!   certificates.
//! * Migration on the real test environment (etcd + kube-apiserver + Helm 4
//!   and Helm 3): Tiller ConfigMap and Secret records written by the test are
//!   saved with `--source tiller-storage` and loaded as Helm 3/4 releases.

mod fake_tiller;
mod kit;
mod support;
#[path = "tiller/wire.rs"]
mod wire;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use fake_tiller::{FakeTiller, Tls, sample_release};
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
fn records_of(file: &Path) -> (helm_bulk::snapshot::Index, BTreeMap<String, Vec<u8>>) {
    let mut out = BTreeMap::new();
    let index = read_snapshot(
        std::fs::File::open(file).unwrap(),
        &Limits::default(),
        |_, e, data| {
            if let Entry::Release(r) = e {
                out.insert(r.path.clone(), data.to_vec());
            }
            Ok(())
        },
    )
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

// --- save, show, load against Tiller ---------------------------------------------------

#[test]
fn save_show_and_load_through_tiller() {
    let w = Work::new();
    let src = FakeTiller::start("v2.16.12", None);
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
    let plain = w.path("helm2.tar.gz");
    ok(w.run([
        "save",
        "--source",
        "tiller",
        "--tiller-host",
        &src.host(),
        "--no-encrypt",
        "-o",
        plain.to_str().unwrap(),
    ]));
    let (index, records) = records_of(&plain);
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
    let all = w.path("all.tar.gz");
    ok(w.run([
        "save",
        "--source",
        "tiller",
        "--tiller-host",
        &src.host(),
        "--no-encrypt",
        "-o",
        all.to_str().unwrap(),
        "--status",
        "all",
        "-n",
        "prod",
    ]));
    let (index, _) = records_of(&all);
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
    let dst = FakeTiller::start("v2.17.0", None);
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
            Code::Deleted as i32,
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
    let t = FakeTiller::start("v2.17.0", None);
    let out = w.save(&t.host(), &w.path("x.age"), &["--status", "gone"]);
    fails_with(&out, 1, "unknown release status `gone`");
    // A server of another major version.
    let t3 = FakeTiller::start("v3.0.0", None);
    let out = w.save(&t3.host(), &w.path("x.age"), &[]);
    fails_with(&out, 1, "not a Helm 2 Tiller");
    // --to-tiller with a Helm 3 snapshot.
    let helm3 = w.path("helm3.tar.gz");
    std::fs::write(&helm3, kit::plain_snapshot(&kit::sample())).unwrap();
    let out = w.run([
        "load",
        "--to-tiller",
        "--tiller-host",
        &t.host(),
        "--no-encrypt",
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

// --- TLS ------------------------------------------------------------------------------

/// Certificates made by openssl: a CA, Tiller's certificate (for 127.0.0.1,
/// localhost and tiller-server), a client certificate with an RSA PKCS#1
/// key as Helm 2's tiller-tls guides made them, and an unrelated CA.
struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }

    fn make() -> Certs {
        let openssl = kit::require("openssl", "openssl");
        let dir = tempfile::tempdir().unwrap();
        let cnf = dir.path().join("openssl.cnf");
        std::fs::write(
            &cnf,
            "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = unused\n\
             [ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n\
             [server]\nbasicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\nextendedKeyUsage = serverAuth\n\
             subjectAltName = IP:127.0.0.1,DNS:localhost,DNS:tiller-server\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n\
             [client]\nbasicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\nextendedKeyUsage = clientAuth\n\
             subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n",
        )
        .unwrap();
        let run = |args: &[&str]| {
            let out = Command::new(&openssl)
                .args(args)
                .current_dir(dir.path())
                .env("OPENSSL_CONF", &cnf)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                text(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for ca in ["ca", "other-ca"] {
            let mut a = vec![
                "req",
                "-x509",
                "-config",
                "openssl.cnf",
                "-extensions",
                "ca",
                "-days",
                "2",
            ];
            a.extend(ec);
            let subj = format!("/CN=helm-bulk test {ca}");
            let key = format!("{ca}.key");
            let pem = format!("{ca}.pem");
            a.extend(["-subj", &subj, "-keyout", &key, "-out", &pem]);
            run(&a);
        }
        let mut a = vec![
            "req",
            "-new",
            "-config",
            "openssl.cnf",
            "-subj",
            "/CN=tiller-server",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ];
        a.extend(ec);
        run(&a);
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "openssl.cnf",
            "-extensions",
            "server",
            "-out",
            "server.pem",
        ]);
        run(&["genrsa", "-traditional", "-out", "client.key", "2048"]);
        run(&[
            "req",
            "-new",
            "-config",
            "openssl.cnf",
            "-subj",
            "/CN=helm",
            "-key",
            "client.key",
            "-out",
            "client.csr",
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "openssl.cnf",
            "-extensions",
            "client",
            "-out",
            "client.pem",
        ]);
        let key = std::fs::read_to_string(dir.path().join("client.key")).unwrap();
        assert!(key.starts_with("-----BEGIN RSA PRIVATE KEY-----"), "{key}");
        Certs { dir }
    }
}

#[test]
fn tls_with_client_certificates() {
    let certs = Certs::make();
    let tiller = FakeTiller::start(
        "v2.17.0",
        Some(Tls {
            cert: certs.read("server.pem"),
            key: certs.read("server.key"),
            client_ca: Some(certs.read("ca.pem")),
        }),
    );
    tiller.seed(sample_release(
        "web",
        "prod",
        1,
        Code::Deployed,
        "password: tls\n",
        false,
    ));
    let w = Work::new();
    let host = tiller.host();
    let p = |n: &str| certs.path(n).to_str().unwrap().to_owned();
    let tls = [
        "--tls-ca-cert".to_owned(),
        p("ca.pem"),
        "--tls-cert".to_owned(),
        p("client.pem"),
        "--tls-key".to_owned(),
        p("client.key"),
    ];
    let tls: Vec<&str> = tls.iter().map(String::as_str).collect();

    // Explicit files; then the name in the certificate with -s.
    let snap = w.path("tls.age");
    let out = ok(w.save(&host, &snap, &tls));
    assert!(
        text(&out.stderr).contains("Saved 1 releases"),
        "{}",
        text(&out.stderr)
    );
    let mut named = tls.clone();
    named.extend(["-s", "tiller-server"]);
    ok(w.save(&host, &w.path("named.age"), &named));
    let table = w.show(&snap, &[]);
    assert!(table.contains(&format!("from grpcs://{host}")), "{table}");

    // Helm 2's defaults: $HELM_HOME/ca.pem, cert.pem, key.pem turn TLS on.
    for (from, to) in [
        ("ca.pem", "ca.pem"),
        ("client.pem", "cert.pem"),
        ("client.key", "key.pem"),
    ] {
        std::fs::copy(certs.path(from), w.helm_home.join(to)).unwrap();
    }
    ok(w.save(&host, &w.path("defaults.age"), &[]));

    // load --to-tiller over TLS (from the defaults too); the release exists, so --replace.
    let out = ok(w.load_tiller(&host, &snap, &["--replace"]));
    assert!(
        text(&out.stderr).contains("replaced  prod/web"),
        "{}",
        text(&out.stderr)
    );
    for f in ["ca.pem", "cert.pem", "key.pem"] {
        std::fs::remove_file(w.helm_home.join(f)).unwrap();
    }

    // A CA that did not sign Tiller's certificate.
    let mut wrong = tls.clone();
    let other = p("other-ca.pem");
    wrong[1] = &other;
    let out = w.save(&host, &w.path("bad.age"), &wrong);
    eprintln!("tls: {}", text(&out.stderr).trim());
    fails_with(&out, 1, "not signed by the CA");
    assert!(!w.path("bad.age").exists());

    // No client certificate, which this Tiller requires.
    let ca = p("ca.pem");
    let out = w.save(&host, &w.path("bad.age"), &["--tls-ca-cert", &ca]);
    eprintln!("tls: {}", text(&out.stderr).trim());
    fails_with(&out, 1, "client certificate");
    assert!(text(&out.stderr).contains("pass --tls-cert and --tls-key"));

    // The wrong name.
    let mut misnamed = tls.clone();
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
    let plain = FakeTiller::start("v2.17.0", None);
    let out = w.save(&plain.host(), &w.path("bad.age"), &tls);
    eprintln!("tls: {}", text(&out.stderr).trim());
    fails_with(
        &out,
        1,
        &format!("cannot connect to Tiller at {} (TLS)", plain.host()),
    );
}

// --- migration on the real test environment ------------------------------------------

/// Tiller's storage encoding: base64 of gzip of the protobuf bytes.
fn tiller_payload(r: &Release) -> String {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&r.encode_to_vec()).unwrap();
    base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap())
}

fn storage_labels(r: &Release) -> BTreeMap<String, String> {
    let status = Code::try_from(code(r)).unwrap().as_str_name();
    [
        ("NAME", r.name.clone()),
        ("OWNER", "TILLER".to_owned()),
        ("STATUS", status.to_owned()),
        ("VERSION", r.version.to_string()),
        ("MODIFIED_AT", "1577836800".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Writes releases as Tiller's ConfigMaps (or Secrets) in `namespace`.
async fn write_tiller_storage(
    client: &kube::Client,
    namespace: &str,
    secrets: bool,
    releases: &[Release],
) {
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    use kube::api::{Api, ObjectMeta, PostParams};
    for r in releases {
        let metadata = ObjectMeta {
            name: Some(format!("{}.v{}", r.name, r.version)),
            namespace: Some(namespace.to_owned()),
            labels: Some(storage_labels(r)),
            ..Default::default()
        };
        let payload = tiller_payload(r);
        if secrets {
            let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
            let s = Secret {
                metadata,
                data: Some(
                    [(
                        "release".to_owned(),
                        k8s_openapi::ByteString(payload.into_bytes()),
                    )]
                    .into(),
                ),
                ..Default::default()
            };
            api.create(&PostParams::default(), &s).await.unwrap();
        } else {
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
            let c = ConfigMap {
                metadata,
                data: Some([("release".to_owned(), payload)].into()),
                ..Default::default()
            };
            api.create(&PostParams::default(), &c).await.unwrap();
        }
    }
}

#[test]
fn migrates_helm2_storage_to_helm4_and_helm3() {
    use support::{Helm, TestEnv};
    let env = TestEnv::shared();
    let w = Work::new();
    let ns = support::unique_name("h2app");
    let web = support::unique_name("h2web");
    let crd = support::unique_name("h2crd");
    let gone = support::unique_name("h2gone");
    let releases = vec![
        sample_release(&web, &ns, 1, Code::Superseded, "password: first\n", false),
        sample_release(
            &web,
            &ns,
            2,
            Code::Deployed,
            "password: s3cr3t-migrated\nnested:\n  list: [1, 2]\n",
            false,
        ),
        sample_release(&crd, &ns, 1, Code::Deployed, "{}\n", true),
        sample_release(&gone, &ns, 1, Code::Deleted, "x: 1\n", false),
    ];
    let sec_ns = support::unique_name("tiller-sec");
    let sec_app_ns = support::unique_name("h2sec");
    let sec_rel = support::unique_name("h2s");
    let secret_releases = vec![sample_release(
        &sec_rel,
        &sec_app_ns,
        1,
        Code::Deployed,
        "token: from-secret\n",
        false,
    )];
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = env.client().await;
        write_tiller_storage(&client, "kube-system", false, &releases).await;
        env.kubectl(["create", "namespace", &sec_ns]);
        write_tiller_storage(&client, &sec_ns, true, &secret_releases).await;
    });
    let bulk = |helm: Helm, args: &[&str]| -> Output {
        let mut c = w.cmd();
        env.configure(&mut c);
        c.env("HELM_BIN", env.helm_bin(helm))
            .env("HELM_HOME", &w.helm_home)
            .args(args);
        support::run(&mut c)
    };
    let include = format!("{ns}/*");

    // ---- save from Tiller's ConfigMaps in kube-system.
    let snap = w.path("storage.age");
    let out = ok(bulk(
        Helm::V4,
        &[
            "save",
            "--source",
            "tiller-storage",
            "--include",
            &include,
            "-r",
            &w.recipient,
            "-o",
            snap.to_str().unwrap(),
        ],
    ));
    assert!(
        text(&out.stderr).contains("Saved 2 releases (3 revisions, 0 CRDs"),
        "{}",
        text(&out.stderr)
    );
    let table = w.show(&snap, &[]);
    assert!(
        table.contains("Source:   Helm 2 (Tiller) release storage (configmap)"),
        "{table}"
    );
    assert_eq!(
        w.show(&snap, &["--values", &format!("{ns}/{web}")]),
        "password: s3cr3t-migrated\nnested:\n  list:\n  - 1\n  - 2\n"
    );

    // ---- dry run, then the migration into Helm 4.
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
    assert!(
        plan.contains(&format!("{ns}/{web}")) && plan.contains("legacy-1.4.2"),
        "{plan}"
    );
    assert_eq!(plan.matches("install").count(), 2, "{plan}");
    let out = ok(bulk(
        Helm::V4,
        &[
            "load",
            "-i",
            w.key.to_str().unwrap(),
            snap.to_str().unwrap(),
        ],
    ));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("Restored 2, skipped 0, failed 0"),
        "{stderr}"
    );

    // helm list and helm get values show Helm 4 releases.
    let list = env.helm_list(Helm::V4);
    let row = list
        .iter()
        .find(|r| r["name"] == web.as_str())
        .unwrap_or_else(|| panic!("{web} not in helm list: {list:?}"));
    assert_eq!(row["namespace"], ns.as_str());
    assert_eq!(row["status"], "deployed");
    assert_eq!(row["chart"], "legacy-1.4.2");
    assert_eq!(row["app_version"], "2.0.1");
    let values: Value =
        serde_json::from_str(&env.helm(Helm::V4, ["get", "values", &web, "-n", &ns, "-o", "json"]))
            .unwrap();
    assert_eq!(
        values,
        serde_json::json!({"password": "s3cr3t-migrated", "nested": {"list": [1, 2]}})
    );
    let all: Value = serde_json::from_str(&env.helm(
        Helm::V4,
        ["get", "values", &web, "-n", &ns, "--all", "-o", "json"],
    ))
    .unwrap();
    assert_eq!(all["image"], "legacy:2.0.1", "the chart's defaults: {all}");
    // The objects: the manifest literally, the pre-install hook, the crd-install hook's CRD.
    let cm: Value = serde_json::from_str(&env.kubectl([
        "get",
        "configmap",
        &format!("{web}-config"),
        "-n",
        &ns,
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(cm["data"]["greeting"], "hello {{ not a template }}");
    assert_eq!(cm["metadata"]["labels"]["revision"], "2");
    env.kubectl(["get", "configmap", &format!("{web}-pre-install"), "-n", &ns]);
    env.kubectl(["get", "crd", "widgets.legacy.example.com"]);
    let manifest = env.helm(Helm::V4, ["get", "manifest", &web, "-n", &ns]);
    assert!(
        manifest.contains("hello {{ not a template }}"),
        "{manifest}"
    );
    let notes = env.helm(Helm::V4, ["get", "notes", &web, "-n", &ns]);
    assert!(
        notes.contains(&format!("{web} is installed. Try {{{{ .Release.Name }}}}.")),
        "{notes}"
    );

    // ---- idempotent.
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

    // ---- Tiller's Secrets (tiller --storage=secret), into Helm 3.
    let snap = w.path("secrets.age");
    ok(bulk(
        Helm::V3,
        &[
            "save",
            "--source",
            "tiller-storage",
            "--tiller-storage",
            "secret",
            "--tiller-namespace",
            &sec_ns,
            "-r",
            &w.recipient,
            "-o",
            snap.to_str().unwrap(),
        ],
    ));
    let table = w.show(&snap, &[]);
    assert!(
        table.contains("release storage (secret)") && table.contains(&sec_rel),
        "{table}"
    );
    let out = ok(bulk(
        Helm::V3,
        &[
            "load",
            "-i",
            w.key.to_str().unwrap(),
            snap.to_str().unwrap(),
        ],
    ));
    assert!(
        text(&out.stderr).contains("Restored 1, skipped 0, failed 0"),
        "{}",
        text(&out.stderr)
    );
    let values: Value = serde_json::from_str(&env.helm(
        Helm::V3,
        ["get", "values", &sec_rel, "-n", &sec_app_ns, "-o", "json"],
    ))
    .unwrap();
    assert_eq!(values, serde_json::json!({"token": "from-secret"}));
}
