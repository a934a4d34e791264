//! Retention: which snapshots `prune` deletes, decided from the listing
//! alone (no bucket access), so it can be tested without a store.

use super::Listed;

/// Which snapshots `prune` deletes: all but the newest `keep_last` and the
/// newest of each of the `keep_daily` most recent days, per cluster.
pub fn prune_plan(listed: &[Listed], keep_last: usize, keep_daily: usize) -> Vec<Listed> {
    let mut by_cluster: std::collections::BTreeMap<&str, Vec<&Listed>> = Default::default();
    for l in listed {
        by_cluster.entry(&l.cluster).or_default().push(l);
    }
    let mut delete = Vec::new();
    for (_, mut snaps) in by_cluster {
        snaps.sort_by(|a, b| b.timestamp.cmp(&a.timestamp));
        let mut keep: std::collections::HashSet<&str> = snaps
            .iter()
            .take(keep_last)
            .map(|l| l.key.as_str())
            .collect();
        let mut days = Vec::new();
        for l in &snaps {
            let day = &l.timestamp[..8];
            if days.len() < keep_daily && !days.contains(&day) {
                days.push(day);
                keep.insert(&l.key);
            }
        }
        delete.extend(
            snaps
                .into_iter()
                .filter(|l| !keep.contains(l.key.as_str()))
                .cloned(),
        );
    }
    delete.sort_by(|a, b| a.key.cmp(&b.key));
    delete
}

#[cfg(test)]
mod tests {
    use super::super::SNAPSHOT_SUFFIX;
    use super::*;

    fn l(cluster: &str, ts: &str) -> Listed {
        Listed {
            key: format!("p/{cluster}/{ts}{SNAPSHOT_SUFFIX}"),
            cluster: cluster.into(),
            timestamp: ts.into(),
            size: 1,
            signed: false,
        }
    }

    #[test]
    fn prune_keeps_last_and_daily_per_cluster() {
        let listed = vec![
            l("a", "20260101T010000Z"),
            l("a", "20260101T020000Z"),
            l("a", "20260102T010000Z"),
            l("a", "20260103T010000Z"),
            l("a", "20260103T020000Z"),
            l("b", "20260101T010000Z"),
        ];
        let del: Vec<String> = prune_plan(&listed, 1, 2)
            .into_iter()
            .map(|x| x.timestamp)
            .collect();
        // keep-last 1: a 0103T02; daily 2: 0103 (T02) and 0102; b keeps its only one.
        assert_eq!(
            del,
            ["20260101T010000Z", "20260101T020000Z", "20260103T010000Z"]
        );
        assert!(prune_plan(&listed, 10, 0).is_empty());
    }
}
