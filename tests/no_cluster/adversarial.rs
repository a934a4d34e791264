//! Adversarial snapshot plaintexts (well-formed encryption around hostile or
//! lying archives), shared by the tests that must refuse them.
#![allow(dead_code)]

use helm_bulk::release::ReleaseRecord;

/// A tar.gz built by hand, so a reader can be fed what helm-bulk never writes.
/// An entry: raw path bytes, type, content, and a size to fill with zeros instead.
pub type RawEntry<'a> = (&'a [u8], tar::EntryType, &'a [u8], Option<u64>);

/// Builds a tar.gz from raw entries.
pub fn raw_archive(entries: &[RawEntry]) -> Vec<u8> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (path, kind, data, size) in entries {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..path.len()].copy_from_slice(path);
        h.set_size(size.unwrap_or(data.len() as u64));
        h.set_entry_type(*kind);
        h.set_mode(0o600);
        if matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link) {
            h.set_link_name("/etc/shadow").unwrap();
        }
        h.set_cksum();
        match size {
            Some(n) => tar
                .append(&h, std::io::Read::take(std::io::repeat(0), *n))
                .unwrap(),
            None => tar.append(&h, *data).unwrap(),
        }
    }
    tar.into_inner().unwrap().finish().unwrap()
}

/// Hostile archives around one valid record: (part of the expected error, plaintext).
pub fn hostile_archives() -> Vec<(&'static str, Vec<u8>)> {
    let rec = [super::record("a", "db", 1, "deployed", "pw")];
    let mut m = super::meta();
    m.releases = vec![
        rec[0]
            .index_row(helm_bulk::snapshot::SourceKind::Helm3)
            .unwrap(),
    ];
    let index = serde_json::to_vec(&m).unwrap();
    let path: &[u8] = b"releases/a/db/1.json";
    let data: &[u8] = &rec[0].data;
    let mut tampered = data.to_vec();
    let n = tampered.len();
    tampered[n - 3] ^= 1;
    let mut big = m.clone();
    big.releases[0].size = 200 << 20;
    let big_index = serde_json::to_vec(&big).unwrap();
    let reg = tar::EntryType::Regular;
    let with_index = |entry: RawEntry| raw_archive(&[(b"index.json", reg, &index, None), entry]);
    vec![
        (
            "does not match the index: sha256",
            with_index((path, reg, &tampered, None)),
        ),
        (
            "path contains `..`",
            with_index((b"releases/../../../tmp/x", reg, data, None)),
        ),
        ("absolute path", with_index((b"/tmp/evil", reg, data, None))),
        (
            "symbolic link",
            with_index((path, tar::EntryType::Symlink, b"", None)),
        ),
        (
            "hard link",
            with_index((path, tar::EntryType::Link, b"", None)),
        ),
        (
            "device",
            with_index((path, tar::EntryType::Block, b"", None)),
        ),
        (
            "device",
            with_index((path, tar::EntryType::Char, b"", None)),
        ),
        ("fifo", with_index((path, tar::EntryType::Fifo, b"", None))),
        // 200 MiB of zeros: about 200 KiB compressed, refused from its header.
        (
            "over the limit",
            raw_archive(&[
                (b"index.json", reg, &big_index, None),
                (path, reg, b"", Some(200 << 20)),
            ]),
        ),
        (
            "the first entry is",
            raw_archive(&[(path, reg, data, None)]),
        ),
        (
            "record(s) in the index are missing",
            raw_archive(&[(b"index.json", reg, &index, None)]),
        ),
    ]
}

/// The plaintext of a snapshot whose index row for one record says `listed`
/// (namespace, name, revision) while the record's own JSON says prod/web/2.
pub fn lying_plain(listed: (&str, &str, u32)) -> Vec<u8> {
    let honest = super::record("prod", "web", 2, "deployed", "s3cr3t");
    let mut summary = honest.summary.clone();
    summary.namespace = listed.0.to_owned();
    summary.name = listed.1.to_owned();
    summary.revision = listed.2;
    let lying = ReleaseRecord {
        summary,
        data: honest.data.clone(),
    };
    super::plain_snapshot(&[super::record("dev", "db", 1, "deployed", "x"), lying])
}
