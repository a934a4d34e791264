//! Hostile snapshots that are well-formed archives, correctly hashed and
//! encrypted to the reader's key, but whose records lie about themselves; and
//! the hardening of the process that holds decrypted records.

mod no_cluster;

use std::path::Path;

use helm_bulk::release::ReleaseRecord;
use no_cluster::{bin, fails_with, ok};

/// A snapshot whose index row for `record` says `listed` (namespace, name,
/// revision) while the record's own JSON says otherwise.
fn lying_snapshot(
    dir: &Path,
    listed: (&str, &str, u32),
) -> (std::path::PathBuf, std::path::PathBuf) {
    let honest = no_cluster::record("prod", "web", 2, "deployed", "s3cr3t");
    let mut summary = honest.summary.clone();
    summary.namespace = listed.0.to_owned();
    summary.name = listed.1.to_owned();
    summary.revision = listed.2;
    let lying = ReleaseRecord {
        summary,
        data: honest.data.clone(),
    };
    let tag = format!("{}-{}-{}", listed.0, listed.1, listed.2);
    let (identity, recipient) = no_cluster::keygen(dir, &format!("id-{tag}.txt"));
    let file = dir.join(format!("lying-{tag}.age"));
    let plain =
        no_cluster::plain_snapshot(&[no_cluster::record("dev", "db", 1, "deployed", "x"), lying]);
    std::fs::write(&file, no_cluster::encrypt_to(&plain, &recipient, false)).unwrap();
    (identity, file)
}

#[test]
fn a_record_whose_name_namespace_or_revision_differs_from_its_index_row_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (listed, what, own) in [
        (("prod", "api", 2), "name", "web"),
        (("staging", "web", 2), "namespace", "prod"),
        (("prod", "web", 7), "revision", "2"),
    ] {
        let (identity, file) = lying_snapshot(dir.path(), listed);
        let out = bin()
            .arg("show")
            .arg("-i")
            .arg(&identity)
            .arg(&file)
            .output()
            .unwrap();
        // (`load` reads through the same checked reader, src/release.)
        fails_with(
            &out,
            1,
            &format!("does not match the index: its {what} is `{own}`"),
        );
    }
    // The honest snapshot of the same records reads.
    let (identity, recipient) = no_cluster::keygen(dir.path(), "id2.txt");
    let file = dir.path().join("honest.age");
    let plain = no_cluster::plain_snapshot(&no_cluster::sample());
    std::fs::write(&file, no_cluster::encrypt_to(&plain, &recipient, false)).unwrap();
    ok(bin()
        .arg("show")
        .arg("-i")
        .arg(&identity)
        .arg(&file)
        .output()
        .unwrap());
}

/// A record that is not a release at all (valid hash, garbage content).
#[test]
fn a_record_that_is_not_a_release_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let honest = no_cluster::record("prod", "web", 1, "deployed", "x");
    let garbage = ReleaseRecord {
        summary: honest.summary.clone(),
        data: zeroize::Zeroizing::new(b"{\"this is\": \"not a release\"}".to_vec()),
    };
    let (identity, recipient) = no_cluster::keygen(dir.path(), "id.txt");
    let file = dir.path().join("garbage.age");
    std::fs::write(
        &file,
        no_cluster::encrypt_to(&no_cluster::plain_snapshot(&[garbage]), &recipient, false),
    )
    .unwrap();
    let out = bin()
        .arg("show")
        .arg("-i")
        .arg(&identity)
        .arg(&file)
        .output()
        .unwrap();
    fails_with(
        &out,
        1,
        "release record `releases/prod/web/1.json` is invalid",
    );
}

/// The helm-bulk process may not dump core (RLIMIT_CORE 0; the unit test of
/// `hardening` also checks PR_SET_DUMPABLE, which /proc does not show to a
/// root test runner).
#[cfg(target_os = "linux")]
#[test]
fn the_process_cannot_dump_core() {
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let (identity, _) = no_cluster::keygen(dir.path(), "id.txt");
    // `show -` with nothing on stdin yet: the process waits, alive, for input.
    let mut child = bin()
        .arg("show")
        .arg("-i")
        .arg(&identity)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let limits_path = format!("/proc/{}/limits", child.id());
    let core_line = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("Max core file size"))
            .map(str::to_owned)
    };
    let mut seen = Vec::new();
    for _ in 0..250 {
        let text = std::fs::read_to_string(&limits_path).unwrap_or_default();
        if let Some(line) = core_line(&text) {
            let zero = line.split_whitespace().collect::<Vec<_>>()[4..6] == ["0", "0"];
            seen.push(line);
            if zero {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(child.stdin.take());
    let _ = child.wait();
    let last = seen.last().cloned().unwrap_or_default();
    assert!(
        last.split_whitespace().collect::<Vec<_>>().get(4..6) == Some(&["0", "0"][..]),
        "core dumps still allowed: {seen:?}"
    );
}
