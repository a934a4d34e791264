//! A snapshot's detached signature (SSHSIG armor and blob), verified over a
//! fixed message against a fixed trusted signer.
#![no_main]
use libfuzzer_sys::fuzz_target;

const SIGNER: &str = "ops@example.com namespaces=\"helm-bulk\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIF7udT2sa1omYmeT7Ghtp6Y9vL6T5GneImMuB0JO3nwk\n";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(signers) = helm_bulk::vault::sign::parse_allowed_signers(SIGNER, "fuzz") else {
        return;
    };
    let mut message: &[u8] = b"an encrypted snapshot";
    let _ = helm_bulk::vault::sign::verify_stream(&mut message, "snapshot", Some(text), "snapshot.sig", &signers);
});
