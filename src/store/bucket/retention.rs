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
    use super::super::keys::listed as l;
    use super::*;

    /// The timestamps `prune_plan` deletes.
    fn deleted_timestamps(listed: &[Listed], keep_last: usize, keep_daily: usize) -> Vec<String> {
        prune_plan(listed, keep_last, keep_daily)
            .into_iter()
            .map(|x| x.timestamp)
            .collect()
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
        let del = deleted_timestamps(&listed, 1, 2);
        // keep-last 1: a 0103T02; daily 2: 0103 (T02) and 0102; b keeps its only one.
        assert_eq!(
            del,
            ["20260101T010000Z", "20260101T020000Z", "20260103T010000Z"]
        );
        assert!(prune_plan(&listed, 10, 0).is_empty());
    }

    fn keys(deleted: Vec<Listed>) -> Vec<String> {
        deleted.into_iter().map(|x| x.key).collect()
    }

    #[test]
    fn an_empty_listing_deletes_nothing() {
        assert!(prune_plan(&[], 1, 0).is_empty());
        assert!(prune_plan(&[], 0, 0).is_empty());
    }

    #[test]
    fn keep_last_keeps_the_newest_n_of_each_cluster() {
        let listed = vec![
            l("a", "20260101T010000Z"),
            l("b", "20260101T010000Z"),
            l("a", "20260102T010000Z"),
            l("b", "20260102T010000Z"),
            l("a", "20260103T010000Z"),
        ];
        assert_eq!(
            keys(prune_plan(&listed, 2, 0)),
            [format!("p/a/20260101T010000Z{SNAPSHOT_SUFFIX}")]
        );
        // Deletions come sorted by key, whatever the listing order.
        assert_eq!(
            keys(prune_plan(&listed, 1, 0)),
            [
                format!("p/a/20260101T010000Z{SNAPSHOT_SUFFIX}"),
                format!("p/a/20260102T010000Z{SNAPSHOT_SUFFIX}"),
                format!("p/b/20260101T010000Z{SNAPSHOT_SUFFIX}"),
            ]
        );
        assert!(prune_plan(&listed, 3, 0).is_empty());
    }

    #[test]
    fn keep_daily_counts_days_that_have_snapshots() {
        // Days 01, 02 and 05 (03 and 04 have none): keep-daily 2 keeps the
        // newest of 05 and of 02, skipping the empty days.
        let listed = vec![
            l("a", "20260101T230000Z"),
            l("a", "20260102T010000Z"),
            l("a", "20260102T020000Z"),
            l("a", "20260105T010000Z"),
        ];
        let del = deleted_timestamps(&listed, 0, 2);
        assert_eq!(del, ["20260101T230000Z", "20260102T010000Z"]);
    }

    #[test]
    fn equal_timestamps_keep_the_first_listed() {
        // One cluster name under two prefixes at the same second.
        let mut second = l("a", "20260101T010000Z");
        second.key = format!("q/a/20260101T010000Z{SNAPSHOT_SUFFIX}");
        let listed = vec![l("a", "20260101T010000Z"), second];
        assert_eq!(
            keys(prune_plan(&listed, 1, 0)),
            [format!("q/a/20260101T010000Z{SNAPSHOT_SUFFIX}")]
        );
        assert_eq!(
            keys(prune_plan(&listed, 0, 1)),
            [format!("q/a/20260101T010000Z{SNAPSHOT_SUFFIX}")]
        );
    }

    #[test]
    fn the_newest_of_each_cluster_is_kept_unless_nothing_is() {
        let listed = vec![
            l("a", "20260101T010000Z"),
            l("a", "20260102T010000Z"),
            l("b", "20251231T010000Z"),
            l("a", "20260103T010000Z"),
            l("b", "20260101T010000Z"),
        ];
        for keep_last in 0..4 {
            for keep_daily in 0..4 {
                let del = keys(prune_plan(&listed, keep_last, keep_daily));
                let newest_kept = !del.contains(&listed[3].key) && !del.contains(&listed[4].key);
                // keep-last 0 with keep-daily 0 keeps nothing: the command
                // line refuses those values before planning.
                assert_eq!(
                    newest_kept,
                    keep_last + keep_daily > 0,
                    "{keep_last} {keep_daily}"
                );
            }
        }
        assert_eq!(prune_plan(&listed, 0, 0).len(), listed.len());
    }
}
