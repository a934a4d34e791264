//! Signing with a key held by ssh-agent (the agent protocol of
//! draft-ietf-sshm-ssh-agent, as OpenSSH's `ssh-agent` speaks it): list the
//! agent's keys, and ask it to sign. The private key never leaves the agent.

use std::io::{Read, Write};
use std::path::Path;

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

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

/// Reads the wire format's `uint32` and `string`.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u32(&mut self) -> Result<u32, String> {
        let (head, rest) = self.0.split_first_chunk::<4>().ok_or("a truncated reply")?;
        self.0 = rest;
        Ok(u32::from_be_bytes(*head))
    }

    fn string(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        if n > self.0.len() {
            return Err("a truncated reply".to_owned());
        }
        let (s, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(s)
    }
}

/// Sends one request to the agent at `socket` and returns its reply.
#[cfg(unix)]
fn request(socket: &Path, body: &[u8]) -> Result<Vec<u8>, String> {
    let mut s = std::os::unix::net::UnixStream::connect(socket)
        .map_err(|e| format!("cannot reach ssh-agent at {}: {e}", socket.display()))?;
    let mut msg = Vec::with_capacity(body.len() + 4);
    put_string(&mut msg, body);
    s.write_all(&msg)
        .map_err(|e| format!("ssh-agent at {}: {e}", socket.display()))?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len)
        .map_err(|e| format!("ssh-agent at {} did not answer: {e}", socket.display()))?;
    let n = u32::from_be_bytes(len) as usize;
    if n == 0 || n > MAX_REPLY {
        return Err(format!(
            "ssh-agent at {} sent a malformed reply",
            socket.display()
        ));
    }
    let mut reply = vec![0u8; n];
    s.read_exact(&mut reply)
        .map_err(|e| format!("ssh-agent at {} did not answer: {e}", socket.display()))?;
    Ok(reply)
}

#[cfg(not(unix))]
fn request(_socket: &Path, _body: &[u8]) -> Result<Vec<u8>, String> {
    Err("signing through ssh-agent is supported on Unix only".to_owned())
}

/// Whether the agent holds the private key of `key`.
pub fn holds(socket: &Path, key: &PublicKey) -> Result<bool, String> {
    let blob = key.to_bytes().map_err(|e| e.to_string())?;
    let reply = request(socket, &[REQUEST_IDENTITIES])?;
    let bad = || "ssh-agent sent a malformed list of keys".to_owned();
    let (&kind, rest) = reply.split_first().ok_or_else(bad)?;
    if kind != IDENTITIES_ANSWER {
        return Err(format!("ssh-agent refused to list its keys (reply {kind})"));
    }
    let mut r = Reader(rest);
    let n = r.u32().map_err(|_| bad())?;
    for _ in 0..n {
        let held = r.string().map_err(|_| bad())?;
        let _comment = r.string().map_err(|_| bad())?;
        if held == blob.as_slice() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Asks the agent to sign `data` with the private key of `key`.
pub fn sign(socket: &Path, key: &PublicKey, data: &[u8]) -> Result<Signature, String> {
    let blob = key.to_bytes().map_err(|e| e.to_string())?;
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
            Signature::try_from(sig).map_err(|e| format!("ssh-agent sent a bad signature: {e}"))
        }
        Some((&FAILURE, _)) => Err(
            "ssh-agent refused to sign (is the key still loaded, or does it need confirming?)"
                .to_owned(),
        ),
        _ => Err("ssh-agent sent a malformed reply".to_owned()),
    }
}
