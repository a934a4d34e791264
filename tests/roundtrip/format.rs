//! Snapshot format 2 (the default) against format 1 on the same cluster.

use super::*;

/// Saves again with `--format 1` and checks that the records read from the
/// format 2 `snapshot` are byte-identical to format 1's, that both index the
/// same rows (but for format 2's `blobsLastUsed`), that format 2 stores
/// blobs, each once, and that the format 1 snapshot still loads.
pub(crate) fn formats_1_and_2_hold_the_same_records(
    run: &Run,
    env: &TestEnv,
    snapshot: &Path,
    canary: &str,
) {
    let save_cwd = run.dir("save-cwd-v1");
    let save_tmp = run.dir("save-tmp-v1");
    let snapshot_v1 = save_cwd.join("snapshot-v1.age");
    let mut cmd = run.save_cmd(env, &save_cwd, &save_tmp, &snapshot_v1);
    cmd.args(["--format", "1"]);
    ok_as(no_cluster::run(&mut cmd), "helm-bulk save --format 1");
    assert_no_plaintext(&[&save_cwd, &save_tmp], canary);

    let (v2_index, v2_entries, v2_records) = decrypted_entries(&run.key, snapshot);
    let (v1_index, v1_entries, v1_records) = decrypted_entries(&run.key, &snapshot_v1);
    assert_eq!((v1_index.format_version, v2_index.format_version), (1, 2));
    assert_eq!(v1_index.releases.len(), 11);
    let mut v2_rows = v2_index.releases.clone();
    for row in &mut v2_rows {
        // Format 2 only: the blobs whose last use the record is.
        row.blobs_last_used.clear();
    }
    assert_eq!(
        v1_index.releases, v2_rows,
        "both formats index the same records"
    );
    assert!(
        v2_index
            .releases
            .iter()
            .any(|r| !r.blobs_last_used.is_empty()),
        "save marks where each blob is last used"
    );
    assert_eq!(v1_records.len(), 11);
    assert!(
        v1_records == v2_records,
        "the records read from format 2 are byte-identical to format 1's"
    );
    assert!(v1_entries.iter().all(|p| !p.starts_with("blobs/")));
    let blobs = v2_entries
        .iter()
        .filter(|p| p.starts_with("blobs/"))
        .count();
    assert!(blobs > 0, "format 2 stores blobs: {v2_entries:?}");
    let mut unique = v2_entries.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), v2_entries.len(), "no entry is stored twice");
    // Format 1 snapshots still load (the other steps load format 2's).
    let out = ok_as(
        run.load(env, &snapshot_v1, &["--dry-run"]),
        "load --dry-run of a format 1 snapshot",
    );
    assert!(
        text(&out.stderr).contains("8 releases"),
        "{}",
        text(&out.stderr)
    );
}

/// The index, the archive's entry paths in order, and the records
/// (path → bytes, as the verifying reader rebuilds them) of an encrypted snapshot.
fn decrypted_entries(
    key: &Path,
    file: &Path,
) -> (
    helm_bulk::snapshot::Index,
    Vec<String>,
    BTreeMap<String, Vec<u8>>,
) {
    use std::io::Read as _;
    let open = || {
        helm_bulk::vault::open(std::fs::File::open(file).unwrap(), &[key.to_path_buf()])
            .unwrap()
            .reader
    };
    let mut records = BTreeMap::new();
    let index = helm_bulk::release::read_checked(
        open(),
        &helm_bulk::snapshot::Limits::default(),
        |_, e, data| {
            if let helm_bulk::snapshot::Entry::Release(r) = e {
                records.insert(r.path.clone(), data.to_vec());
            }
            Ok(())
        },
    )
    .unwrap();
    let mut plain = Vec::new();
    open().read_to_end(&mut plain).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(plain.as_slice()));
    let paths = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    (index, paths, records)
}
