//! Signing with a key held by ssh-agent (the agent protocol of
//! draft-ietf-sshm-ssh-agent, as OpenSSH's `ssh-agent` speaks it): list the
//! agent's keys, and ask it to sign. The private key never leaves the agent.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ssh_key::{PublicKey, Signature};

const FAILURE: u8 = 5;
const REQUEST_IDENTITIES: u8 = 11;
const IDENTITIES_ANSWER: u8 = 12;
const SIGN_REQUEST: u8 = 13;
const SIGN_RESPONSE: u8 = 14;
/// Sign RSA keys with rsa-sha2-512 (not SHA-1).
const RSA_SHA2_512: u32 = 4;
/// No agent reply of ours comes near this.
const MAX_REPLY: usize = 1 << 20;

/// What went wrong talking to ssh-agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The public key cannot be encoded.
    #[error("{0}")]
    Key(#[source] ssh_key::Error),
    /// The socket does not connect.
    #[error("cannot reach ssh-agent at {}: {source}", socket.display())]
    Connect {
        /// The agent's socket.
        socket: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The request could not be sent.
    #[error("ssh-agent at {}: {source}", socket.display())]
    Send {
        /// The agent's socket.
        socket: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The reply could not be read.
    #[error("ssh-agent at {} did not answer: {source}", socket.display())]
    NoAnswer {
        /// The agent's socket.
        socket: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The reply's length is zero or too large.
    #[error("ssh-agent at {} sent a malformed reply", .0.display())]
    BadLength(PathBuf),
    /// Not on Unix.
    #[error("signing through ssh-agent is supported on Unix only")]
    NotUnix,
    /// A field of the reply is cut short.
    #[error("a truncated reply")]
    Truncated,
    /// The list of keys does not parse.
    #[error("ssh-agent sent a malformed list of keys")]
    BadList,
    /// The agent answered the list request with another message.
    #[error("ssh-agent refused to list its keys (reply {0})")]
    ListRefused(u8),
    /// The signature does not parse.
    #[error("ssh-agent sent a bad signature: {0}")]
    BadSignature(#[source] ssh_key::Error),
    /// The agent refused to sign.
    #[error("ssh-agent refused to sign (is the key still loaded, or does it need confirming?)")]
    Refused,
    /// The sign reply is neither a signature nor a refusal.
    #[error("ssh-agent sent a malformed reply")]
    BadReply,
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

/// Reads the wire format's `uint32` and `string`.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u32(&mut self) -> Result<u32, AgentError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<4>()
            .ok_or(AgentError::Truncated)?;
        self.0 = rest;
        Ok(u32::from_be_bytes(*head))
    }

    fn string(&mut self) -> Result<&'a [u8], AgentError> {
        let n = self.u32()? as usize;
        if n > self.0.len() {
            return Err(AgentError::Truncated);
        }
        let (s, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(s)
    }
}

/// Sends one request to the agent at `socket` and returns its reply.
#[cfg(unix)]
fn request(socket: &Path, body: &[u8]) -> Result<Vec<u8>, AgentError> {
    let at = || socket.to_path_buf();
    let mut s =
        std::os::unix::net::UnixStream::connect(socket).map_err(|source| AgentError::Connect {
            socket: at(),
            source,
        })?;
    let mut msg = Vec::with_capacity(body.len() + 4);
    put_string(&mut msg, body);
    s.write_all(&msg).map_err(|source| AgentError::Send {
        socket: at(),
        source,
    })?;
    let no_answer = |source| AgentError::NoAnswer {
        socket: at(),
        source,
    };
    let mut len = [0u8; 4];
    s.read_exact(&mut len).map_err(no_answer)?;
    let n = u32::from_be_bytes(len) as usize;
    if n == 0 || n > MAX_REPLY {
        return Err(AgentError::BadLength(at()));
    }
    let mut reply = vec![0u8; n];
    s.read_exact(&mut reply).map_err(no_answer)?;
    Ok(reply)
}

#[cfg(not(unix))]
fn request(_socket: &Path, _body: &[u8]) -> Result<Vec<u8>, AgentError> {
    Err(AgentError::NotUnix)
}

/// Whether the agent holds the private key of `key`.
pub fn holds(socket: &Path, key: &PublicKey) -> Result<bool, AgentError> {
    let blob = key.to_bytes().map_err(AgentError::Key)?;
    let reply = request(socket, &[REQUEST_IDENTITIES])?;
    let bad = |_: AgentError| AgentError::BadList;
    let (&kind, rest) = reply.split_first().ok_or(AgentError::BadList)?;
    if kind != IDENTITIES_ANSWER {
        return Err(AgentError::ListRefused(kind));
    }
    let mut r = Reader(rest);
    let n = r.u32().map_err(bad)?;
    for _ in 0..n {
        let held = r.string().map_err(bad)?;
        let _comment = r.string().map_err(bad)?;
        if held == blob.as_slice() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Asks the agent to sign `data` with the private key of `key`.
pub fn sign(socket: &Path, key: &PublicKey, data: &[u8]) -> Result<Signature, AgentError> {
    let blob = key.to_bytes().map_err(AgentError::Key)?;
    let mut body = vec![SIGN_REQUEST];
    put_string(&mut body, &blob);
    put_string(&mut body, data);
    let flags = match key.algorithm() {
        ssh_key::Algorithm::Rsa { .. } => RSA_SHA2_512,
        _ => 0,
    };
    body.extend_from_slice(&flags.to_be_bytes());
    let reply = request(socket, &body)?;
    match reply.split_first() {
        Some((&SIGN_RESPONSE, rest)) => {
            let sig = Reader(rest).string()?;
            Signature::try_from(sig).map_err(AgentError::BadSignature)
        }
        Some((&FAILURE, _)) => Err(AgentError::Refused),
        _ => Err(AgentError::BadReply),
    }
}
