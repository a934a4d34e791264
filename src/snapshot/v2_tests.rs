//! Format 2: the record codec (byte-exact, deterministic) and the reader's
//! refusal of hostile blob layouts.

use std::io::Read;

use base64::Engine;
use flate2::{Compression, write::GzEncoder};

use super::tests::{meta, meta_v2};
use super::v2::{decode, encode};
use super::*;
use crate::release::ReleaseRecord;

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// A Helm-shaped record of chart `chart` (its templates and files shared by
/// every record of that chart), with its own values and manifest.
fn chart_record(ns: &str, name: &str, rev: u32, chart: &str, values: &str) -> ReleaseRecord {
    let tpl = |i: u32| {
        b64(format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{{{ .Release.Name }}}}-{chart}-{i}\ndata:\n  k: {{{{ .Values.k | quote }}}}\n"
        )
        .as_bytes())
    };
    let json = format!(
        concat!(
            r#"{{"name":"{name}","info":{{"first_deployed":"2026-01-01T00:00:00Z","last_deployed":"2026-01-0{rev}T00:00:00Z","#,
            r#""description":"Upgrade complete","status":"deployed","notes":"Thank you for installing {chart}. Your release is named {name}. Enjoy it."}},"#,
            r#""chart":{{"metadata":{{"name":"{chart}","version":"1.2.3","description":"A chart that is installed many times in many namespaces","apiVersion":"v2","appVersion":"4.5"}},"#,
            r#""lock":null,"templates":[{{"name":"templates/a.yaml","data":"{t1}"}},{{"name":"templates/b.yaml","data":"{t2}"}},{{"name":"templates/tiny.yaml","data":"eA=="}}],"#,
            r#""values":{{"k":"default value of {chart}","replicaCount":1,"image":{{"repository":"example/{chart}","tag":"1.0"}}}},"schema":null,"#,
            r#""files":[{{"name":"README.md","data":"{readme}"}}]}},"#,
            r#""config":{{"k":"{values}"}},"manifest":"---\n# Source: {chart}/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}-{chart}-1\ndata:\n  k: \"{values}\"\n  note: this ConfigMap was rendered from the chart for this release only\n","#,
            r#""hooks":[{{"name":"{name}-hook","kind":"Job","path":"{chart}/templates/hook.yaml","manifest":"apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}-hook\n  annotations:\n    \"helm.sh/hook\": pre-install\n    \"helm.sh/hook-weight\": \"-5\"\n","events":["pre-install"]}}],"#,
            r#""version":{rev},"namespace":"{ns}","apply_method":"ssa"}}"#
        ),
        name = name,
        ns = ns,
        rev = rev,
        chart = chart,
        values = values,
        t1 = tpl(1),
        t2 = tpl(2),
        readme = b64(format!("# {chart}\n\n{}", "Documentation line.\n".repeat(20)).as_bytes()),
    );
    ReleaseRecord::from_helm_json(json.into_bytes()).unwrap()
}

fn cluster() -> Vec<ReleaseRecord> {
    let mut out = Vec::new();
    for ns in ["apps", "apps-x", "tools"] {
        for (name, chart) in [("web", "nginx"), ("db", "postgres"), ("cache", "nginx")] {
            for rev in 1..=3 {
                out.push(chart_record(
                    ns,
                    name,
                    rev,
                    chart,
                    &format!("v{}", rev.min(2)),
                ));
            }
        }
    }
    out
}

type Records = Vec<(IndexRow, Vec<u8>)>;

fn read_all(bytes: &[u8], limits: &Limits) -> Result<(Index, Records), SnapshotError> {
    let mut out = Vec::new();
    let index = read_snapshot(bytes, limits, |_, entry, data| {
        if let Entry::Release(row) = entry {
            out.push((row.clone(), data.to_vec()));
        }
        Ok(())
    })?;
    Ok((index, out))
}

/// The tar entries (path, bytes) of a snapshot's plaintext.
fn entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (path, data)
        })
        .collect()
}

