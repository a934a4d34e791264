//! Helm 3/4's storage record: the object Helm's `secret` and `configmap`
//! drivers keep for one release revision (`pkg/storage/driver/secrets.go`,
//! `cfgmaps.go` and `util.go` in helm v3.22.0 and v4.3.1), written back by
//! load when it restores a release's history. The decoder is
//! [`crate::source::helm::decode_payload`].
//!
//! * name `sh.helm.release.v1.<release>.v<revision>` (`storage.go`'s makeKey),
//!   in the release's namespace;
//! * a Secret of type `helm.sh/release.v1`, or a ConfigMap;
//! * key `release`: base64 (standard alphabet, padded) of gzip
//!   (best compression) of the release JSON;
//! * labels: the release's own labels (`helm install --labels`), then
//!   `name`, `owner=helm`, `status`, `version`, and `createdAt` (Unix
//!   seconds) when the object is created, `modifiedAt` when it is updated.

use std::collections::BTreeMap;
use std::io::Write as _;

use base64::Engine as _;
use zeroize::Zeroizing;

/// The type of Helm's release Secrets.
pub const SECRET_TYPE: &str = "helm.sh/release.v1";

/// The labels Helm's drivers set themselves.
pub const SYSTEM_LABELS: [&str; 6] = [
    "name",
    "owner",
    "status",
    "version",
    "createdAt",
    "modifiedAt",
];

/// The storage object name of one revision.
pub fn key(release: &str, revision: u32) -> String {
    format!("sh.helm.release.v1.{release}.v{revision}")
}

/// Encodes a release record (its JSON) as Helm's drivers do: gzip at best
/// compression, then standard base64.
pub fn encode_payload(json: &[u8]) -> Zeroizing<String> {
    // Room for gzip's worst case, so the buffer is never reallocated (and
    // no copy of the compressed values is left behind unwiped).
    let mut gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(json.len() + json.len() / 100 + 1024),
        flate2::Compression::best(),
    );
    // Writing into memory cannot fail.
    let _ = gz.write_all(json);
    let zipped = Zeroizing::new(gz.finish().unwrap_or_default());
    Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(zipped.as_slice()))
}

/// Whether the object is created or updated: Helm's Create sets
/// `createdAt`, its Update `modifiedAt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// A new object.
    Create,
    /// An object replaced.
    Update,
}

/// The labels of the storage object of one revision: the release's own
/// labels first, then Helm's (which win), as `newSecretsObject` applies them.
pub fn labels(
    release: &str,
    revision: u32,
    status: &str,
    release_labels: &BTreeMap<String, String>,
    write: Write,
    now_unix: i64,
) -> BTreeMap<String, String> {
    let mut l: BTreeMap<String, String> = release_labels
        .iter()
        .filter(|(k, _)| !SYSTEM_LABELS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let stamp = match write {
        Write::Create => "createdAt",
        Write::Update => "modifiedAt",
    };
    l.insert(stamp.to_owned(), now_unix.to_string());
    l.insert("name".to_owned(), release.to_owned());
    l.insert("owner".to_owned(), "helm".to_owned());
    l.insert("status".to_owned(), status.to_owned());
    l.insert("version".to_owned(), revision.to_string());
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_through_the_decoder() {
        let json = br#"{"name":"web","version":3,"info":{"status":"superseded"}}"#;
        let p = encode_payload(json);
        let raw = base64::engine::general_purpose::STANDARD
            .decode(p.as_bytes())
            .unwrap();
        assert_eq!(&raw[..3], &[0x1f, 0x8b, 0x08], "gzip, as Helm writes it");
        let back = crate::source::helm::decode_payload(p.as_bytes()).unwrap();
        assert_eq!(back.as_slice(), json);
    }

    #[test]
    fn helm_labels_win_over_the_release_labels() {
        let mut own = BTreeMap::new();
        own.insert("team".to_owned(), "a".to_owned());
        own.insert("status".to_owned(), "spoofed".to_owned());
        let l = labels("web", 2, "superseded", &own, Write::Create, 1700000000);
        let want: BTreeMap<String, String> = [
            ("createdAt", "1700000000"),
            ("name", "web"),
            ("owner", "helm"),
            ("status", "superseded"),
            ("team", "a"),
            ("version", "2"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(l, want);
        let l = labels("web", 2, "deployed", &own, Write::Update, 5);
        assert_eq!(l.get("modifiedAt").map(String::as_str), Some("5"));
        assert!(!l.contains_key("createdAt"));
        assert_eq!(key("web", 12), "sh.helm.release.v1.web.v12");
    }
}
