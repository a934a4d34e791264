//! --max-age durations and the RFC 3339 times of index files.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = humantime::parse_duration(text);
        if let Some(t) = helm_bulk::timefmt::parse_rfc3339(text) {
            let _ = helm_bulk::store::bucket::timestamp_of(text);
            let _ = t.unix_timestamp();
        }
        let _ = helm_bulk::timefmt::human(text);
    }
});
