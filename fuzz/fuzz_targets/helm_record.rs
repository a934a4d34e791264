//! A Helm 3/4 release record: its summary, its user values, the kinds it
//! uses, and the frozen chart built from it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = helm_bulk::release::Summary::from_helm_json(data);
    let _ = helm_bulk::release::helm_user_values(data);
    let _ = helm_bulk::release::kinds_used(data);
    let _ = helm_bulk::restore::frozen::freeze(data);
});
