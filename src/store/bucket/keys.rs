//! The object-key layout, `<prefix>/<cluster>/<YYYYMMDDTHHMMSSZ>.tar.gz.age`
//! (plus `<same>.sig`), which listed objects are snapshots, what a
//! `load --from`/`show` URL names and which snapshot `latest` is.

use object_store::path::Path;

/// The suffix of snapshot objects.
pub const SNAPSHOT_SUFFIX: &str = ".tar.gz.age";

/// A snapshot object found by listing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listed {
    /// The object key.
    pub key: String,
    /// The cluster name part of the key.
    pub cluster: String,
    /// The timestamp part of the key (`YYYYMMDDTHHMMSSZ`).
    pub timestamp: String,
    /// Size in bytes.
    pub size: u64,
    /// Whether `<key>.sig` exists.
    pub signed: bool,
}

/// The cluster and timestamp of a snapshot object key
/// (`<prefix>/<cluster>/<YYYYMMDDTHHMMSSZ>.tar.gz.age`), or `None` for any
/// other object (signatures, foreign files).
pub fn parse_snapshot_key(key: &str) -> Option<(&str, &str)> {
    let (dir, file) = key.rsplit_once('/')?;
    let cluster = dir.rsplit('/').next()?;
    let timestamp = file.strip_suffix(SNAPSHOT_SUFFIX)?;
    if cluster.is_empty() || !is_timestamp(timestamp) {
        return None;
    }
    Some((cluster, timestamp))
}

/// `YYYYMMDDTHHMMSSZ`.
pub fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
}

/// A snapshot timestamp for object names, from an RFC 3339 time.
pub fn timestamp_of(rfc3339: &str) -> String {
    crate::timefmt::basic_utc(rfc3339).unwrap_or_else(|| "19700101T000000Z".to_owned())
}

/// The snapshots among a prefix's `(key, size)` objects, oldest first (by
/// timestamp, then cluster), each marked signed when `<key>.sig` is among
/// them; signatures and other objects are left out.
pub(super) fn snapshots(objects: Vec<(String, u64)>) -> Vec<Listed> {
    let sigs: std::collections::HashSet<&str> = objects
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| k.ends_with(".sig"))
        .collect();
    let mut out: Vec<Listed> = objects
        .iter()
        .filter_map(|(key, size)| {
            let (cluster, timestamp) = parse_snapshot_key(key)?;
            Some(Listed {
                signed: sigs.contains(format!("{key}.sig").as_str()),
                cluster: cluster.to_owned(),
                timestamp: timestamp.to_owned(),
                size: *size,
                key: key.clone(),
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.timestamp, &a.cluster).cmp(&(&b.timestamp, &b.cluster)));
    out
}

/// `rest` (parts separated by `/`, empty parts skipped) below `prefix`.
fn object_key(prefix: &Path, rest: &str) -> Path {
    let mut p = prefix.clone();
    for part in rest.split('/').filter(|s| !s.is_empty()) {
        p = p.clone().join(part);
    }
    p
}

/// The object key for a snapshot of `cluster` taken at `timestamp`
/// (`YYYYMMDDTHHMMSSZ`) under `prefix`.
pub(super) fn snapshot_key(prefix: &Path, cluster: &str, timestamp: &str) -> String {
    object_key(prefix, &format!("{cluster}/{timestamp}{SNAPSHOT_SUFFIX}")).to_string()
}

/// What the path of a `load --from`/`show` URL names.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Named<'a> {
    /// `…/latest`: the newest snapshot under `parent`.
    Latest {
        /// The prefix to look in.
        parent: &'a str,
    },
    /// One snapshot object, which lies in `parent`.
    Object {
        /// The prefix holding the object.
        parent: &'a str,
    },
    /// Neither: not something `load`/`show` can read.
    Other,
}

/// What `path` (the key part of a bucket URL) names.
pub(super) fn named(path: &str) -> Named<'_> {
    if let Some(parent) = path.strip_suffix("latest") {
        return Named::Latest {
            parent: parent.trim_end_matches('/'),
        };
    }
    if path.ends_with(SNAPSHOT_SUFFIX) {
        return Named::Object {
            parent: path.rsplit_once('/').map(|(p, _)| p).unwrap_or(""),
        };
    }
    Named::Other
}

/// The URL of the prefix a `…/latest` URL looks in.
pub(super) fn latest_parent_url(url: &str) -> &str {
    url.trim_end_matches("latest").trim_end_matches('/')
}

/// What `latest` resolves to in a listing: the snapshot with the newest
/// timestamp, whichever its cluster; of equal timestamps, the last listed
/// (a listing is sorted by timestamp, then cluster).
pub fn newest(listed: &[Listed]) -> Option<&Listed> {
    listed.iter().max_by(|a, b| a.timestamp.cmp(&b.timestamp))
}

