//! helm-bulk's bucket upload on its own, for scripts/bench/bucket-upload.
//!
//!     cargo build --release --example upload
//!     target/release/examples/upload FILE s3://BUCKET KEY [ENDPOINT]
//!
//! Streams FILE (an existing snapshot) through exactly the writer `save --to`
//! uses: `Bucket::upload`, 64 KiB writes from a blocking thread like the
//! snapshot writer's, 8 MiB multipart parts with 2 in flight, then commit and
//! wait. Credentials come from the usual AWS_* environment. Prints
//! `upload_seconds S` (the upload alone, from starting the multipart upload to
//! its completion) to standard error, in the format of scripts/bench/s3_tool.py.

use std::io::{Read, Write};
use std::time::Instant;

use helm_bulk::store::bucket::Bucket;

fn main() {
    if let Err(e) = run() {
        eprintln!("upload: error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (file, url, key, endpoint) = match args.as_slice() {
        [f, u, k] => (f, u, k.clone(), None),
        [f, u, k, e] => (f, u, k.clone(), Some(e.as_str())),
        _ => return Err("usage: upload FILE s3://BUCKET KEY [ENDPOINT]".to_owned()),
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bucket = Bucket::open(url, endpoint).map_err(|e| e.to_string())?;
    let mut input = std::fs::File::open(file).map_err(|e| format!("{file}: {e}"))?;
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let t0 = Instant::now();
        let (mut w, handle) = bucket
            .upload(&key)
            .await
            .map_err(|e| e.to_string())?
            .split();
        let copied = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
            let mut buf = vec![0u8; 64 << 10];
            let mut n = 0u64;
            loop {
                let k = input.read(&mut buf)?;
                if k == 0 {
                    break;
                }
                w.write_all(&buf[..k])?;
                n += k as u64;
            }
            w.commit()?;
            Ok(n)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        let stored = handle.wait().await.map_err(|e| e.to_string())?;
        if stored != copied {
            return Err(format!("uploaded {stored} bytes of {copied}"));
        }
        eprintln!("upload_seconds {:.3}", t0.elapsed().as_secs_f64());
        Ok(())
    })
}
