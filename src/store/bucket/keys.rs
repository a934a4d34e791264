//! The object-key layout, `<prefix>/<cluster>/<YYYYMMDDTHHMMSSZ>.tar.gz.age`
//! (plus `<same>.sig`), and what a `load --from`/`show` URL names.

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
    match crate::timefmt::parse_rfc3339(rfc3339) {
        Some(t) => {
            let t = t.to_offset(time::UtcOffset::UTC);
            format!(
                "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        }
        None => "19700101T000000Z".to_owned(),
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
}
