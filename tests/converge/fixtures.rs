//! The fixtures: releases installed with helm (one edited to look
//! mid-upgrade), and hand-made release records.

use super::*;

/// Installs the fixtures, then edits `mid`'s storage so that it looks like a
/// save that landed between helm's two writes of an upgrade: revision 1
/// `superseded`, revision 2 `pending-upgrade`.
pub(crate) fn install_fixtures(env: &TestEnv, helm: Helm) {
    env.helm(
        helm,
        [
            "install",
            "hook",
            &chart("slowhook"),
            "-n",
            NS,
            "--create-namespace",
            "--set",
            "greeting=from-the-snapshot",
            "--no-hooks",
        ],
    );
    smoke_release(env, helm, "install", "plain", "plain");
    smoke_release(env, helm, "install", "mid", "first");
    smoke_release(env, helm, "upgrade", "mid", "second");
    // Revision 2's record and its status label say pending-upgrade.
    let secret = "sh.helm.release.v1.mid.v2";
    let out = env.kubectl(["get", "secret", secret, "-n", NS, "-o", "json"]);
    let obj: Value = serde_json::from_str(&out).expect("secret JSON");
    let payload = base64::engine::general_purpose::STANDARD
        .decode(obj["data"]["release"].as_str().expect("release key"))
        .expect("base64");
    let mut record = cluster::decode_helm_release(&payload);
    assert_eq!(record["info"]["status"], "deployed");
    record["info"]["status"] = json!("pending-upgrade");
    record["info"]["description"] = json!("Preparing upgrade");
    let encoded = {
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(record.to_string().as_bytes()).unwrap();
        base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap())
    };
    let patch = json!({
        "metadata": {"labels": {"status": "pending-upgrade"}},
        "data": {"release": base64::engine::general_purpose::STANDARD.encode(encoded)},
    });
    env.kubectl([
        "patch",
        "secret",
        secret,
        "-n",
        NS,
        "--type",
        "merge",
        "-p",
        &patch.to_string(),
    ]);
    let history = statuses(env, helm);
    assert!(
        history.contains(&("mid".to_owned(), 2, "pending-upgrade".to_owned())),
        "{history:?}"
    );
    let revs = env.helm(helm, ["history", "mid", "-n", NS, "-o", "json"]);
    assert!(revs.contains("superseded"), "{revs}");
}

/// `helm install|upgrade NAME` of the smoke chart in [`NS`] with
/// `config.greeting=GREETING` (an install creates the namespace).
pub(crate) fn smoke_release(env: &TestEnv, helm: Helm, verb: &str, name: &str, greeting: &str) {
    let smoke = chart("smoke");
    let greeting = format!("config.greeting={greeting}");
    let mut args = vec![verb, name, &smoke, "-n", NS, "--set", &greeting];
    if verb == "install" {
        args.push("--create-namespace");
    }
    env.helm(helm, args);
}

/// A release record as helm stores it (its JSON text), revision 1, deployed.
pub(crate) fn record(namespace: &str, name: &str, manifest: &str) -> String {
    json!({
        "name": name,
        "namespace": namespace,
        "version": 1,
        "info": {"status": "deployed", "last_deployed": "2026-01-01T00:00:00Z"},
        "chart": {"metadata": {"apiVersion": "v2", "name": name, "version": "0.1.0"}},
        "config": {},
        "manifest": manifest,
    })
    .to_string()
}
