//! Whether every cluster has a recent, verified snapshot: the logic behind
//! `helm bulk check`, for monitoring. Pure functions over a bucket listing
//! (which snapshot is each cluster's newest, how old it is, what to report)
//! and the Prometheus textfile they produce; the I/O (listing, fetching a
//! signature, hashing the object) stays with the caller.

use std::collections::BTreeMap;
use std::time::Duration;

use time::OffsetDateTime;

use crate::store::bucket::Listed;

/// The state of one cluster's newest snapshot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Health {
    /// Verified and younger than the maximum age.
    Ok,
    /// Older than the maximum age.
    Stale,
    /// Its signature is missing or does not verify with the trusted signers.
    Unverified,
    /// No snapshot of an expected cluster under the prefix.
    Missing,
}

/// The outcome of checking one cluster.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClusterReport {
    /// The cluster name (the key's folder).
    pub cluster: String,
    /// Overall state (stale wins over unverified when both apply, since a
    /// verified old snapshot is still old).
    pub health: Health,
    /// The newest snapshot's key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Its creation time, from the key (`YYYYMMDDTHHMMSSZ`), in seconds since
    /// the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// Its age in seconds when checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_seconds: Option<i64>,
    /// Its size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Whether its signature verified with the trusted signers.
    pub verified: bool,
    /// Who signed it (when verified), or why it did not verify.
    pub detail: String,
}

/// Seconds since the epoch of a key timestamp (`20261201T030000Z`).
pub fn key_time(timestamp: &str) -> Option<OffsetDateTime> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(timestamp, &format)
        .ok()
        .map(|t| t.assume_utc())
}

/// Each cluster's newest snapshot, by cluster name. `listed` is a bucket
/// listing in any order.
pub fn newest_per_cluster(listed: &[Listed]) -> BTreeMap<String, Listed> {
    let mut newest: BTreeMap<String, Listed> = BTreeMap::new();
    for l in listed {
        match newest.get(&l.cluster) {
            Some(have) if have.timestamp >= l.timestamp => {}
            _ => {
                newest.insert(l.cluster.clone(), l.clone());
            }
        }
    }
    newest
}

/// The verdict on one newest snapshot: `verification` is who signed it, or
/// why it did not verify.
pub fn assess(
    newest: &Listed,
    verification: Result<String, String>,
    now: OffsetDateTime,
    max_age: Duration,
) -> ClusterReport {
    let created = key_time(&newest.timestamp);
    let age = created.map(|c| (now - c).whole_seconds());
    let stale = match age {
        Some(a) => a < 0 || a as u64 > max_age.as_secs(),
        None => true,
    };
    let verified = verification.is_ok();
    let health = if stale {
        Health::Stale
    } else if !verified {
        Health::Unverified
    } else {
        Health::Ok
    };
    let detail = match (&verification, age) {
        (_, Some(a)) if a < 0 => {
            format!("dated {}s in the future (clock skew or a forged name)", -a)
        }
        (Ok(signer), _) => format!("signed by {signer}"),
        (Err(why), _) => why.clone(),
    };
    ClusterReport {
        cluster: newest.cluster.clone(),
        health,
        key: Some(newest.key.clone()),
        timestamp: created.map(|c| c.unix_timestamp()),
        age_seconds: age,
        bytes: Some(newest.size),
        verified,
        detail,
    }
}

/// The report for an expected cluster with no snapshot.
pub fn missing(cluster: &str) -> ClusterReport {
    ClusterReport {
        cluster: cluster.to_owned(),
        health: Health::Missing,
        key: None,
        timestamp: None,
        age_seconds: None,
        bytes: None,
        verified: false,
        detail: "no snapshot under the prefix".to_owned(),
    }
}

