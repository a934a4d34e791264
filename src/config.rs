//! The configuration file: discovery, schema and validation.
//!
//! Found by `--config`, then `$HELM_BULK_CONFIG`, then `./.helm-bulk.yaml`,
//! then `$HELM_CONFIG_HOME/bulk/config.yaml`. Unknown keys and type errors are
//! reported with file, line and column. Relative paths inside the file are
//! relative to the file's directory.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::select::{Selection, SelectionError};

/// The file's schema.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// Recipients to encrypt to (age1…, ssh-ed25519 …, ssh-rsa …, plugin recipients).
    #[serde(default)]
    pub recipients: Vec<String>,
    /// Files of recipients, one per line.
    #[serde(default)]
    pub recipients_files: Vec<PathBuf>,
    /// Identity files for `show` and `load`.
    #[serde(default)]
    pub identities: Vec<PathBuf>,
    /// Glob patterns of `namespace/name` to include (all when empty).
    #[serde(default)]
    pub include: Vec<String>,
    /// Glob patterns of `namespace/name` to exclude.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Releases to restore first, in this order (`name` or `namespace/name`).
    #[serde(default)]
    pub order: Vec<String>,
    /// SSH private key that signs snapshots at save time.
    #[serde(default)]
    pub sign_key: Option<PathBuf>,
    /// OpenSSH allowed_signers file of keys trusted to sign snapshots.
    #[serde(default)]
    pub trusted_signers: Option<PathBuf>,
    /// Endpoint of an S3-compatible object store (for s3:// URLs).
    #[serde(default)]
    pub endpoint: Option<String>,
}

/// A loaded configuration and where it came from.
#[derive(Debug, Default, Clone)]
pub struct Loaded {
    /// The file read, if any.
    pub path: Option<PathBuf>,
    /// Its content, with relative paths resolved.
    pub config: Config,
}

/// Errors reading the config file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An explicitly named file does not exist or cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The YAML is malformed, has an unknown key or a wrong type.
    #[error("config file {path}:{line}:{column}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A pattern in include/exclude is invalid.
    #[error("config file {path}: {source}")]
    Selection {
        /// The file.
        path: PathBuf,
        /// The pattern error.
        source: SelectionError,
    },
}

/// Helm's configuration directory: `$HELM_CONFIG_HOME`, else the platform's
/// config directory followed by `helm`, as Helm computes it.
pub fn helm_config_home() -> Option<PathBuf> {
    if let Some(h) = std::env::var_os("HELM_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(h));
    }
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(x).join("helm"));
    }
    let home = PathBuf::from(std::env::var_os("HOME")?);
    if cfg!(target_os = "macos") {
        Some(home.join("Library/Preferences/helm"))
    } else {
        Some(home.join(".config/helm"))
    }
}

/// Finds and loads the config file. `explicit` is `--config`, else
/// `$HELM_BULK_CONFIG`; an explicit file must exist.
pub fn load(explicit: Option<&Path>) -> Result<Loaded, ConfigError> {
    if let Some(p) = explicit {
        return load_file(p);
    }
    let local = PathBuf::from(".helm-bulk.yaml");
    if local.is_file() {
        return load_file(&local);
    }
    if let Some(home) = helm_config_home() {
        let p = home.join("bulk").join("config.yaml");
        if p.is_file() {
            return load_file(&p);
        }
    }
    Ok(Loaded::default())
}

/// Loads one config file.
pub fn load_file(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut config = parse(&text).map_err(|(line, column, message)| ConfigError::Parse {
        path: path.to_path_buf(),
        line,
        column,
        message,
    })?;
    Selection::new(&config.include, &config.exclude).map_err(|source| ConfigError::Selection {
        path: path.to_path_buf(),
        source,
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    for p in config
        .recipients_files
        .iter_mut()
        .chain(config.identities.iter_mut())
        .chain(config.sign_key.iter_mut())
        .chain(config.trusted_signers.iter_mut())
    {
        *p = resolve(base, p);
    }
    Ok(Loaded {
        path: Some(path.to_path_buf()),
        config,
    })
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if let Ok(rest) = p.strip_prefix("~")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Parses the YAML text of a config file (no paths resolved, no files
/// read); errors carry 1-based line and column and a message.
pub fn parse(text: &str) -> Result<Config, (usize, usize, String)> {
    if text.trim().is_empty() {
        return Ok(Config::default());
    }
    serde_norway::from_str::<Option<Config>>(text)
        .map(Option::unwrap_or_default)
        .map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((1, 1));
            let mut message = e.to_string();
            // The location is reported separately; drop serde_norway's suffix.
            if let Some(i) = message.find(" at line ") {
                message.truncate(i);
            }
            (line, column, message)
        })
}

/// The `order:` list, overridden by `$HELM_BULK_ORDER` (names separated by
/// commas or whitespace) when that is set.
pub fn effective_order(config: &Config) -> Vec<String> {
    match std::env::var("HELM_BULK_ORDER") {
        Ok(v) if !v.trim().is_empty() => v
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => config.order.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_keys() {
        let c = parse(
            "recipients: [age1abc]\nrecipientsFiles: [r.txt]\nidentities: [k.txt]\n\
             include: ['prod/*']\nexclude: ['*/ingress-nginx']\norder: [db, web]\n",
        )
        .unwrap();
        assert_eq!(c.recipients, ["age1abc"]);
        assert_eq!(c.order, ["db", "web"]);
        assert_eq!(c.exclude, ["*/ingress-nginx"]);
    }

    #[test]
    fn unknown_key_has_line_and_column() {
        let (line, column, msg) = parse("recipients: []\nrecipient: x\n").unwrap_err();
        assert_eq!((line, column), (2, 1));
        assert!(msg.contains("unknown field `recipient`"), "{msg}");
    }

    #[test]
    fn type_error_has_line() {
        let (line, _, msg) = parse("order:\n  - a\nexclude: 3\n").unwrap_err();
        assert_eq!(line, 3);
        assert!(msg.contains("invalid type"), "{msg}");
    }

    #[test]
    fn empty_file_is_default() {
        assert!(parse("\n# nothing\n").unwrap().recipients.is_empty());
    }
}
