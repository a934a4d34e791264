//! The format 2 record codec: any JSON record is split into skeleton and
//! blobs and rebuilt byte for byte; any skeleton (with a few blobs on hand)
//! is rebuilt or refused within its size cap, never past it.
#![no_main]
use libfuzzer_sys::fuzz_target;

use helm_bulk::snapshot::v2::{decode, encode, references};

fuzz_target!(|data: &[u8]| {
    if serde_json::from_slice::<serde_json::Value>(data).is_ok() {
        // Valid JSON: encoding never fails and is exact (encode checks it).
        let enc = encode(data).expect("a JSON record must encode");
        let digests: Vec<[u8; 32]> = enc.blobs.iter().map(|b| b.digest).collect();
        assert_eq!(references(data).unwrap(), digests);
        let back = decode(&enc.skeleton, data.len() as u64, |d| {
            enc.blobs.iter().find(|b| &b.digest == d).map(|b| &*b.data)
        })
        .unwrap();
        assert!(back.as_slice() == data);
    }
    // As a hostile skeleton: every blob resolves to the input itself.
    let cap = 4 * data.len() as u64 + 64;
    if let Ok(out) = decode(data, cap, |_| Some(data)) {
        assert!(out.len() as u64 <= cap);
    }
});
