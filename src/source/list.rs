//! Paginated listing of storage objects (Secrets or ConfigMaps), shared by the
//! Helm 3/4 and Tiller storage sources.
//!
//! Pages are sized by bytes as well as by count: a page asks for at most
//! `max` objects, and no more than [`PAGE_BYTES`] divided by the largest
//! payload seen so far. A cluster of small records lists in few requests,
//! and a cluster of near-1 MiB records still holds only a few MiB per page.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ListParams, VersionMatch};
use zeroize::Zeroizing;

use super::{Driver, SourceError};

/// Payload bytes one page should hold at most (except that a page always
/// holds at least one object).
pub const PAGE_BYTES: u64 = 8 << 20;

/// The first page's limit, before any payload size is known. Kubernetes
/// caps an object at about 1.5 MiB, so this page holds at most ~12 MiB.
const FIRST_PAGE: u32 = 8;

/// One listed object: where it is and its `release` key.
pub struct RawObject {
    /// The object's namespace.
    pub namespace: String,
    /// The object's name.
    pub name: String,
    /// The Secret's type (`None` for ConfigMaps).
    type_: Option<String>,
    /// The object's labels.
    pub labels: BTreeMap<String, String>,
    /// The `release` key's bytes, if present (Helm's encoded record: it
    /// holds the release's values and secrets, so it is zeroized on drop).
    pub payload: Option<Zeroizing<Vec<u8>>>,
}

/// Walks a list, one page per [`Lister::next_page`] call.
pub struct Lister {
    what: &'static str,
    client: kube::Client,
    driver: Driver,
    /// Only Secrets of this type (and those without a type).
    secret_type: Option<&'static str>,
    namespace: Option<String>,
    base: ListParams,
    next: Option<ListParams>,
    max: u32,
    largest: u64,
    resource_version: String,
}

impl Lister {
    /// A list of the `driver`'s objects matching `selector` in `namespace` (all
    /// namespaces when `None`), at most `max` per page. `at` pins the list to
    /// exactly that resourceVersion. `what` names the objects in errors
    /// ("release Secrets").
    pub fn new(
        what: &'static str,
        client: kube::Client,
        driver: Driver,
        namespace: Option<String>,
        selector: &str,
        max: u32,
        at: Option<&str>,
    ) -> Lister {
        let base = ListParams::default().labels(selector);
        let first = match at {
            Some(rv) => base.clone().at(rv).matching(VersionMatch::Exact),
            None => base.clone(),
        };
        Lister {
            what,
            client,
            driver,
            secret_type: None,
            namespace,
            base,
            next: Some(first),
            max: max.max(1),
            largest: 0,
            resource_version: String::new(),
        }
    }

    /// Lists only the Secrets of type `type_` (and those without a type).
    pub fn secret_type(mut self, type_: &'static str) -> Lister {
        self.secret_type = Some(type_);
        self
    }

    /// The resourceVersion the list is read at (known after the first page).
    pub fn resource_version(&self) -> &str {
        &self.resource_version
    }

    /// How many objects the next request asks for.
    pub fn limit(&self) -> u32 {
        page_limit(self.max, self.largest)
    }

    /// The next page, or `None` after the last one. A list pinned to a
    /// resourceVersion that etcd has compacted away fails with
    /// [`SourceError::Expired`].
    pub async fn next_page(&mut self) -> Result<Option<Vec<RawObject>>, SourceError> {
        let Some(mut lp) = self.next.take() else {
            return Ok(None);
        };
        lp.limit = Some(self.limit());
        self.request(&lp).await.map_err(|e| {
            if matches!(&e, kube::Error::Api(s) if s.code == 410) {
                SourceError::Expired
            } else {
                SourceError::Api {
                    what: self.what,
                    cause: crate::cluster::KubeFailure(e).into(),
                }
            }
        })
    }

