//! Saving Helm 2 releases: from Tiller over gRPC ([`GrpcSource`], `save
//! --source tiller`) or from Tiller's storage objects when Tiller is gone
//! ([`StorageSource`], `save --source tiller-storage`).
//!
//! Both keep every revision as the exact protobuf bytes of its
//! `hapi.release.Release`, and work in two passes like the Helm 3/4 source:
//! the first builds the index, the second sends the records in index order,
//! holding one release's history (gRPC) or one page (storage) at a time.
//!
//! Which releases: those with a revision in one of the `--status` statuses
//! (by default `deployed`), which is what Tiller's ListReleases selects; then
//! `--history` per release as for Helm 3/4.
//!
//! Tiller's storage: one ConfigMap (Tiller's default) or Secret per revision,
//! in Tiller's namespace, named `<release>.v<revision>`, labelled
//! `OWNER=TILLER`, `NAME`, `VERSION` and `STATUS`; its `release` key holds
//! base64 of gzip of the protobuf bytes.

use std::collections::{BTreeSet, HashMap};

use zeroize::Zeroizing;

use super::helm::{
    Plan, SaveFilter, StoredError, apply_filter, decode_payload, send_in_index_order,
};
use super::list::{Lister, RawObject};
use super::{Driver, RecordSender, Source, SourceError};
use crate::release::{ReleaseId, ReleaseKey, ReleaseRecord};
use crate::snapshot::{IndexRow, SourceKind};
use crate::tiller::client::Tiller;
use crate::tiller::hapi::release::status::Code;
use crate::tiller::record::{record_from_bytes, status_name};

/// The label selector of Tiller's storage objects.
pub const OWNER_SELECTOR: &str = "OWNER=TILLER";

fn tiller_err(e: crate::tiller::TillerError) -> SourceError {
    SourceError::Tiller(e)
}

/// Keeps the releases with a revision in `statuses`, then applies `--history`.
fn select(rows: Vec<IndexRow>, statuses: &[Code], filter: &SaveFilter) -> Vec<IndexRow> {
    let wanted: Vec<&str> = statuses.iter().map(|c| status_name(*c as i32)).collect();
    let keep: BTreeSet<ReleaseKey> = rows
        .iter()
        .filter(|r| wanted.contains(&r.status.as_str()))
        .map(|r| r.release_key())
        .collect();
    let rows = rows
        .into_iter()
        .filter(|r| keep.contains(r.release_id()))
        .collect();
    let history_only = SaveFilter {
        selection: filter.selection.clone(),
        history: filter.history,
        statuses: Vec::new(),
    };
    apply_filter(rows, &history_only)
}

/// The kinds used by each planned revision, by `(namespace, name, revision)`.
type KindsOf = HashMap<crate::release::RevisionKey, BTreeSet<crate::release::GroupKind>>;

/// Adds a decoded record to the first-pass state.
fn note(
    record: ReleaseRecord,
    kinds: BTreeSet<crate::release::GroupKind>,
    filter: &SaveFilter,
    scope: Option<&str>,
    rows: &mut Vec<IndexRow>,
    kinds_of: &mut KindsOf,
) -> Result<(), SourceError> {
    let s = &record.summary;
    if scope.is_some_and(|ns| ns != s.namespace) || !filter.selection.matches(&s.namespace, &s.name)
    {
        return Ok(());
    }
    let row = record
        .index_row(SourceKind::Tiller)
        .map_err(|e| SourceError::Write(e.to_string()))?;
    kinds_of.insert((&row).into(), kinds);
    rows.push(row);
    Ok(())
}

fn finish(
    rows: Vec<IndexRow>,
    statuses: &[Code],
    filter: &SaveFilter,
    kinds_of: KindsOf,
    resource_version: String,
    problems: Vec<String>,
) -> Plan {
    let rows = select(rows, statuses, filter);
    let kinds = crate::source::helm::kinds_by_release(&rows, kinds_of);
    Plan {
        rows,
        resource_version,
        problems,
        kinds,
        objects: None,
    }
}

/// Releases read from Tiller over gRPC.
pub struct GrpcSource {
    tiller: Tiller,
    scope: Option<String>,
    statuses: Vec<Code>,
    page_size: u32,
}

impl GrpcSource {
    /// A source over a connected Tiller; `scope` limits it to one namespace.
    pub fn new(tiller: Tiller, scope: Option<String>, statuses: Vec<Code>, page_size: u32) -> Self {
        GrpcSource {
            tiller,
            scope,
            statuses,
            page_size: page_size.max(1),
        }
    }

    /// The names of the releases ListReleases selects, sorted.
    async fn names(&self, filter: &SaveFilter) -> Result<BTreeSet<String>, SourceError> {
        let listed = self
            .tiller
            .list_all(&self.statuses, self.scope.as_deref(), self.page_size)
            .await
            .map_err(tiller_err)?;
        Ok(listed
            .into_iter()
            .filter(|l| filter.selection.matches(&l.namespace, &l.name))
            .map(|l| l.name)
            .collect())
    }
}

impl Source for GrpcSource {
    /// First pass: ListReleases, then GetHistory of each release.
    async fn plan(&self, filter: &SaveFilter) -> Result<Plan, SourceError> {
        let mut rows = Vec::new();
        let mut problems = Vec::new();
        let mut kinds_of = HashMap::new();
        for name in self.names(filter).await? {
            let history = self.tiller.history_raw(&name).await.map_err(tiller_err)?;
            for (i, data) in history.into_iter().enumerate() {
                match record_from_bytes(data) {
                    Ok((record, release)) => note(
                        record,
                        crate::tiller::record::kinds_used(&release),
                        filter,
                        self.scope.as_deref(),
                        &mut rows,
                        &mut kinds_of,
                    )?,
                    Err(why) => problems.push(format!("{name} (history entry {}): {why}", i + 1)),
                }
            }
        }
        Ok(finish(
            rows,
            &self.statuses,
            filter,
            kinds_of,
            String::new(),
            problems,
        ))
    }

