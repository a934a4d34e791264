use std::io::Write;

use flate2::{Compression, write::GzEncoder};

use super::*;
use crate::release::ReleaseRecord;

pub(crate) fn record(ns: &str, name: &str, rev: u32, status: &str, extra: &str) -> ReleaseRecord {
    let json = format!(
        r#"{{"name":"{name}","namespace":"{ns}","version":{rev},"info":{{"status":"{status}","last_deployed":"2026-01-01T00:00:00Z"}},"chart":{{"metadata":{{"name":"demo","version":"1.0.0","appVersion":"2.0"}}}},"config":{{"k":"{extra}"}},"unknownField":{{"kept":true}}}}"#
    );
    ReleaseRecord::from_helm_json(json.into_bytes()).unwrap()
}

/// Format 1 metadata: the tests written for format 1 build its layout by hand.
pub(crate) fn meta() -> Index {
    let mut m = meta_v2();
    m.format_version = FORMAT_V1;
    m
}

pub(crate) fn meta_v2() -> Index {
    crate::testing::helm3_index("https://127.0.0.1:6443", "test")
}

fn sample() -> Vec<ReleaseRecord> {
    vec![
        record("b", "web", 2, "deployed", "x"),
        record("a", "db", 1, "deployed", "y"),
        record("b", "web", 10, "failed", "z"),
        record("b", "web", 1, "superseded", "w"),
    ]
}

type Records = Vec<(IndexRow, Vec<u8>)>;

fn read_all(bytes: &[u8]) -> Result<(Index, Records), SnapshotError> {
    let mut out = Vec::new();
    let index = read_snapshot(bytes, &Limits::default(), |_, entry, data| {
        if let Entry::Release(row) = entry {
            out.push((row.clone(), data.to_vec()));
        }
        Ok(())
    })?;
    Ok((index, out))
}

#[test]
fn round_trip_is_byte_identical() {
    let records = sample();
    let bytes = write_snapshot(Vec::new(), meta(), &records).unwrap();
    let (index, got) = read_all(&bytes).unwrap();
    assert_eq!(index.releases.len(), 4);
    let order: Vec<_> = got
        .iter()
        .map(|(r, _)| (r.namespace.as_str(), r.name.as_str(), r.revision))
        .collect();
    assert_eq!(
        order,
        [
            ("a", "db", 1),
            ("b", "web", 1),
            ("b", "web", 10),
            ("b", "web", 2)
        ]
    );
    for (row, data) in &got {
        let original = records
            .iter()
            .find(|r| {
                r.summary.namespace == row.namespace
                    && r.summary.revision == row.revision
                    && r.summary.name == row.name
            })
            .unwrap();
        assert_eq!(&data[..], &original.data[..]);
    }
    assert_eq!(index.cluster.context, "test");
}

#[test]
fn writer_is_deterministic() {
    let a = write_snapshot(Vec::new(), meta(), &sample()).unwrap();
    let mut reversed = sample();
    reversed.reverse();
    let b = write_snapshot(Vec::new(), meta(), &reversed).unwrap();
    assert_eq!(a, b);
}

#[test]
fn unknown_index_fields_are_preserved() {
    let mut m = meta();
    m.extra
        .insert("futureField".to_owned(), serde_json::json!({"a": 1}));
    let bytes = write_snapshot(Vec::new(), m, &sample()).unwrap();
    let (index, _) = read_all(&bytes).unwrap();
    assert_eq!(index.extra["futureField"]["a"], 1);
}