/// Escapes a Prometheus label value (backslash, double quote, newline).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The node exporter textfile for `reports`: per cluster, the newest
/// snapshot's time and size (when there is one) and whether it verified.
pub fn prometheus_textfile(url: &str, reports: &[ClusterReport]) -> String {
    let mut out = String::new();
    type Sample = fn(&ClusterReport) -> Option<String>;
    let metrics: [(&str, &str, Sample); 3] = [
        (
            "helm_bulk_last_snapshot_timestamp_seconds",
            "Creation time of the cluster's newest helm-bulk snapshot (from its object key), in seconds since the epoch.",
            |r| r.timestamp.map(|t| t.to_string()),
        ),
        (
            "helm_bulk_last_snapshot_bytes",
            "Size of the cluster's newest helm-bulk snapshot, in bytes.",
            |r| r.bytes.map(|b| b.to_string()),
        ),
        (
            "helm_bulk_last_snapshot_verified",
            "1 if the cluster's newest helm-bulk snapshot is signed by a trusted signer, else 0.",
            |r| Some(u8::from(r.verified).to_string()),
        ),
    ];
    for (name, help, value) in metrics {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        for r in reports {
            if let Some(v) = value(r) {
                out.push_str(&format!(
                    "{name}{{url=\"{}\",cluster=\"{}\"}} {v}\n",
                    label(url),
                    label(&r.cluster)
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(cluster: &str, timestamp: &str, size: u64) -> Listed {
        Listed {
            key: format!("p/{cluster}/{timestamp}.tar.gz.age"),
            cluster: cluster.to_owned(),
            timestamp: timestamp.to_owned(),
            size,
            signed: true,
        }
    }

    fn at(timestamp: &str) -> OffsetDateTime {
        key_time(timestamp).expect("a key timestamp")
    }

    #[test]
    fn key_times_parse_and_refuse_garbage() {
        assert_eq!(
            key_time("20261201T030405Z").map(|t| t.unix_timestamp()),
            Some(1_796_094_245)
        );
        for bad in [
            "",
            "2026-12-01T03:04:05Z",
            "20261301T000000Z",
            "20261201T030405",
        ] {
            assert_eq!(key_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_newest_snapshot_of_each_cluster_is_chosen() {
        let all = [
            listed("prod", "20261130T030000Z", 1),
            listed("dev", "20261201T030000Z", 2),
            listed("prod", "20261201T030000Z", 3),
            listed("prod", "20261129T030000Z", 4),
        ];
        let newest = newest_per_cluster(&all);
        assert_eq!(newest.len(), 2);
        assert_eq!(newest["prod"].size, 3);
        assert_eq!(newest["dev"].size, 2);
    }

    #[test]
    fn fresh_stale_unverified_and_future() {
        let now = at("20261201T120000Z");
        let day = Duration::from_secs(26 * 3600);
        let fresh = listed("a", "20261201T030000Z", 10);
        let r = assess(&fresh, Ok("ops".into()), now, day);
        assert_eq!(
            (r.health, r.verified, r.age_seconds),
            (Health::Ok, true, Some(9 * 3600))
        );
        assert_eq!(r.detail, "signed by ops");

        let r = assess(&fresh, Err("not signed".into()), now, day);
        assert_eq!((r.health, r.verified), (Health::Unverified, false));

        let old = listed("a", "20261129T030000Z", 10);
        let r = assess(&old, Ok("ops".into()), now, day);
        assert_eq!(r.health, Health::Stale);

        let future = listed("a", "20261202T030000Z", 10);
        let r = assess(&future, Ok("ops".into()), now, day);
        assert_eq!(r.health, Health::Stale);
        assert!(r.detail.contains("future"), "{}", r.detail);

        // Exactly at the limit is still fresh.
        let edge = listed("a", "20261130T100000Z", 10);
        assert_eq!(assess(&edge, Ok("ops".into()), now, day).health, Health::Ok);
    }

    #[test]
    fn textfile_has_each_metric_once_with_escaped_labels() {
        let now = at("20261201T120000Z");
        let day = Duration::from_secs(26 * 3600);
        let reports = vec![
            assess(
                &listed("prod", "20261201T030000Z", 1234),
                Ok("ops".into()),
                now,
                day,
            ),
            missing("we\"ird\\name"),
        ];
        let text = prometheus_textfile("s3://b/p", &reports);
        assert!(text.contains(
            "helm_bulk_last_snapshot_timestamp_seconds{url=\"s3://b/p\",cluster=\"prod\"} 1796094000\n"
        ));
        assert!(
            text.contains(
                "helm_bulk_last_snapshot_bytes{url=\"s3://b/p\",cluster=\"prod\"} 1234\n"
            )
        );
        assert!(
            text.contains(
                "helm_bulk_last_snapshot_verified{url=\"s3://b/p\",cluster=\"prod\"} 1\n"
            )
        );
        assert!(text.contains(
            "helm_bulk_last_snapshot_verified{url=\"s3://b/p\",cluster=\"we\\\"ird\\\\name\"} 0\n"
        ));
        // A missing cluster has no time or size sample.
        assert_eq!(text.matches("we\\\"ird").count(), 1);
        assert_eq!(text.matches("# TYPE").count(), 3);
    }
}
