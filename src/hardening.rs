//! Hardening of the process that holds decrypted snapshots in memory.
//!
//! Decrypted release records (values with passwords, generated secrets, TLS
//! keys) live in this process's memory while `show` and `load` read them and
//! while `save` streams them into age. A core dump would copy them to disk,
//! and a debugger attached by another process of the same user could read
//! them. [`protect_memory`] turns both off for the life of the process.

/// Forbids core dumps (`RLIMIT_CORE` 0, soft and hard) and, on Linux, marks
/// the process not dumpable (`PR_SET_DUMPABLE` 0: no core dump whatever the
/// limit or `core_pattern`, no `ptrace` attach or `/proc/PID/mem` read by
/// processes of the same user without `CAP_SYS_PTRACE`).
pub fn protect_memory() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, setrlimit};
        setrlimit(
            Resource::Core,
            Rlimit {
                current: Some(0),
                maximum: Some(0),
            },
        )?;
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)?;
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn core_dumps_are_off_afterwards() {
        super::protect_memory().expect("protect_memory");
        let limits = std::fs::read_to_string("/proc/self/limits").expect("read /proc/self/limits");
        let core = limits
            .lines()
            .find(|l| l.starts_with("Max core file size"))
            .expect("a core limit line");
        let fields: Vec<&str> = core.split_whitespace().collect();
        // "Max core file size  0  0  bytes"
        assert_eq!(&fields[4..6], ["0", "0"], "{core}");
        assert_eq!(
            rustix::process::dumpable_behavior().expect("PR_GET_DUMPABLE"),
            rustix::process::DumpableBehavior::NotDumpable
        );
    }
}