/// Builds a gzip'd tar by hand, so the reader can be fed what our writer never makes.
fn raw_archive(entries: &[(&[u8], tar::EntryType, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for (path, kind, data) in entries {
        let mut h = tar::Header::new_gnu();
        // Write the name bytes directly: set_path refuses `..` and absolute paths.
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path);
        h.set_size(data.len() as u64);
        h.set_entry_type(*kind);
        h.set_mode(0o600);
        if *kind == tar::EntryType::Symlink || *kind == tar::EntryType::Link {
            h.set_link_name("/etc/passwd").unwrap();
        }
        h.set_cksum();
        tar.append(&h, *data).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

fn index_json(records: &[ReleaseRecord]) -> Vec<u8> {
    let mut m = meta();
    m.releases = records
        .iter()
        .map(|r| r.index_row(SourceKind::Helm3).unwrap())
        .collect();
    m.sort();
    serde_json::to_vec(&m).unwrap()
}

#[test]
fn malicious_entries_are_refused() {
    let rec = [record("a", "db", 1, "deployed", "y")];
    let idx = index_json(&rec);
    let path = b"releases/a/db/1.json";
    let data: &[u8] = &rec[0].data;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "`..`",
            raw_archive(&[
                (b"index.json", tar::EntryType::Regular, &idx),
                (
                    b"releases/../../etc/cron.d/x",
                    tar::EntryType::Regular,
                    data,
                ),
            ]),
        ),
        (
            "absolute path",
            raw_archive(&[
                (b"index.json", tar::EntryType::Regular, &idx),
                (b"/etc/passwd", tar::EntryType::Regular, data),
            ]),
        ),
        (
            "symbolic link",
            raw_archive(&[
                (b"index.json", tar::EntryType::Regular, &idx),
                (path, tar::EntryType::Symlink, b""),
            ]),
        ),
        (
            "hard link",
            raw_archive(&[
                (b"index.json", tar::EntryType::Regular, &idx),
                (path, tar::EntryType::Link, b""),
            ]),
        ),
        (
            "device",
            raw_archive(&[
                (b"index.json", tar::EntryType::Regular, &idx),
                (path, tar::EntryType::Char, b""),
            ]),
        ),
        (
            "device",
            raw_archive(&[
                (b"index.json", tar::EntryType::Regular, &idx),
                (path, tar::EntryType::Block, b""),
            ]),
        ),
        (
            "fifo",
            raw_archive(&[
                (b"index.json", tar::EntryType::Regular, &idx),
                (path, tar::EntryType::Fifo, b""),
            ]),
        ),
        (
            "symbolic link",
            raw_archive(&[(b"index.json", tar::EntryType::Symlink, b"")]),
        ),
    ];
    for (reason, bytes) in cases {
        let err = read_all(&bytes).unwrap_err();
        assert!(
            matches!(err, SnapshotError::UnsafeEntry { .. }),
            "{reason}: {err}"
        );
        assert!(err.to_string().contains(reason), "{reason}: {err}");
    }
}

#[test]
fn index_hash_mismatch_is_refused() {
    let rec = [record("a", "db", 1, "deployed", "y")];
    let idx = index_json(&rec);
    let mut tampered = rec[0].data.to_vec();
    let last = tampered.len() - 2;
    tampered[last] = b'X';
    let bytes = raw_archive(&[
        (b"index.json", tar::EntryType::Regular, &idx),
        (b"releases/a/db/1.json", tar::EntryType::Regular, &tampered),
    ]);
    let err = read_all(&bytes).unwrap_err();
    assert!(
        matches!(err, SnapshotError::Mismatch { what: "sha256", .. }),
        "{err}"
    );
}

#[test]
fn extra_missing_and_misordered_entries_are_refused() {
    let rec = [record("a", "db", 1, "deployed", "y")];
    let idx = index_json(&rec);
    let data: &[u8] = &rec[0].data;
    let extra = raw_archive(&[
        (b"index.json", tar::EntryType::Regular, &idx),
        (b"releases/a/db/1.json", tar::EntryType::Regular, data),
        (b"releases/a/db/2.json", tar::EntryType::Regular, data),
    ]);
    assert!(matches!(
        read_all(&extra).unwrap_err(),
        SnapshotError::UnexpectedEntry { .. }
    ));
    let missing = raw_archive(&[(b"index.json", tar::EntryType::Regular, &idx)]);
    assert!(matches!(
        read_all(&missing).unwrap_err(),
        SnapshotError::MissingEntries { missing: 1, .. }
    ));
    let no_index = raw_archive(&[(b"releases/a/db/1.json", tar::EntryType::Regular, data)]);
    assert!(matches!(
        read_all(&no_index).unwrap_err(),
        SnapshotError::NotASnapshot(_)
    ));
}

#[test]
fn oversized_entry_is_refused_before_reading() {
    // 64 MiB of zeros compress to about 64 KiB: a decompression bomb against a
    // 1 MiB limit. The reader must refuse it from its header, without inflating it.
    let limits = Limits {
        max_record: 1 << 20,
        ..Limits::default()
    };
    let bomb: u64 = 64 << 20;
    let rec = [record("a", "db", 1, "deployed", "y")];
    let mut m = meta();
    let mut row = rec[0].index_row(SourceKind::Helm3).unwrap();
    row.size = bomb;
    m.releases = vec![row];
    let idx = serde_json::to_vec(&m).unwrap();
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    let mut h = tar::Header::new_gnu();
    h.set_size(idx.len() as u64);
    h.set_mode(0o600);
    h.set_cksum();
    tar.append_data(&mut h, "index.json", idx.as_slice())
        .unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(bomb);
    h.set_mode(0o600);
    h.set_cksum();
    let zeros = std::io::Read::take(std::io::repeat(0), bomb);
    tar.append_data(&mut h, "releases/a/db/1.json", zeros)
        .unwrap();
    let bytes = tar.into_inner().unwrap().finish().unwrap();
    assert!(bytes.len() < 1 << 20, "the bomb should be small compressed");
    let mut records = 0;
    let err = read_snapshot(bytes.as_slice(), &limits, |_, _, _| {
        records += 1;
        Ok(())
    })
    .unwrap_err();
    assert!(
        matches!(err, SnapshotError::EntryTooLarge { size, limit, .. } if size == bomb && limit == 1 << 20),
        "{err}"
    );
    assert_eq!(records, 0);
}

#[test]
fn truncation_and_trailing_data_are_refused() {
    let bytes = write_snapshot(Vec::new(), meta(), &sample()).unwrap();
    for cut in [1, 10, bytes.len() / 2, bytes.len() - 1] {
        let err = read_all(&bytes[..cut]).unwrap_err();
        assert!(
            matches!(
                err,
                SnapshotError::Truncated | SnapshotError::Io(_) | SnapshotError::NotASnapshot(_)
            ),
            "cut {cut}: {err}"
        );
    }
    let mut extended = bytes.clone();
    extended.extend_from_slice(b"garbage");
    assert!(matches!(
        read_all(&extended).unwrap_err(),
        SnapshotError::TrailingData
    ));
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(b"not a tar").unwrap();
    assert!(read_all(&gz.finish().unwrap()).is_err());
}

#[test]
fn unsafe_names_cannot_be_written() {
    let bad = record("a", "db", 1, "deployed", "y");
    let mut bad2 = bad.summary.clone();
    bad2.name = "../x".to_owned();
    let rec = ReleaseRecord {
        summary: bad2,
        data: bad.data.clone(),
    };
    let err = write_snapshot(Vec::new(), meta(), &[rec]).unwrap_err();
    assert!(matches!(err, SnapshotError::InvalidName { .. }), "{err}");
}

#[test]
fn huge_extension_headers_are_refused_in_bounded_memory() {
    // A GNU long name or PAX header is read whole by the tar crate; 16 MiB of
    // 'a' compresses to a few KiB. The reader must stop at its header budget.
    for kind in [tar::EntryType::GNULongName, tar::EntryType::XHeader] {
        let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        let mut h = tar::Header::new_gnu();
        h.set_size(16 << 20);
        h.set_entry_type(kind);
        h.set_cksum();
        tar.append(&h, std::io::Read::take(std::io::repeat(b'a'), 16 << 20))
            .unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o600);
        h.set_cksum();
        tar.append_data(&mut h, "index.json", &b"x"[..]).unwrap();
        let bytes = tar.into_inner().unwrap().finish().unwrap();
        let err = read_all(&bytes).unwrap_err();
        assert!(err.to_string().contains("over 64 KiB"), "{kind:?}: {err}");
    }
}