    /// Second pass: GetHistory again, sending each planned revision in index
    /// order. A revision that changed since the first pass makes the attempt
    /// start again ([`SourceError::Expired`]); one that is gone fails it.
    async fn fetch(&self, plan: &Plan, tx: &RecordSender) -> Result<(), SourceError> {
        let mut remaining: HashMap<String, usize> = HashMap::new();
        for r in &plan.rows {
            *remaining.entry(r.name.clone()).or_default() += 1;
        }
        let mut cache: HashMap<String, HashMap<u32, Zeroizing<Vec<u8>>>> = HashMap::new();
        for (pos, row) in plan.rows.iter().enumerate() {
            if !cache.contains_key(&row.name) {
                let mut revisions = HashMap::new();
                for data in self
                    .tiller
                    .history_raw(&row.name)
                    .await
                    .map_err(tiller_err)?
                {
                    if let Ok(release) = crate::tiller::record::decode(&data)
                        && let Ok(rev) = u32::try_from(release.version)
                    {
                        revisions.insert(rev, data);
                    }
                }
                cache.insert(row.name.clone(), revisions);
            }
            let data = cache
                .get_mut(&row.name)
                .and_then(|m| m.remove(&row.revision))
                .ok_or_else(|| SourceError::Vanished(row.path.clone()))?;
            if data.len() as u64 != row.size || crate::snapshot::sha256_hex(&data) != row.sha256 {
                return Err(SourceError::Expired);
            }
            if let Some(n) = remaining.get_mut(&row.name) {
                *n -= 1;
                if *n == 0 {
                    cache.remove(&row.name);
                }
            }
            tx.send(pos, data).await?;
        }
        Ok(())
    }

    fn driver_name(&self) -> &'static str {
        "tiller"
    }

    fn server(&self) -> Option<String> {
        Some(self.tiller.url())
    }
}

/// Releases read from Tiller's ConfigMaps or Secrets.
pub struct StorageSource {
    client: kube::Client,
    storage: Driver,
    tiller_namespace: String,
    scope: Option<String>,
    statuses: Vec<Code>,
    page_size: u32,
}

impl StorageSource {
    /// A source over Tiller's storage in `tiller_namespace`; `scope` limits it
    /// to releases of one namespace.
    pub fn new(
        client: kube::Client,
        storage: Driver,
        tiller_namespace: String,
        scope: Option<String>,
        statuses: Vec<Code>,
        page_size: u32,
    ) -> Self {
        StorageSource {
            client,
            storage,
            tiller_namespace,
            scope,
            statuses,
            page_size: page_size.max(1),
        }
    }

    fn lister(&self, at: Option<&str>) -> Lister {
        Lister::new(
            self.storage.tiller_what(),
            self.client.clone(),
            self.storage,
            Some(self.tiller_namespace.clone()),
            OWNER_SELECTOR,
            self.page_size,
            at,
        )
    }

    fn decode(
        s: &RawObject,
    ) -> Result<(ReleaseRecord, crate::tiller::hapi::release::Release), StoredError> {
        let payload = s.payload.as_deref().ok_or(StoredError::NoPayload)?;
        Ok(record_from_bytes(decode_payload(payload)?)?)
    }
}

impl Source for StorageSource {
    /// First pass: the index rows of everything selected.
    async fn plan(&self, filter: &SaveFilter) -> Result<Plan, SourceError> {
        let mut rows = Vec::new();
        let mut problems = Vec::new();
        let mut kinds_of = HashMap::new();
        let mut lister = self.lister(None);
        while let Some(items) = lister.next_page().await? {
            for s in items {
                match Self::decode(&s) {
                    Ok((record, release)) => note(
                        record,
                        crate::tiller::record::kinds_used(&release),
                        filter,
                        self.scope.as_deref(),
                        &mut rows,
                        &mut kinds_of,
                    )?,
                    Err(why) => {
                        problems.push(format!("{}/{}: {why}", self.tiller_namespace, s.name))
                    }
                }
            }
        }
        let rv = lister.resource_version().to_owned();
        Ok(finish(rows, &self.statuses, filter, kinds_of, rv, problems))
    }

    /// Second pass: lists again at the first pass's resourceVersion and sends
    /// the planned records in index order.
    async fn fetch(&self, plan: &Plan, tx: &RecordSender) -> Result<(), SourceError> {
        let lister = self.lister(Some(&plan.resource_version));
        send_in_index_order(lister, plan, tx, |s| Self::decode(s).ok().map(|(r, _)| r)).await
    }

    fn driver_name(&self) -> &'static str {
        self.storage.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::Selection;

    fn row(name: &str, rev: u32, status: &str) -> IndexRow {
        crate::testing::index_row("ns", name, rev, status)
    }

    #[test]
    fn selects_releases_with_a_revision_in_the_statuses() {
        let rows = vec![
            row("a", 1, "deployed"),
            row("a", 2, "failed"),
            row("b", 1, "superseded"),
            row("b", 2, "uninstalled"),
        ];
        let f = SaveFilter {
            selection: Selection::all(),
            history: None,
            statuses: vec![],
        };
        let kept: Vec<(String, u32)> = select(rows.clone(), &[Code::Deployed], &f)
            .into_iter()
            .map(|r| (r.name, r.revision))
            .collect();
        assert_eq!(kept, [("a".to_owned(), 1), ("a".to_owned(), 2)]);
        let all = select(rows, &crate::tiller::record::ALL_CODES, &f);
        assert_eq!(all.len(), 4);
    }
}
