//! Recipients, identities and passphrases.

use std::io::Write;
use std::path::{Path, PathBuf};

use age::cli_common::{ReadError, StdinGuard};
use age::secrecy::ExposeSecret;
use secrecy::SecretString;

use super::VaultError;

fn read_error(e: ReadError) -> VaultError {
    // age's messages already name the file (and, for recipients files, the
    // line number instead of the line's content).
    VaultError::KeyFile(AgeReadError(e))
}

/// age's error reading recipients or identities, shown as one plain line
/// ([`plain_message`]). Its source is the age error's own (an I/O error):
/// the age error itself is not, as its text is this one with marks.
#[derive(Debug)]
pub struct AgeReadError(pub ReadError);

impl std::fmt::Display for AgeReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&plain_message(&self.0.to_string()))
    }
}

impl std::error::Error for AgeReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.0)
    }
}

/// age's localized messages wrap names in Unicode bidi isolation marks and may
/// span lines; make them one plain line.
pub(crate) fn plain_message(s: &str) -> String {
    s.trim_end()
        .replace(['\u{2068}', '\u{2069}'], "")
        .replace('\n', " ")
}

/// Parses recipients given literally and in recipients files.
///
/// Kinds: X25519 (`age1…`), SSH ed25519 and RSA public keys, age plugin
/// recipients (`age1<plugin>1…`). A bad line in a file is reported by number,
/// never by content.
pub fn read_recipients(
    recipients: &[String],
    files: &[PathBuf],
) -> Result<Vec<Box<dyn age::Recipient + Send>>, VaultError> {
    let files = files
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    age::cli_common::read_recipients(
        recipients.to_vec(),
        files,
        vec![],
        None,
        &mut StdinGuard::new(false),
    )
    .map_err(read_error)
}

/// The recipient strings as given (for `helm bulk recipients`), validated by
/// parsing each one, plus every non-comment line of each recipients file.
pub fn recipient_strings(
    recipients: &[String],
    files: &[PathBuf],
) -> Result<Vec<String>, VaultError> {
    // Validate everything first, with line numbers for files.
    read_recipients(recipients, files)?;
    let mut out: Vec<String> = recipients.to_vec();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|source| VaultError::File {
            action: "read recipients file",
            path: f.clone(),
            source,
        })?;
        out.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned),
        );
    }
    Ok(out)
}

/// Reads identity files: age identity files (plain or passphrase-encrypted),
/// SSH private keys (passphrase-protected ones prompt on the terminal) and
/// plugin identities.
pub fn read_identities(files: &[PathBuf]) -> Result<Vec<Box<dyn age::Identity>>, VaultError> {
    let files = files
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    age::cli_common::read_identities(files, None, &mut StdinGuard::new(false)).map_err(read_error)
}

/// Asks for a passphrase once on the terminal.
pub fn prompt_passphrase(prompt: &str) -> Result<SecretString, VaultError> {
    let p = rpassword::prompt_password(prompt).map_err(VaultError::PassphraseInput)?;
    Ok(SecretString::from(p))
}

/// Asks for a new passphrase twice and checks both entries match.
pub fn prompt_new_passphrase() -> Result<SecretString, VaultError> {
    let first = prompt_passphrase("Enter a passphrase for the snapshot: ")?;
    if first.expose_secret().is_empty() {
        return Err(VaultError::EmptyPassphrase);
    }
    let second = prompt_passphrase("Confirm the passphrase: ")?;
    if first.expose_secret() != second.expose_secret() {
        return Err(VaultError::PassphrasesDiffer);
    }
    Ok(first)
}

/// Where `keygen` writes by default and `show`/`load` look when no identity is
/// given: `$HELM_CONFIG_HOME/bulk/identity.txt`.
pub fn default_identity_path() -> Option<PathBuf> {
    crate::config::helm_config_home().map(|h| h.join("bulk").join("identity.txt"))
}

/// Generates an X25519 identity into a new file created with mode 0600.
/// Refuses to overwrite an existing file. Returns the recipient (public key).
pub fn generate_identity(path: &Path, created: &str) -> Result<String, VaultError> {
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|source| VaultError::File {
        action: "create directory",
        path: dir.clone(),
        source,
    })?;
    if path.exists() {
        return Err(VaultError::IdentityExists {
            path: path.to_owned(),
            advice: " (choose another path with -o)",
        });
    }
    let mut tmp = crate::store::private_temp_file(&dir)?;
    let secret = identity.to_string();
    let body = zeroize::Zeroizing::new(format!(
        "# created: {created}\n# public key: {recipient}\n{}\n",
        secret.expose_secret()
    ));
    tmp.write_all(body.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist_noclobber(path).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            VaultError::IdentityExists {
                path: path.to_owned(),
                advice: "",
            }
        } else {
            VaultError::File {
                action: "write",
                path: path.to_owned(),
                source: e.error,
            }
        }
    })?;
    Ok(recipient)
}
