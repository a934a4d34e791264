//! A real S3-compatible server for the bucket tests: moto's server mode (from
//! PyPI, installed by scripts/test into the test-environment cache), with
//! credential checking on. Stopped when dropped.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto S3 server.
pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// A valid access key.
    pub access_key: String,
    /// Its secret.
    pub secret_key: String,
}

fn python_env() -> PathBuf {
    if let Some(p) = std::env::var_os("HELM_BULK_PYENV") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("HELM_BULK_TESTENV_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/helm-bulk/testenv")
        });
    cache.join("py")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl S3Server {
    /// Starts moto and creates `buckets`; panics (never skips) with what to
    /// install when moto is missing.
    pub fn start(buckets: &[&str]) -> S3Server {
        let env = python_env();
        let server = env.join("bin/moto_server");
        assert!(
            server.is_file(),
            "moto is required for the bucket tests: run scripts/test (it installs moto[server] into {}), or set HELM_BULK_PYENV",
            env.display()
        );
        // Another process (test binaries run side by side) may take the port
        // between picking and binding it: then moto exits, and a new port is
        // tried.
        let mut attempts = 0;
        let (child, port) = loop {
            attempts += 1;
            let port = free_port();
            let mut child = Command::new(&server)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("INITIAL_NO_AUTH_ACTION_COUNT", "4")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start moto_server");
            let deadline = Instant::now() + Duration::from_secs(60);
            let exited = loop {
                if let Some(status) = child.try_wait().expect("poll moto_server") {
                    break Some(status);
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    break None;
                }
                assert!(
                    Instant::now() < deadline,
                    "moto_server did not start on 127.0.0.1:{port}"
                );
                std::thread::sleep(Duration::from_millis(100));
            };
            match exited {
                None => break (child, port),
                Some(status) => assert!(
                    attempts < 3,
                    "moto_server exited ({status}) three times, last on port {port}"
                ),
            }
        };
        let endpoint = format!("http://127.0.0.1:{port}");
        let mut server = S3Server {
            child,
            endpoint,
            access_key: String::new(),
            secret_key: String::new(),
        };
        let out = Command::new(env.join("bin/python"))
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/no_cluster/s3_setup.py"
            ))
            .arg(&server.endpoint)
            .args(buckets)
            .output()
            .expect("run s3_setup.py");
        assert!(
            out.status.success(),
            "s3_setup.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let mut parts = text.split_whitespace();
        server.access_key = parts.next().unwrap().to_owned();
        server.secret_key = parts.next().unwrap().to_owned();
        server
    }

    /// Points a command at this server with valid credentials.
    pub fn configure<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.env("AWS_ACCESS_KEY_ID", &self.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret_key)
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
    }

    /// Multipart uploads in progress in `bucket` (ListMultipartUploads).
    pub fn uploads_in_progress(&self, bucket: &str) -> usize {
        let env = python_env();
        let script = format!(
            "import boto3;s3=boto3.client('s3',endpoint_url='{}',region_name='us-east-1',aws_access_key_id='{}',aws_secret_access_key='{}');print(len(s3.list_multipart_uploads(Bucket='{}').get('Uploads',[])))",
            self.endpoint, self.access_key, self.secret_key, bucket
        );
        let out = Command::new(env.join("bin/python"))
            .args(["-c", &script])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| {
                panic!(
                    "ListMultipartUploads failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })
    }

    /// Starts a process that polls the bucket's multipart uploads without
    /// pause and exits 0 as soon as one is in progress (a fresh Python per
    /// check would take most of a second).
    pub fn watch_uploads(&self, bucket: &str) -> std::process::Child {
        let env = python_env();
        let script = format!(
            "import boto3,sys\ns3=boto3.client('s3',endpoint_url='{}',region_name='us-east-1',aws_access_key_id='{}',aws_secret_access_key='{}')\nwhile not s3.list_multipart_uploads(Bucket='{}').get('Uploads'):\n    pass\n",
            self.endpoint, self.access_key, self.secret_key, bucket
        );
        Command::new(env.join("bin/python"))
            .args(["-c", &script])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    }

    fn boto(&self, body: &str) -> Vec<u8> {
        let env = python_env();
        let script = format!(
            "import boto3,sys\ns3=boto3.client('s3',endpoint_url='{}',region_name='us-east-1',aws_access_key_id='{}',aws_secret_access_key='{}')\n{body}",
            self.endpoint, self.access_key, self.secret_key
        );
        let out = Command::new(env.join("bin/python"))
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "boto3 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Every object key in `bucket`, sorted.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let out = self.boto(&format!(
            "for p in s3.get_paginator('list_objects_v2').paginate(Bucket='{bucket}'):\n    [print(o['Key']) for o in p.get('Contents',[])]"
        ));
        let mut keys: Vec<String> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        keys.sort();
        keys
    }

    /// The bytes of one object.
    pub fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        self.boto(&format!(
            "sys.stdout.buffer.write(s3.get_object(Bucket='{bucket}',Key='{key}')['Body'].read())"
        ))
    }

    /// `helm-bulk SUBCOMMAND --endpoint …` pointed at this server.
    pub fn bulk(&self, subcommand: &str) -> Command {
        let mut c = super::bin();
        self.configure(&mut c);
        c.args([subcommand, "--endpoint", &self.endpoint]);
        c
    }

    /// Writes an object directly (for retention tests).
    pub fn put(&self, bucket: &str, key: &str, data: &[u8]) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data");
        std::fs::write(&file, data).unwrap();
        self.boto(&format!(
            "s3.upload_file('{}','{bucket}','{key}')",
            file.display()
        ));
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
