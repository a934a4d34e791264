//! The decrypted snapshot: gzip, tar, the index and every record, read with
//! the limits `show` and `load` use, each record checked against its row.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = helm_bulk::snapshot::Limits::default();
    let _ = helm_bulk::release::read_checked(data, &limits, |_, _, _| Ok(()));
});