/// A listed snapshot `p/<cluster>/<timestamp>.tar.gz.age`, for tests.
#[cfg(test)]
pub(super) fn listed(cluster: &str, timestamp: &str) -> Listed {
    Listed {
        key: format!("p/{cluster}/{timestamp}{SNAPSHOT_SUFFIX}"),
        cluster: cluster.into(),
        timestamp: timestamp.into(),
        size: 1,
        signed: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert!(is_timestamp("20261126T164600Z"));
        assert!(!is_timestamp("2026-11-26"));
        assert_eq!(timestamp_of("2026-11-26T16:46:00Z"), "20261126T164600Z");
    }

    #[test]
    fn snapshot_keys_follow_the_layout_and_parse_back() {
        let ts = "20261126T164600Z";
        assert_eq!(
            snapshot_key(&Path::from("backups/helm"), "prod", ts),
            "backups/helm/prod/20261126T164600Z.tar.gz.age"
        );
        // An empty prefix (a bucket's root) adds no leading slash.
        let root = snapshot_key(&Path::from(""), "prod", ts);
        assert_eq!(root, "prod/20261126T164600Z.tar.gz.age");
        assert_eq!(parse_snapshot_key(&root), Some(("prod", ts)));
        assert_eq!(
            parse_snapshot_key("a/b/prod/20261126T164600Z.tar.gz.age"),
            Some(("prod", ts))
        );
    }

    #[test]
    fn other_objects_are_not_snapshots() {
        for key in [
            "p/prod/20261126T164600Z.tar.gz.age.sig",
            "p/prod/20261126T164600Z.tar.gz",
            "p/prod/2026-11-26.tar.gz.age",
            "20261126T164600Z.tar.gz.age",
            "/20261126T164600Z.tar.gz.age",
            "p/prod/notes.txt",
        ] {
            assert_eq!(parse_snapshot_key(key), None, "{key}");
        }
    }

    #[test]
    fn what_a_url_path_names() {
        assert_eq!(named("p/prod/latest"), Named::Latest { parent: "p/prod" });
        assert_eq!(named("latest"), Named::Latest { parent: "" });
        assert_eq!(
            named("p/prod/20261126T164600Z.tar.gz.age"),
            Named::Object { parent: "p/prod" }
        );
        assert_eq!(
            named("20261126T164600Z.tar.gz.age"),
            Named::Object { parent: "" }
        );
        assert_eq!(named("p/prod"), Named::Other);
        assert_eq!(named(""), Named::Other);
        assert_eq!(latest_parent_url("s3://b/p/prod/latest"), "s3://b/p/prod");
        assert_eq!(latest_parent_url("file:///d/latest"), "file:///d");
    }

    #[test]
    fn latest_is_the_newest_timestamp_of_any_cluster() {
        assert!(newest(&[]).is_none());
        let one = [listed("a", "20260101T000000Z")];
        assert_eq!(
            newest(&one).map(|l| l.key.as_str()),
            Some(one[0].key.as_str())
        );
        // Listings are sorted by timestamp then cluster; the newest wins
        // whatever its cluster, and of equal timestamps the last listed.
        let many = [
            listed("b", "20260101T000000Z"),
            listed("a", "20260102T000000Z"),
            listed("c", "20260102T000000Z"),
            listed("z", "20260101T120000Z"),
        ];
        assert_eq!(
            newest(&many).map(|l| l.key.as_str()),
            Some("p/c/20260102T000000Z.tar.gz.age")
        );
    }

    #[test]
    fn a_listing_keeps_snapshots_oldest_first_and_marks_signed_ones() {
        let objects = [
            ("p/b/20260102T000000Z.tar.gz.age", 30),
            ("p/b/20260102T000000Z.tar.gz.age.sig", 1),
            ("p/a/20260102T000000Z.tar.gz.age", 20),
            ("p/a/20260101T000000Z.tar.gz.age", 10),
            ("p/a/20260101T000000Z.tar.gz.age.pre-rekey", 10),
            ("p/orphan/20260103T000000Z.tar.gz.age.sig", 1),
            ("p/README", 5),
        ];
        let got = snapshots(objects.iter().map(|(k, s)| ((*k).to_owned(), *s)).collect());
        let got: Vec<(&str, u64, bool)> = got
            .iter()
            .map(|l| (l.key.as_str(), l.size, l.signed))
            .collect();
        assert_eq!(
            got,
            [
                ("p/a/20260101T000000Z.tar.gz.age", 10, false),
                ("p/a/20260102T000000Z.tar.gz.age", 20, false),
                ("p/b/20260102T000000Z.tar.gz.age", 30, true),
            ]
        );
        assert!(snapshots(Vec::new()).is_empty());
    }
}
