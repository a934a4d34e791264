//! The small keys that name things across the crate: a release
//! ([`ReleaseKey`]), one revision of it ([`RevisionKey`]), and the kind of
//! a Kubernetes object ([`GroupKind`]).
//!
//! Maps keyed by [`ReleaseKey`] or [`RevisionKey`] can be looked up by
//! anything that names a release or a revision ([`ReleaseId`],
//! [`RevisionId`]: an index row, a plan step, a pair of `&str`) without
//! building an owned key: `map.get(row.release_id())`.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use crate::snapshot::IndexRow;

/// One release: its namespace and name.
#[derive(Debug, Clone, Default)]
pub struct ReleaseKey {
    /// Namespace.
    pub namespace: String,
    /// Release name.
    pub name: String,
}

/// One revision of one release.
#[derive(Debug, Clone, Default)]
pub struct RevisionKey {
    /// Namespace.
    pub namespace: String,
    /// Release name.
    pub name: String,
    /// Revision number.
    pub revision: u32,
}

/// The API group and kind of a Kubernetes object (the core group is `""`).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKind {
    /// API group (`""` for the core group).
    pub group: String,
    /// Kind.
    pub kind: String,
}

impl ReleaseKey {
    /// The key of `namespace/name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> ReleaseKey {
        ReleaseKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The key of revision `revision` of this release.
    pub fn revision(&self, revision: u32) -> RevisionKey {
        RevisionKey::new(self.namespace.clone(), self.name.clone(), revision)
    }
}

impl RevisionKey {
    /// The key of revision `revision` of `namespace/name`.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        revision: u32,
    ) -> RevisionKey {
        RevisionKey {
            namespace: namespace.into(),
            name: name.into(),
            revision,
        }
    }

    /// The release it is a revision of.
    pub fn release(&self) -> ReleaseKey {
        ReleaseKey::new(self.namespace.clone(), self.name.clone())
    }
}

impl GroupKind {
    /// The kind `kind` of API group `group`.
    pub fn new(group: impl Into<String>, kind: impl Into<String>) -> GroupKind {
        GroupKind {
            group: group.into(),
            kind: kind.into(),
        }
    }
}

/// `namespace/name`.
impl fmt::Display for ReleaseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// `namespace/name revision N`.
impl fmt::Display for RevisionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} revision {}",
            self.namespace, self.name, self.revision
        )
    }
}

/// `kind.group`, or `kind` for the core group (as kubectl names resources).
impl fmt::Display for GroupKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(&self.kind)
        } else {
            write!(f, "{}.{}", self.kind, self.group)
        }
    }
}

/// Anything that names a release; maps keyed by [`ReleaseKey`] are looked
/// up by `&dyn ReleaseId` without allocating.
pub trait ReleaseId {
    /// `(namespace, name)`.
    fn release_parts(&self) -> (&str, &str);

    /// This, as a map key to look a [`ReleaseKey`] up by.
    fn release_id(&self) -> &dyn ReleaseId
    where
        Self: Sized,
    {
        self
    }

    /// The owned key.
    fn release_key(&self) -> ReleaseKey {
        let (namespace, name) = self.release_parts();
        ReleaseKey::new(namespace, name)
    }
}

/// Anything that names one revision of a release; maps keyed by
/// [`RevisionKey`] are looked up by `&dyn RevisionId` without allocating.
pub trait RevisionId {
    /// `(namespace, name, revision)`.
    fn revision_parts(&self) -> (&str, &str, u32);

    /// This, as a map key to look a [`RevisionKey`] up by.
    fn revision_id(&self) -> &dyn RevisionId
    where
        Self: Sized,
    {
        self
    }

    /// The owned key.
    fn revision_key(&self) -> RevisionKey {
        let (namespace, name, revision) = self.revision_parts();
        RevisionKey::new(namespace, name, revision)
    }
}

impl ReleaseId for ReleaseKey {
    fn release_parts(&self) -> (&str, &str) {
        (&self.namespace, &self.name)
    }
}

impl ReleaseId for (&str, &str) {
    fn release_parts(&self) -> (&str, &str) {
        (self.0, self.1)
    }
}

