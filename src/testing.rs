//! Helpers shared by this crate's tests, its integration tests and its
//! benchmarks. Not part of the API.

/// SplitMix64: a small seeded generator, so generated test data (and a
/// failure found with it) reproduces from the seed.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// One of `items`.
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// An index row for `namespace/name` at `revision` with `status`, chart
/// `c` version `1`, and nothing else filled in: the row the planning and
/// filtering tests build their indexes from.
pub fn index_row(
    namespace: &str,
    name: &str,
    revision: u32,
    status: &str,
) -> crate::snapshot::IndexRow {
    crate::snapshot::IndexRow {
        namespace: namespace.into(),
        name: name.into(),
        revision,
        status: status.into(),
        chart: "c".into(),
        chart_version: "1".into(),
        app_version: String::new(),
        updated: None,
        path: String::new(),
        size: 0,
        sha256: String::new(),
        labels: Default::default(),
        blobs_last_used: Vec::new(),
        extra: Default::default(),
    }
}

/// The tar header helm-bulk writes for an entry of `size` bytes (fixed mode,
/// owner and time), for tests and benchmarks that build the same tar.
pub fn tar_header(size: u64) -> tar::Header {
    crate::snapshot::tar_header(size)
}

/// Empty Helm 3/4 snapshot metadata (Secret driver) for a cluster at
/// `server` reached through kubeconfig context `context`, created
/// 2026-11-26T00:00:00Z.
pub fn helm3_index(server: &str, context: &str) -> crate::snapshot::Index {
    use crate::snapshot::{Cluster, Index, Source, SourceKind};
    Index::new(
        "2026-11-26T00:00:00Z".to_owned(),
        Source {
            kind: SourceKind::Helm3,
            driver: "secret".to_owned(),
            extra: Default::default(),
        },
        Cluster {
            server: server.to_owned(),
            context: context.to_owned(),
            extra: Default::default(),
        },
    )
}

/// The pieces of Go template syntax a frozen chart must escape: braces,
/// actions with and without trim markers, comments. The frozen chart's
/// property test and the differential fidelity test both build texts from them.
pub const TEMPLATE_DELIMITERS: [&str; 10] = [
    "{", "}", "{{", "}}", "{{-", "-}}", "{{- ", " -}}", "{{/*", "*/}}",
];
