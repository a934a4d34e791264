//! Object keys found when listing a bucket, and the timestamps in them.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = std::str::from_utf8(data) {
        if let Some((cluster, timestamp)) = helm_bulk::store::bucket::parse_snapshot_key(key) {
            assert!(!cluster.is_empty() && !cluster.contains('/'));
            assert!(helm_bulk::store::bucket::is_timestamp(timestamp));
            let _ = helm_bulk::freshness::key_time(timestamp);
        }
    }
});
