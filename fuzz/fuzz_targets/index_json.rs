//! The snapshot index (`index.json`) on its own.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(index) = serde_json::from_slice::<helm_bulk::snapshot::Index>(data) {
        let _ = index.validate();
    }
});