    async fn request(&mut self, lp: &ListParams) -> Result<Option<Vec<RawObject>>, kube::Error> {
        let (mut items, rv, token) = match self.driver {
            Driver::Secret => {
                let api: Api<Secret> = self.api();
                let list = api.list(lp).await?;
                let items: Vec<RawObject> = list
                    .items
                    .into_iter()
                    .map(|mut s| RawObject {
                        namespace: s.metadata.namespace.take().unwrap_or_default(),
                        name: s.metadata.name.take().unwrap_or_default(),
                        type_: s.type_.take(),
                        labels: s.metadata.labels.take().unwrap_or_default(),
                        payload: s
                            .data
                            .take()
                            .and_then(|mut d| d.remove("release"))
                            .map(|b| Zeroizing::new(b.0)),
                    })
                    .collect();
                (
                    items,
                    list.metadata.resource_version,
                    list.metadata.continue_,
                )
            }
            Driver::ConfigMap => {
                let api: Api<ConfigMap> = self.api();
                let list = api.list(lp).await?;
                let items: Vec<RawObject> = list
                    .items
                    .into_iter()
                    .map(|mut c| RawObject {
                        namespace: c.metadata.namespace.take().unwrap_or_default(),
                        name: c.metadata.name.take().unwrap_or_default(),
                        type_: None,
                        labels: c.metadata.labels.take().unwrap_or_default(),
                        payload: c
                            .data
                            .take()
                            .and_then(|mut d| d.remove("release"))
                            .map(|s| Zeroizing::new(s.into_bytes())),
                    })
                    .collect();
                (
                    items,
                    list.metadata.resource_version,
                    list.metadata.continue_,
                )
            }
        };
        if self.resource_version.is_empty() {
            self.resource_version = rv.unwrap_or_default();
        }
        let mut bytes = 0u64;
        for o in &items {
            let n = o.payload.as_ref().map_or(0, |p| p.len()) as u64;
            bytes += n;
            self.largest = self.largest.max(n);
        }
        crate::debug::note(|| {
            format!(
                "listed {} {} (limit {}, {} KiB of records, largest so far {} KiB)",
                items.len(),
                self.driver.objects(),
                lp.limit.unwrap_or(0),
                bytes.div_ceil(1024),
                self.largest.div_ceil(1024)
            )
        });
        if let (Driver::Secret, Some(wanted)) = (self.driver, self.secret_type) {
            items.retain(|o| o.type_.as_deref().is_none_or(|t| t == wanted));
        }
        // The continue token carries the list's resourceVersion.
        self.next = token
            .filter(|t| !t.is_empty())
            .map(|t| self.base.clone().continue_token(&t));
        Ok(Some(items))
    }

    fn api<K: Namespaced>(&self) -> Api<K>
    where
        K::DynamicType: Default,
    {
        api_in(&self.client, self.namespace.as_deref())
    }
}

/// A namespaced kind whose objects can be listed (Secrets, ConfigMaps).
pub(crate) trait Namespaced:
    kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
{
}

impl<K> Namespaced for K where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
{
}

/// The API of `K` objects in `namespace`, or in every namespace.
pub(crate) fn api_in<K: Namespaced>(client: &kube::Client, namespace: Option<&str>) -> Api<K>
where
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The limit of a page given the largest payload seen so far (0: none yet).
fn page_limit(max: u32, largest: u64) -> u32 {
    let by_bytes = match largest {
        0 => FIRST_PAGE,
        n => u32::try_from(PAGE_BYTES / n).unwrap_or(u32::MAX),
    };
    by_bytes.clamp(1, max.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_sized_by_count_and_bytes() {
        // Nothing seen yet: a modest first page, never above the maximum.
        assert_eq!(page_limit(100, 0), 8);
        assert_eq!(page_limit(4, 0), 4);
        // Small records: the count limit applies...
        assert_eq!(page_limit(100, 30 << 10), 100);
        // ...until the byte budget is smaller (8 MiB / 30 KiB).
        assert_eq!(page_limit(500, 30 << 10), 273);
        // Large records: the byte budget applies.
        assert_eq!(page_limit(100, 1 << 20), 8);
        assert_eq!(page_limit(500, 700 << 10), 11);
        // A record over the budget still lists, one per page.
        assert_eq!(page_limit(100, PAGE_BYTES * 2), 1);
        assert_eq!(page_limit(0, 0), 1);
    }
}