#[test]
fn error_paths_are_escaped_and_short() {
    let long = format!("\u{1b}[31m{}", "x".repeat(500));
    let bytes = raw_archive(&[(
        long.as_bytes()[..99].as_ref(),
        tar::EntryType::Regular,
        b"{}",
    )]);
    let err = read_all(&bytes).unwrap_err().to_string();
    assert!(!err.contains('\u{1b}'), "{err}");
}

#[test]
fn archive_order_is_the_kubernetes_list_order() {
    // etcd keys: .../secrets/<ns>/sh.helm.release.v1.<name>.v<rev>, bytewise.
    let mut rows: Vec<IndexRow> = [
        ("apps", "web", 2),
        ("apps-x", "db", 1),
        ("apps", "web", 10),
        ("apps", "web-2", 1),
    ]
    .into_iter()
    .map(|(ns, name, rev)| {
        record(ns, name, rev, "deployed", "v")
            .index_row(SourceKind::Helm3)
            .unwrap()
    })
    .collect();
    rows.sort_by_cached_key(IndexRow::sort_key);
    let keys: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{}/sh.helm.release.v1.{}.v{}",
                r.namespace, r.name, r.revision
            )
        })
        .collect();
    let mut etcd = keys.clone();
    etcd.sort();
    assert_eq!(keys, etcd);
    assert_eq!(keys[0], "apps-x/sh.helm.release.v1.db.v1");
}
