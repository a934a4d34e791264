//! Which releases a command acts on: include/exclude glob patterns over
//! `namespace/name`. A pattern without `/` matches the name in any namespace.

use globset::{GlobSet, GlobSetBuilder};

/// An invalid pattern.
#[derive(Debug, thiserror::Error)]
#[error("invalid release pattern `{pattern}`: {reason}")]
pub struct SelectionError {
    /// The pattern as given.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Compiled include and exclude patterns.
#[derive(Debug, Clone)]
pub struct Selection {
    include: Option<GlobSet>,
    exclude: GlobSet,
}

fn build(patterns: &[String]) -> Result<GlobSet, SelectionError> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let full = if p.contains('/') {
            p.clone()
        } else {
            format!("*/{p}")
        };
        if full.matches('/').count() != 1 {
            return Err(SelectionError {
                pattern: p.clone(),
                reason: "expected `namespace/name` or `name`".to_owned(),
            });
        }
        let glob = globset::GlobBuilder::new(&full)
            .literal_separator(true)
            .build()
            .map_err(|e| SelectionError {
                pattern: p.clone(),
                reason: e.kind().to_string(),
            })?;
        b.add(glob);
    }
    b.build().map_err(|e| SelectionError {
        pattern: patterns.join(","),
        reason: e.to_string(),
    })
}

impl Selection {
    /// Compiles the patterns. An empty include list includes everything.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Selection, SelectionError> {
        Ok(Selection {
            include: if include.is_empty() {
                None
            } else {
                Some(build(include)?)
            },
            exclude: build(exclude)?,
        })
    }

    /// Everything.
    pub fn all() -> Selection {
        Selection {
            include: None,
            exclude: GlobSet::empty(),
        }
    }

    /// Whether the release `namespace/name` is selected.
    pub fn matches(&self, namespace: &str, name: &str) -> bool {
        let key = format!("{namespace}/{name}");
        self.include.as_ref().is_none_or(|i| i.is_match(&key)) && !self.exclude.is_match(&key)
    }

    /// Whether the release is excluded explicitly (not merely not included).
    pub fn excluded(&self, namespace: &str, name: &str) -> bool {
        self.exclude.is_match(format!("{namespace}/{name}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn name_only_pattern_matches_any_namespace() {
        let sel = Selection::new(&[], &s(&["ingress-nginx"])).unwrap();
        assert!(!sel.matches("kube-system", "ingress-nginx"));
        assert!(!sel.matches("edge", "ingress-nginx"));
        assert!(sel.matches("edge", "ingress-nginx-2"));
    }

    #[test]
    fn include_then_exclude() {
        let sel = Selection::new(&s(&["prod/*"]), &s(&["prod/db-*"])).unwrap();
        assert!(sel.matches("prod", "web"));
        assert!(!sel.matches("prod", "db-main"));
        assert!(!sel.matches("dev", "web"));
    }

    #[test]
    fn star_does_not_cross_slash() {
        let sel = Selection::new(&s(&["prod*"]), &[]).unwrap();
        assert!(!sel.matches("prod", "x"));
        assert!(sel.matches("a", "prod1"));
    }

    #[test]
    fn bad_pattern() {
        let e = Selection::new(&s(&["a/b/c"]), &[]).unwrap_err();
        assert!(e.to_string().contains("a/b/c"));
        assert!(Selection::new(&s(&["[x"]), &[]).is_err());
    }
}
