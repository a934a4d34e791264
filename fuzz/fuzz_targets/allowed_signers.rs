//! An OpenSSH allowed_signers file (--trusted-signers).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = helm_bulk::vault::sign::parse_allowed_signers(text, "fuzz");
    }
});