impl ReleaseId for RevisionKey {
    fn release_parts(&self) -> (&str, &str) {
        (&self.namespace, &self.name)
    }
}

impl ReleaseId for IndexRow {
    fn release_parts(&self) -> (&str, &str) {
        (&self.namespace, &self.name)
    }
}

impl RevisionId for RevisionKey {
    fn revision_parts(&self) -> (&str, &str, u32) {
        (&self.namespace, &self.name, self.revision)
    }
}

impl RevisionId for (&str, &str, u32) {
    fn revision_parts(&self) -> (&str, &str, u32) {
        (self.0, self.1, self.2)
    }
}

impl RevisionId for super::Summary {
    fn revision_parts(&self) -> (&str, &str, u32) {
        (&self.namespace, &self.name, self.revision)
    }
}

impl RevisionId for IndexRow {
    fn revision_parts(&self) -> (&str, &str, u32) {
        (&self.namespace, &self.name, self.revision)
    }
}

/// Equality, order and hash of the owned keys and of the borrowed views are
/// those of their parts, so that `Borrow` finds the same entries.
macro_rules! keyed_by_parts {
    ($key:ty, $id:ident, $parts:ident) => {
        impl PartialEq for $key {
            fn eq(&self, other: &Self) -> bool {
                self.$parts() == other.$parts()
            }
        }
        impl Eq for $key {}
        impl PartialOrd for $key {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }
        impl Ord for $key {
            fn cmp(&self, other: &Self) -> Ordering {
                self.$parts().cmp(&other.$parts())
            }
        }
        impl Hash for $key {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.$parts().hash(state)
            }
        }
        impl PartialEq for dyn $id + '_ {
            fn eq(&self, other: &Self) -> bool {
                self.$parts() == other.$parts()
            }
        }
        impl Eq for dyn $id + '_ {}
        impl PartialOrd for dyn $id + '_ {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }
        impl Ord for dyn $id + '_ {
            fn cmp(&self, other: &Self) -> Ordering {
                self.$parts().cmp(&other.$parts())
            }
        }
        impl Hash for dyn $id + '_ {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.$parts().hash(state)
            }
        }
        impl<'a> Borrow<dyn $id + 'a> for $key {
            fn borrow(&self) -> &(dyn $id + 'a) {
                self
            }
        }
    };
}

keyed_by_parts!(ReleaseKey, ReleaseId, release_parts);
keyed_by_parts!(RevisionKey, RevisionId, revision_parts);

impl From<&IndexRow> for ReleaseKey {
    fn from(row: &IndexRow) -> ReleaseKey {
        row.release_key()
    }
}

impl From<&IndexRow> for RevisionKey {
    fn from(row: &IndexRow) -> RevisionKey {
        row.revision_key()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    #[test]
    fn maps_are_looked_up_by_borrowed_parts() {
        let mut hashed: HashMap<ReleaseKey, u32> = HashMap::new();
        hashed.insert(ReleaseKey::new("prod", "web"), 1);
        assert_eq!(hashed.get(("prod", "web").release_id()), Some(&1));
        assert_eq!(hashed.get(("prod", "db").release_id()), None);
        let row = crate::testing::index_row("prod", "web", 3, "deployed");
        assert_eq!(hashed.get(row.release_id()), Some(&1));

        let mut sorted: BTreeMap<RevisionKey, u32> = BTreeMap::new();
        sorted.insert(RevisionKey::new("prod", "web", 3), 7);
        sorted.insert(RevisionKey::new("a", "z", 9), 8);
        assert_eq!(sorted.get(row.revision_id()), Some(&7));
        assert_eq!(sorted.get(("prod", "web", 2).revision_id()), None);
        let order: Vec<String> = sorted.keys().map(ToString::to_string).collect();
        assert_eq!(order, ["a/z revision 9", "prod/web revision 3"]);
    }

    #[test]
    fn displays() {
        assert_eq!(ReleaseKey::new("prod", "web").to_string(), "prod/web");
        assert_eq!(GroupKind::new("", "ConfigMap").to_string(), "ConfigMap");
        assert_eq!(
            GroupKind::new("example.com", "Widget").to_string(),
            "Widget.example.com"
        );
    }
}
