//! TLS with client certificates, against a real Tiller started with
//! `--tls --tls-verify`: explicit files, Helm 2's default files, and each
//! failure as one line.

use super::*;

/// A CA made by openssl that signed nothing Tiller uses: `DIR/other-ca.pem`.
fn unrelated_ca(dir: &Path) -> PathBuf {
    let openssl = no_cluster::require("openssl", "openssl");
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
    let env = cluster::TestEnv::shared();
    let tiller = real::RealTiller::start(env, "tls", "configmap", true);
    let ns = cluster::unique_name("h2tls");
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
