//! A Helm 2 (Tiller) release record: protobuf decoding, its summary and
//! values, and the frozen chart built from it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(release) = helm_bulk::tiller::record::decode(data) {
        let _ = helm_bulk::tiller::record::summary(&release);
        let _ = helm_bulk::tiller::record::user_values_json(&release);
    }
    let _ = helm_bulk::restore::frozen_helm2::freeze_record(data);
});