/// Builds a tar.gz of `entries` as they are, in order.
fn archive(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for (path, data) in entries {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        // Raw name bytes: set_path refuses the path tricks under test.
        h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        tar.append(&h, data.as_slice()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

fn without_lifetimes(rows: &[IndexRow]) -> Vec<IndexRow> {
    rows.iter()
        .cloned()
        .map(|mut r| {
            r.blobs_last_used.clear();
            r
        })
        .collect()
}

fn without_lifetimes_r(records: Records) -> Records {
    records
        .into_iter()
        .map(|(mut r, d)| {
            r.blobs_last_used.clear();
            (r, d)
        })
        .collect()
}

fn assert_exact(record: &[u8]) {
    let enc = encode(record).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(record)));
    let back = decode(&enc.skeleton, record.len() as u64, |d| {
        enc.blobs.iter().find(|b| &b.digest == d).map(|b| &*b.data)
    })
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&back),
        String::from_utf8_lossy(record)
    );
}

#[test]
fn records_are_rebuilt_byte_for_byte() {
    for r in cluster() {
        assert_exact(&r.data);
    }
    let long = "x".repeat(100);
    let hexes = "ab".repeat(32);
    let noncanonical = format!("{}Y", "QUJD".repeat(20)).replace("QUJDY", "QUJDYR==");
    let cases = [
        // Pretty-printed, with spaces and newlines around values.
        format!(
            "{{\n  \"manifest\" : \"{long}\" ,\n  \"chart\": {{ \"values\" :\t{{\"a\": \"{long}\"}} }}\n}}\n"
        ),
        // Escapes in keys and values, and non-ASCII.
        format!(
            r#"{{"manifes\u0074":"{long}\u00e9\n","manifest":"\u003c{long}é\"","config":{{"\"":"{long}"}}}}"#
        ),
        // Duplicate keys: each value is designated.
        format!(
            r#"{{"manifest":"{long}","manifest":"{long}2","chart":{{"files":[]}},"chart":{{"files":[{{"data":"{}"}}]}}}}"#,
            b64(long.as_bytes())
        ),
        // Values that look like references are stored as blobs themselves.
        format!(
            r#"{{"manifest":"sha256:{hexes}","hooks":[{{"manifest":"base64:sha256:{hexes}"}}],"chart":{{"templates":[{{"data":"base64:sha256:{hexes}"}},{{"data":"sha256:{hexes}"}}]}}}}"#
        ),
        // base64 that does not re-encode to itself (trailing bits, escaped slash).
        format!(
            r#"{{"chart":{{"templates":[{{"data":"{noncanonical}"}},{{"data":"{}\/x=="}}],"schema":"{}"}}}}"#,
            "QUJD".repeat(20),
            b64(br#"{"type":"object","properties":{"a":{"type":"string"}}}"#)
        ),
        // Unexpected shapes are kept, not designated.
        format!(
            r#"{{"chart":null,"hooks":{{"manifest":"{long}"}},"info":[1,2],"config":"{long}"}}"#
        ),
        format!(
            r#"{{"chart":{{"templates":"{long}","files":[null,1,"{long}",{{"data":null}},{{"data":{{"nested":"{long}"}}}}]}}}}"#
        ),
        format!(r#"["{long}",{{"manifest":"{long}"}}]"#),
        r#""just a string""#.to_owned(),
        "{}".to_owned(),
        // Numbers, deep nesting and empty strings.
        format!(
            r#"{{"config":{{"n":1.5e300,"m":-0,"deep":[[[[[[{{"x":"{long}"}}]]]]]]}},"manifest":""}}"#
        ),
    ];
    for case in &cases {
        assert_exact(case.as_bytes());
    }
}

#[test]
fn designated_values_become_blobs_and_small_ones_stay() {
    let r = chart_record("apps", "web", 1, "nginx", "v1");
    let enc = encode(&r.data).unwrap();
    let skeleton = String::from_utf8(enc.skeleton.to_vec()).unwrap();
    // Templates and files are stored decoded from base64.
    assert!(
        skeleton.contains(r#""name":"templates/a.yaml","data":"base64:sha256:"#),
        "{skeleton}"
    );
    assert!(
        enc.blobs
            .iter()
            .any(|b| b.data.starts_with(b"apiVersion: v1\nkind: ConfigMap"))
    );
    // The manifest and values are JSON text.
    assert!(skeleton.contains(r#""manifest":"sha256:"#), "{skeleton}");
    assert!(
        enc.blobs
            .iter()
            .any(|b| b.data.starts_with(b"\"---\\n# Source: nginx"))
    );
    // A tiny template, null and short values stay where they are.
    assert!(skeleton.contains(r#""data":"eA==""#), "{skeleton}");
    assert!(skeleton.contains(r#""lock":null"#), "{skeleton}");
    assert!(skeleton.contains(r#""config":{"k":"v1"}"#), "{skeleton}");
    // Fields helm-bulk does not designate are untouched.
    assert!(skeleton.contains(r#""apply_method":"ssa""#), "{skeleton}");
}

#[test]
fn v2_round_trip_matches_v1_and_stores_each_blob_once() {
    let records = cluster();
    let v1 = write_snapshot(Vec::new(), meta(), &records).unwrap();
    let v2 = write_snapshot(Vec::new(), meta_v2(), &records).unwrap();
    let (i1, r1) = read_all(&v1, &Limits::default()).unwrap();
    let (i2, r2) = read_all(&v2, &Limits::default()).unwrap();
    assert_eq!((i1.format_version, i2.format_version), (1, 2));
    assert_eq!(
        i1.releases,
        without_lifetimes(&i2.releases),
        "the rows are the same in both formats, but for blobsLastUsed"
    );
    assert_eq!(
        r1,
        without_lifetimes_r(r2.clone()),
        "format 2 rebuilds the records of format 1"
    );
    // Every blob has exactly one last use, at or after the record that is
    // the first to use it.
    let mut last: Vec<&String> = i2
        .releases
        .iter()
        .flat_map(|r| &r.blobs_last_used)
        .collect();
    let n = last.len();
    last.sort();
    last.dedup();
    assert_eq!(last.len(), n);
    for (row, data) in &r2 {
        let original = records
            .iter()
            .find(|r| r.index_row(SourceKind::Helm3).unwrap().path == row.path)
            .unwrap();
        assert_eq!(&data[..], &original.data[..]);
    }
    let e = entries(&v2);
    let blobs: Vec<&String> = e
        .iter()
        .map(|(p, _)| p)
        .filter(|p| p.starts_with("blobs/"))
        .collect();
    let mut unique = blobs.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(blobs.len(), unique.len(), "a blob is stored once");
    assert_eq!(blobs.len(), n, "each blob has its last use in the index");
    // Two charts' templates and README, their values and metadata, plus per
    // release manifest/hook/notes (two value sets per release).
    assert!(blobs.len() < 60, "{} blobs", blobs.len());
    // Each blob is named by its content and comes before the first record using it.
    for (i, (path, data)) in e.iter().enumerate() {
        if let Some(hex) = path.strip_prefix("blobs/") {
            assert_eq!(hex, sha256_hex(data));
            let next_record = e[i..]
                .iter()
                .find(|(p, _)| p.starts_with("releases/"))
                .unwrap();
            assert!(String::from_utf8_lossy(&next_record.1).contains(hex));
        }
    }
    // (gzip's window sees every repeat of a cluster this small: compare the tars.)
    let size = |e: &[(String, Vec<u8>)]| e.iter().map(|(_, d)| d.len()).sum::<usize>();
    let v1_size = size(&entries(&v1));
    assert!(
        size(&e) * 4 < v1_size * 3,
        "v2 {} bytes of entries, v1 {v1_size}",
        size(&e)
    );
}

#[test]
fn v2_writer_is_deterministic() {
    let a = write_snapshot(Vec::new(), meta_v2(), &cluster()).unwrap();
    let mut reversed = cluster();
    reversed.reverse();
    let b = write_snapshot(Vec::new(), meta_v2(), &reversed).unwrap();
    assert_eq!(a, b);
}

#[test]
fn tiller_and_crd_entries_stay_whole_in_v2() {
    let records = cluster();
    let mut m = meta_v2();
    m.source.kind = SourceKind::Tiller;
    // Tiller records are protobuf: stored as they are (the index validation
    // only looks at paths, so Helm JSON stands in for them here).
    let rows: Vec<ReleaseRecord> = records.into_iter().take(3).collect();
    let bytes = write_snapshot(Vec::new(), m, &rows).unwrap();
    let e = entries(&bytes);
    assert!(e.iter().all(|(p, _)| !p.starts_with("blobs/")));
    let (_, got) = read_all(&bytes, &Limits::default()).unwrap();
    assert_eq!(got.len(), 3);
}

/// A valid v2 snapshot's entries, to be broken by the hostile cases.
fn valid_v2() -> Vec<(String, Vec<u8>)> {
    let records = vec![
        chart_record("a", "web", 1, "nginx", "v1"),
        chart_record("a", "web", 2, "nginx", "v1"),
    ];
    entries(&write_snapshot(Vec::new(), meta_v2(), &records).unwrap())
}

fn refused(entries: &[(String, Vec<u8>)], limits: &Limits, want: &str) {
    let err = read_all(&archive(entries), limits).unwrap_err().to_string();
    assert!(err.contains(want), "expected `{want}`, got: {err}");
}

#[test]
fn hostile_v2_layouts_are_refused() {
    let valid = valid_v2();
    let limits = Limits::default();
    read_all(&archive(&valid), &limits).unwrap();
    let first_blob = valid
        .iter()
        .position(|(p, _)| p.starts_with("blobs/"))
        .unwrap();
    let first_record = valid
        .iter()
        .position(|(p, _)| p.starts_with("releases/"))
        .unwrap();

    // A blob left out: the record refers to something not held.
    let mut e = valid.clone();
    e.remove(first_blob);
    refused(&e, &limits, "that the snapshot does not hold at this point");

    // A blob stored twice.
    let mut e = valid.clone();
    e.insert(first_blob, valid[first_blob].clone());
    refused(&e, &limits, "it is stored twice");

    // A blob after its first use (moved behind the record that needs it).
    let mut e = valid.clone();
    let b = e.remove(first_blob);
    e.insert(first_record, b);
    refused(&e, &limits, "does not hold at this point");

    // A blob no record uses, before a record.
    let mut e = valid.clone();
    let junk = b"unused".to_vec();
    e.insert(
        first_blob,
        (format!("blobs/{}", sha256_hex(&junk)), junk.clone()),
    );
    refused(&e, &limits, "comes before it but it does not use it");

    // A blob after the last record.
    let mut e = valid.clone();
    e.push((format!("blobs/{}", sha256_hex(&junk)), junk.clone()));
    refused(&e, &limits, "after the last release record");

    // A blob whose content is not its address.
    let mut e = valid.clone();
    e[first_blob].1.push(b' ');
    refused(&e, &limits, "does not match the index: sha256");

    // Malformed blob names, and path tricks.
    for bad in [
        "blobs/ABC",
        "blobs/",
        "blobs/../index.json",
        "blobs/x/../../etc/passwd",
    ] {
        let mut e = valid.clone();
        e[first_blob].0 = bad.to_owned();
        let err = read_all(&archive(&e), &limits).unwrap_err();
        assert!(
            matches!(
                err,
                SnapshotError::BadBlob { .. } | SnapshotError::UnsafeEntry { .. }
            ),
            "{bad}: {err}"
        );
    }

    // A blob over the record limit, and blobs over their total limit.
    let small = Limits {
        max_record: 64,
        ..Limits::default()
    };
    refused(&valid, &small, "over the limit of 64 bytes");
    let few = Limits {
        max_blobs: 100,
        ..Limits::default()
    };
    refused(&valid, &few, "blobs are over the limit of 100 bytes");

    // A skeleton that refers to one blob many times (an amplification bomb)
    // rebuilds past its row's size and is refused while rebuilding.
    let mut e = valid.clone();
    let (skel_path, skel) = e[first_record].clone();
    let text = String::from_utf8(skel).unwrap();
    let r = text.find("\"manifest\":\"sha256:").unwrap();
    let reference = &text[r + 11..r + 11 + 73];
    let hooks = format!(
        "\"hooks\":[{}],",
        vec![format!("{{\"manifest\":{reference}}}"); 2000].join(",")
    );
    let bomb = text.replacen("\"hooks\":", &format!("{hooks}\"x\":"), 1);
    e[first_record] = (skel_path.clone(), bomb.into_bytes());
    refused(&e, &limits, "rebuilds to more than");

    // A base64 reference where the value is not base64, and a malformed reference.
    let mut e = valid.clone();
    let swapped = text.replacen("\"manifest\":\"sha256:", "\"manifest\":\"base64:sha256:", 1);
    e[first_record].1 = swapped.into_bytes();
    refused(&e, &limits, "where the value is not base64");
    let mut e = valid.clone();
    let malformed = text.replacen("\"manifest\":\"sha256:", "\"manifest\":\"sha256:zz", 1);
    e[first_record].1 = malformed.into_bytes();
    // (not a reference: the text is kept, and the manifest's blob is unused)
    refused(&e, &limits, "does not use it");

    // A skeleton that is not JSON.
    let mut e = valid.clone();
    e[first_record].1 = b"{\"manifest\":".to_vec();
    refused(&e, &limits, "not valid JSON");

    // A skeleton changed so that it rebuilds differently.
    let mut e = valid.clone();
    e[first_record].1 = text.replacen("\"ssa\"", "\"csa\"", 1).into_bytes();
    refused(&e, &limits, "does not match the index: sha256");
}

#[test]
fn blobs_are_refused_in_v1_snapshots() {
    let v2 = valid_v2();
    let mut index: Index = serde_json::from_slice(&v2[0].1).unwrap();
    index.format_version = FORMAT_V1;
    for row in &mut index.releases {
        row.blobs_last_used.clear();
    }
    let mut e = v2.clone();
    e[0].1 = serde_json::to_vec(&index).unwrap();
    let err = read_all(&archive(&e), &Limits::default()).unwrap_err();
    assert!(
        matches!(err, SnapshotError::UnexpectedEntry { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("blobs/"), "{err}");
}

#[test]
fn unknown_format_versions_are_refused() {
    let mut e = valid_v2();
    let mut index: Index = serde_json::from_slice(&e[0].1).unwrap();
    index.format_version = 3;
    e[0].1 = serde_json::to_vec(&index).unwrap();
    let err = read_all(&archive(&e), &Limits::default()).unwrap_err();
    assert!(matches!(err, SnapshotError::UnsupportedVersion(3)), "{err}");
    assert!(err.to_string().contains("versions 1 and 2"), "{err}");
}

/// Generated records of random shape: every one is rebuilt exactly.
#[test]
fn generated_records_are_rebuilt_exactly() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let pieces = [
        "x",
        "\\n",
        "\\\"",
        "\\u003c",
        "é",
        "{{ .Values }}",
        "\\\\",
        "A",
        "sha256:",
        "base64:",
    ];
    for _ in 0..300 {
        let mut string = || {
            let len = (next() % 120) as usize;
            let mut s = String::new();
            for _ in 0..len {
                s.push_str(pieces[(next() % pieces.len() as u64) as usize]);
            }
            s
        };
        let a = string();
        let b = string();
        let data = b64(string().as_bytes());
        let ws = if string().len() % 2 == 0 { "" } else { " \n" };
        let json = format!(
            r#"{{{ws}"chart":{ws}{{"templates":[{{"name":"t","data":"{data}"}},{{"data":"{data}"}}],"values":{{"a":"{a}"}},"schema":"{data}"}},"manifest":"{b}","hooks":[{{"manifest":"{a}"}}],"info":{{"notes":"{b}"}},"config":{{"b":"{b}"}}{ws}}}"#
        );
        assert!(
            serde_json::from_str::<serde_json::Value>(&json).is_ok(),
            "{json}"
        );
        assert_exact(json.as_bytes());
    }
}

/// Records as the real helm v3.22.0 and v4.3.1 stored them (secret driver,
/// decoded), captured from the test environment: `dashboards` installed and
/// upgraded (two revisions each), `smoke` with Helm 3, `operator` (a chart
/// with `crds/` and a subchart) with Helm 4.
fn real_records() -> Vec<(&'static str, Vec<u8>)> {
    let gz: [(&str, &[u8]); 6] = [
        (
            "helm3 web3 v1",
            include_bytes!("testdata/h3-web3.v1.json.gz"),
        ),
        (
            "helm3 web3 v2",
            include_bytes!("testdata/h3-web3.v2.json.gz"),
        ),
        (
            "helm3 smoke3 v1",
            include_bytes!("testdata/h3-smoke3.v1.json.gz"),
        ),
        (
            "helm4 web4 v1",
            include_bytes!("testdata/h4-web4.v1.json.gz"),
        ),
        (
            "helm4 web4 v2",
            include_bytes!("testdata/h4-web4.v2.json.gz"),
        ),
        ("helm4 op4 v1", include_bytes!("testdata/h4-op4.v1.json.gz")),
    ];
    gz.into_iter()
        .map(|(what, data)| {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(data)
                .read_to_end(&mut out)
                .unwrap();
            (what, out)
        })
        .collect()
}

#[test]
fn real_helm3_and_helm4_records_are_rebuilt_byte_for_byte() {
    let mut blobs_of = Vec::new();
    for (what, data) in real_records() {
        let enc = encode(&data).unwrap_or_else(|e| panic!("{what}: {e}"));
        let back = decode(&enc.skeleton, data.len() as u64, |d| {
            enc.blobs.iter().find(|b| &b.digest == d).map(|b| &*b.data)
        })
        .unwrap();
        assert!(
            back.as_slice() == data.as_slice(),
            "{what}: not byte-identical"
        );
        // The chart's templates went into blobs, decoded: the skeleton is small.
        assert!(
            enc.skeleton.len() * 3 < data.len(),
            "{what}: skeleton {} of {} bytes",
            enc.skeleton.len(),
            data.len()
        );
        let digests: Vec<[u8; 32]> = enc.blobs.iter().map(|b| b.digest).collect();
        blobs_of.push((what, digests));
    }
    // Two revisions of one release share everything but what changed.
    for (a, b) in [(0, 1), (3, 4)] {
        let (wa, da) = &blobs_of[a];
        let (wb, db) = &blobs_of[b];
        let shared = db.iter().filter(|d| da.contains(d)).count();
        assert!(
            shared + 1 >= db.len(),
            "{wa} and {wb} share {shared} of {} blobs",
            db.len()
        );
    }
    // Through the writer and the reader, with v1 for comparison.
    for kind in [SourceKind::Helm3, SourceKind::Helm4] {
        let prefix = if kind == SourceKind::Helm3 {
            "helm3"
        } else {
            "helm4"
        };
        let records: Vec<ReleaseRecord> = real_records()
            .into_iter()
            .filter(|(w, _)| w.starts_with(prefix))
            .map(|(_, d)| ReleaseRecord::from_helm_json(d).unwrap())
            .collect();
        let mut m1 = meta();
        let mut m2 = meta_v2();
        m1.source.kind = kind;
        m2.source.kind = kind;
        let v1 = write_snapshot(Vec::new(), m1, &records).unwrap();
        let v2 = write_snapshot(Vec::new(), m2, &records).unwrap();
        let (_, r1) = read_all(&v1, &Limits::default()).unwrap();
        let (_, r2) = read_all(&v2, &Limits::default()).unwrap();
        assert_eq!(r1, without_lifetimes_r(r2.clone()));
        assert_eq!(r2.len(), records.len());
    }
}

/// The index's `blobsLastUsed`: a reader drops a blob after its last use,
/// a writer that is told so writes it again if it is used later, and a
/// lying index is refused.
#[test]
fn blob_lifetimes_from_the_index() {
    let records = vec![
        chart_record("a", "web", 1, "nginx", "v1"),
        chart_record("a", "web", 2, "nginx", "v1"),
    ];
    let valid = valid_v2();
    let index: Index = serde_json::from_slice(&valid[0].1).unwrap();
    // Both records use the chart's blobs: their last use is the second.
    assert!(index.releases[0].blobs_last_used.is_empty());
    let shared = index.releases[1].blobs_last_used.clone();
    assert!(shared.len() >= 5, "{shared:?}");

    // An index that says the first record is the last to use a blob the
    // second one uses too: the reader has dropped it when the second needs it.
    let mut lying = index.clone();
    lying.releases[0].blobs_last_used = vec![shared[0].clone()];
    let mut e = valid.clone();
    e[0].1 = serde_json::to_vec(&lying).unwrap();
    refused(&e, &Limits::default(), "does not hold at this point");

    // The writer given that index writes the blob again before the second
    // record, and the reader accepts it (a new lifetime of the same blob).
    let mut m = meta_v2();
    m.releases = lying.releases.clone();
    let mut w = SnapshotWriter::new(Vec::new(), &m).unwrap();
    for (row, r) in m.releases.iter().zip(&records) {
        w.append(&row.path, &r.data).unwrap();
    }
    let bytes = w.finish().unwrap();
    let again = entries(&bytes);
    let twice = again
        .iter()
        .filter(|(p, _)| *p == format!("blobs/{}", shared[0]))
        .count();
    assert_eq!(twice, 2);
    let (_, got) = read_all(&bytes, &Limits::default()).unwrap();
    assert_eq!(got.len(), 2);
    for ((_, data), r) in got.iter().zip(&records) {
        assert_eq!(&data[..], &r.data[..]);
    }

    // A blob listed as last used by a record that does not use it.
    let mut lying = index.clone();
    let unused = sha256_hex(b"not used");
    lying.releases[0].blobs_last_used = vec![unused.clone()];
    let mut e = valid.clone();
    e[0].1 = serde_json::to_vec(&lying).unwrap();
    refused(&e, &Limits::default(), "but it does not use it");
    let mut m = meta_v2();
    m.releases = lying.releases.clone();
    let mut w = SnapshotWriter::new(Vec::new(), &m).unwrap();
    let err = w.append(&m.releases[0].path, &records[0].data).unwrap_err();
    assert!(err.to_string().contains("which does not use it"), "{err}");

    // Malformed lists are refused with the index.
    for bad in [
        vec!["xyz".to_owned()],
        vec![shared[1].clone(), shared[0].clone()],
        vec![shared[0].clone(), shared[0].clone()],
    ] {
        let mut lying = index.clone();
        lying.releases[1].blobs_last_used = bad;
        let mut e = valid.clone();
        e[0].1 = serde_json::to_vec(&lying).unwrap();
        let err = read_all(&archive(&e), &Limits::default()).unwrap_err();
        assert!(matches!(err, SnapshotError::BadIndex(_)), "{err}");
    }
}

/// Without `blobsLastUsed` (a writer that does not know), blobs are kept to
/// the end and the snapshot still reads.
#[test]
fn an_index_without_lifetimes_still_reads() {
    let valid = valid_v2();
    let mut index: Index = serde_json::from_slice(&valid[0].1).unwrap();
    for row in &mut index.releases {
        row.blobs_last_used.clear();
    }
    let mut e = valid.clone();
    e[0].1 = serde_json::to_vec(&index).unwrap();
    let (_, got) = read_all(&archive(&e), &Limits::default()).unwrap();
    assert_eq!(got.len(), 2);
}

/// A save's first pass finds blobs on several threads in any order, then
/// adds them in archive order: the lifetimes are those of adding each
/// record in turn.
#[test]
fn blobs_found_on_threads_give_the_same_lifetimes() {
    let records = cluster();
    let rows = || -> Vec<IndexRow> {
        records
            .iter()
            .map(|r| r.index_row(SourceKind::Helm3).unwrap())
            .collect()
    };
    let mut one = super::v2::Lifetimes::default();
    for r in &records {
        one.add(r.index_row(SourceKind::Helm3).unwrap().sort_key(), &r.data);
    }
    let mut want = rows();
    one.assign(&mut want);
    assert!(want.iter().any(|r| !r.blobs_last_used.is_empty()));

    let mut many = super::v2::Lifetimes::default();
    let finder = many.finder();
    // Last record first, three records per thread, all threads at once.
    let reversed: Vec<&ReleaseRecord> = records.iter().rev().collect();
    let found: Vec<Vec<[u8; 32]>> = std::thread::scope(|s| {
        let handles: Vec<_> = reversed
            .chunks(3)
            .map(|chunk| {
                let finder = &finder;
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|r| finder.blobs(&r.data))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    for (r, blobs) in records.iter().rev().zip(found) {
        assert_eq!(blobs, finder.blobs(&r.data), "the cache answers the same");
        many.add_blobs(r.index_row(SourceKind::Helm3).unwrap().sort_key(), blobs);
    }
    let mut got = rows();
    many.assign(&mut got);
    assert_eq!(got, want);
}
