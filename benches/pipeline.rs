//! Benchmark of the vault pipeline: helm-bulk's snapshot writer (tar + gzip -6)
//! through age encryption to one X25519 recipient, against the reference
//! pair `gzip -6 -c snapshot.tar | age -r RECIPIENT` on the same bytes.
//!
//!     cargo bench --bench pipeline
//!
//! Environment:
//!   HELM_BULK_BENCH_MIB   how many MiB of release records to generate (default 256)
//!   HELM_BULK_BENCH_SEED  seed of the generator (default 1)
//!   HELM_BULK_BENCH_AGE   the reference age binary (default /usr/bin/age)
//!   HELM_BULK_BENCH_GZIP  the reference gzip binary (default gzip)
//!
//! The records imitate Helm 3 release JSON (`helm.sh/release.v1` decoded):
//! chart metadata, base64 template data, default and user values, the
//! rendered manifest and hooks, with random names, checksums, passwords and
//! image digests so that they compress about as well as real releases.
//!
//! Throughput is MiB of record bytes (the JSON, as `save` reports it) per
//! second, for both contenders; the reference pair reads the identical
//! uncompressed tar (checked byte for byte against helm-bulk's own) from a
//! file in the page cache.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use helm_bulk::release::ReleaseRecord;
use helm_bulk::snapshot::{INDEX_PATH, Index, IndexRow, SnapshotWriter, SourceKind};
use helm_bulk::vault::{Protection, encrypt};

const MIB: f64 = (1u64 << 20) as f64;

// ---------------------------------------------------------------------------
// A small deterministic PRNG (SplitMix64): no extra dependency, same data on
// every run for a given seed.

use helm_bulk::testing::SplitMix64 as Rng;

/// What the benchmark generates beyond the shared generator.
trait Generate {
    fn hex(&mut self, n: usize) -> String;
    fn alnum_in(&mut self, lo: usize, hi: usize) -> String;
    fn alnum(&mut self, n: usize) -> String;
}

impl Generate for Rng {
    fn hex(&mut self, n: usize) -> String {
        hex::encode(self.bytes(n / 2))
    }
    fn alnum_in(&mut self, lo: usize, hi: usize) -> String {
        let n = self.range(lo, hi);
        self.alnum(n)
    }
    fn alnum(&mut self, n: usize) -> String {
        const A: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        (0..n).map(|_| A[self.below(A.len())] as char).collect()
    }
}

const WORDS: &[&str] = &[
    "app",
    "api",
    "server",
    "worker",
    "cache",
    "redis",
    "postgres",
    "gateway",
    "proxy",
    "web",
    "frontend",
    "backend",
    "metrics",
    "exporter",
    "operator",
    "controller",
    "webhook",
    "ingress",
    "service",
    "monitor",
    "alert",
    "queue",
    "kafka",
    "zookeeper",
    "search",
    "elastic",
    "kibana",
    "grafana",
    "prometheus",
    "loki",
    "tempo",
    "auth",
    "oauth",
    "keycloak",
    "vault",
    "consul",
    "etcd",
    "minio",
    "storage",
    "backup",
    "cron",
    "scheduler",
    "sync",
    "mirror",
    "relay",
    "billing",
    "payments",
    "orders",
    "catalog",
    "inventory",
    "users",
    "profile",
    "session",
    "notifier",
    "mailer",
    "sms",
    "report",
    "analytics",
    "pipeline",
    "runner",
    "agent",
    "collector",
    "shipper",
    "index",
    "ledger",
    "audit",
    "policy",
    "config",
    "secret",
    "token",
    "cert",
    "manager",
    "admission",
    "registry",
    "harbor",
    "nginx",
    "envoy",
    "istio",
    "linkerd",
    "cilium",
];

const PROSE: &[&str] = &[
    "the",
    "a",
    "of",
    "to",
    "and",
    "for",
    "is",
    "this",
    "when",
    "enable",
    "disable",
    "number",
    "replicas",
    "deployment",
    "pod",
    "container",
    "resources",
    "limits",
    "requests",
    "memory",
    "cpu",
    "port",
    "service",
    "account",
    "annotations",
    "labels",
    "selector",
    "node",
    "affinity",
    "tolerations",
    "security",
    "context",
    "image",
    "pull",
    "policy",
    "tag",
    "repository",
    "override",
    "name",
    "full",
    "chart",
    "default",
    "value",
    "values",
    "configure",
    "optional",
    "required",
    "set",
    "create",
    "existing",
    "secret",
    "configmap",
    "volume",
    "mount",
    "path",
    "storage",
    "class",
    "size",
    "persistence",
    "ingress",
    "host",
    "tls",
    "probe",
    "liveness",
    "readiness",
    "startup",
    "timeout",
    "seconds",
    "initial",
    "delay",
    "period",
    "threshold",
    "metrics",
    "serviceMonitor",
    "prometheus",
    "scrape",
    "interval",
    "autoscaling",
    "minimum",
    "maximum",
    "target",
    "utilization",
    "percentage",
    "extra",
    "environment",
    "variables",
    "args",
    "command",
    "lifecycle",
    "hooks",
    "strategy",
    "rolling",
    "update",
    "surge",
    "unavailable",
];

const KEYS: &[&str] = &[
    "enabled",
    "replicaCount",
    "image",
    "repository",
    "tag",
    "pullPolicy",
    "imagePullSecrets",
    "nameOverride",
    "fullnameOverride",
    "serviceAccount",
    "create",
    "annotations",
    "name",
    "podAnnotations",
    "podLabels",
    "podSecurityContext",
    "securityContext",
    "runAsUser",
    "runAsNonRoot",
    "fsGroup",
    "readOnlyRootFilesystem",
    "service",
    "type",
    "port",
    "targetPort",
    "ingress",
    "className",
    "hosts",
    "host",
    "paths",
    "path",
    "pathType",
    "tls",
    "secretName",
    "resources",
    "limits",
    "requests",
    "cpu",
    "memory",
    "autoscaling",
    "minReplicas",
    "maxReplicas",
    "targetCPUUtilizationPercentage",
    "nodeSelector",
    "tolerations",
    "affinity",
    "persistence",
    "storageClass",
    "accessModes",
    "size",
    "existingClaim",
    "metrics",
    "serviceMonitor",
    "interval",
    "scrapeTimeout",
    "extraEnv",
    "extraArgs",
    "extraVolumes",
    "extraVolumeMounts",
    "livenessProbe",
    "readinessProbe",
    "initialDelaySeconds",
    "periodSeconds",
    "timeoutSeconds",
    "failureThreshold",
    "config",
    "logLevel",
    "logFormat",
    "database",
    "username",
    "password",
    "existingSecret",
    "auth",
    "rootPassword",
    "cluster",
    "url",
    "endpoint",
    "region",
    "bucket",
    "retention",
    "schedule",
    "timezone",
    "labels",
];

const KINDS: &[&str] = &[
    "Deployment",
    "Service",
    "ConfigMap",
    "Secret",
    "ServiceAccount",
    "Ingress",
    "StatefulSet",
    "Role",
    "RoleBinding",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "ServiceMonitor",
    "CronJob",
    "NetworkPolicy",
    "PersistentVolumeClaim",
    "ClusterRole",
    "ClusterRoleBinding",
];

fn prose(rng: &mut Rng, words: usize) -> String {
    let mut s = String::new();
    for i in 0..words {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(rng.pick(PROSE));
    }
    s
}

fn prose_in(rng: &mut Rng, lo: usize, hi: usize) -> String {
    let n = rng.range(lo, hi);
    prose(rng, n)
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

// ---------------------------------------------------------------------------
// Values: nested JSON objects of chart-like keys.

fn value(rng: &mut Rng, depth: usize) -> serde_json::Value {
    use serde_json::Value;
    match rng.below(if depth == 0 { 7 } else { 10 }) {
        0 => Value::Bool(rng.chance(50)),
        1 => Value::from(rng.below(65536)),
        2 => Value::from(format!("{}-{}", rng.pick(WORDS), rng.pick(WORDS))),
        3 => Value::from(prose_in(rng, 3, 12)),
        4 => Value::from(format!(
            "{}.example.com/{}/{}",
            rng.pick(WORDS),
            rng.pick(WORDS),
            rng.pick(WORDS)
        )),
        5 => Value::from(format!("{}Mi", 64 << rng.below(6))),
        6 => Value::Array(
            (0..rng.range(1, 4))
                .map(|_| Value::from(format!("--{}={}", rng.pick(KEYS), rng.pick(WORDS))))
                .collect(),
        ),
        _ => object_in(rng, depth - 1, 2, 6),
    }
}

fn object_in(rng: &mut Rng, depth: usize, lo: usize, hi: usize) -> serde_json::Value {
    let n = rng.range(lo, hi);
    object(rng, depth, n)
}

fn object(rng: &mut Rng, depth: usize, keys: usize) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for _ in 0..keys {
        m.insert(rng.pick(KEYS).to_owned(), value(rng, depth));
    }
    serde_json::Value::Object(m)
}

// ---------------------------------------------------------------------------
// Kubernetes YAML, either as a chart template (with Go template actions) or
// rendered (with concrete, partly random values).

struct Render<'a> {
    release: &'a str,
    chart: &'a str,
    version: &'a str,
}

fn k8s_doc(rng: &mut Rng, kind: &str, r: Option<&Render<'_>>, chart: &str) -> String {
    let name = match r {
        Some(r) => format!("{}-{}", r.release, chart),
        None => format!("{{{{ include \"{chart}.fullname\" . }}}}"),
    };
    let labels = match r {
        Some(r) => format!(
            "    helm.sh/chart: {}-{}\n    app.kubernetes.io/name: {}\n    app.kubernetes.io/instance: {}\n    app.kubernetes.io/version: \"{}\"\n    app.kubernetes.io/managed-by: Helm\n",
            r.chart, r.version, r.chart, r.release, r.version
        ),
        None => format!("    {{{{- include \"{chart}.labels\" . | nindent 4 }}}}\n"),
    };
    let mut s = format!(
        "apiVersion: {}\nkind: {kind}\nmetadata:\n  name: {name}\n  labels:\n{labels}",
        match kind {
            "Deployment" | "StatefulSet" => "apps/v1",
            "Ingress" | "NetworkPolicy" => "networking.k8s.io/v1",
            "Role" | "RoleBinding" | "ClusterRole" | "ClusterRoleBinding" =>
                "rbac.authorization.k8s.io/v1",
            "CronJob" => "batch/v1",
            "ServiceMonitor" => "monitoring.coreos.com/v1",
            "HorizontalPodAutoscaler" => "autoscaling/v2",
            "PodDisruptionBudget" => "policy/v1",
            _ => "v1",
        }
    );
    match kind {
        "Secret" => {
            s.push_str("type: Opaque\ndata:\n");
            for _ in 0..rng.range(2, 8) {
                let key = rng.pick(KEYS);
                match r {
                    Some(_) => {
                        let secret = rng.alnum_in(16, 48);
                        let b = base64::engine::general_purpose::STANDARD.encode(secret);
                        s.push_str(&format!("  {key}: {b}\n"));
                    }
                    None => s.push_str(&format!(
                        "  {key}: {{{{ .Values.auth.{key} | default (randAlphaNum 32) | b64enc | quote }}}}\n"
                    )),
                }
            }
        }
        "ConfigMap" => {
            s.push_str("data:\n");
            for _ in 0..rng.range(2, 10) {
                let key = rng.pick(KEYS);
                s.push_str(&format!("  {key}.conf: |\n"));
                for _ in 0..rng.range(3, 30) {
                    match r {
                        Some(_) => s.push_str(&format!(
                            "    {} = {}\n",
                            rng.pick(KEYS),
                            if rng.chance(12) {
                                rng.hex(16)
                            } else {
                                prose_in(rng, 1, 6)
                            }
                        )),
                        None => s.push_str(&format!(
                            "    {} = {{{{ .Values.config.{} | quote }}}}\n",
                            rng.pick(KEYS),
                            rng.pick(KEYS)
                        )),
                    }
                }
            }
        }
        "Deployment" | "StatefulSet" | "CronJob" => {
            let checksum = match r {
                Some(_) => rng.hex(64),
                None => {
                    "{{ include (print $.Template.BasePath \"/configmap.yaml\") . | sha256sum }}"
                        .to_owned()
                }
            };
            let image = match r {
                Some(_) => format!(
                    "registry.example.com/{}/{}@sha256:{}",
                    rng.pick(WORDS),
                    rng.pick(WORDS),
                    rng.hex(64)
                ),
                None => "\"{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}\"".to_owned(),
            };
            s.push_str(&format!(
                "spec:\n  replicas: {}\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: {chart}\n  template:\n    metadata:\n      annotations:\n        checksum/config: {checksum}\n    spec:\n      serviceAccountName: {name}\n      securityContext:\n        runAsNonRoot: true\n        runAsUser: {}\n      containers:\n",
                rng.range(1, 5),
                rng.range(1000, 65000)
            ));
            for c in 0..rng.range(1, 3) {
                s.push_str(&format!(
                    "        - name: {}-{c}\n          image: {image}\n          imagePullPolicy: IfNotPresent\n          args:\n",
                    rng.pick(WORDS)
                ));
                for _ in 0..rng.range(2, 10) {
                    s.push_str(&format!(
                        "            - --{}={}\n",
                        rng.pick(KEYS),
                        rng.pick(WORDS)
                    ));
                }
                s.push_str("          env:\n");
                for _ in 0..rng.range(2, 14) {
                    let key = rng.pick(KEYS).to_uppercase();
                    match r {
                        Some(_) if rng.chance(25) => s.push_str(&format!(
                            "            - name: {key}\n              valueFrom:\n                secretKeyRef:\n                  name: {name}\n                  key: {}\n",
                            rng.pick(KEYS)
                        )),
                        Some(_) => s.push_str(&format!(
                            "            - name: {key}\n              value: {}\n",
                            quote(&prose_in(rng, 1, 4))
                        )),
                        None => s.push_str(&format!(
                            "            - name: {key}\n              value: {{{{ .Values.env.{} | quote }}}}\n",
                            rng.pick(KEYS)
                        )),
                    }
                }
                s.push_str(&format!(
                    "          ports:\n            - name: http\n              containerPort: {}\n              protocol: TCP\n          livenessProbe:\n            httpGet:\n              path: /healthz\n              port: http\n            initialDelaySeconds: {}\n          resources:\n            limits:\n              cpu: {}m\n              memory: {}Mi\n            requests:\n              cpu: {}m\n              memory: {}Mi\n",
                    rng.range(1024, 9999),
                    rng.range(5, 60),
                    rng.range(1, 40) * 50,
                    64 << rng.below(6),
                    rng.range(1, 20) * 10,
                    32 << rng.below(6)
                ));
            }
        }
        "Role" | "ClusterRole" => {
            s.push_str("rules:\n");
            for _ in 0..rng.range(2, 12) {
                s.push_str(&format!(
                    "  - apiGroups: [\"{}\"]\n    resources: [\"{}s\", \"{}s\"]\n    verbs: [\"get\", \"list\", \"watch\"{}]\n",
                    if rng.chance(50) { "" } else { "apps" },
                    rng.pick(WORDS),
                    rng.pick(WORDS),
                    if rng.chance(30) { ", \"create\", \"update\", \"patch\"" } else { "" }
                ));
            }
        }
        _ => {
            s.push_str("spec:\n");
            let v = object_in(rng, 2, 3, 8);
            yaml_like(&v, 1, &mut s);
        }
    }
    s
}

fn yaml_like(v: &serde_json::Value, indent: usize, out: &mut String) {
    if let serde_json::Value::Object(m) = v {
        for (k, v) in m {
            out.push_str(&"  ".repeat(indent));
            out.push_str(k);
            out.push(':');
            match v {
                serde_json::Value::Object(_) => {
                    out.push('\n');
                    yaml_like(v, indent + 1, out);
                }
                other => {
                    out.push(' ');
                    out.push_str(&other.to_string());
                    out.push('\n');
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Charts and releases.

struct Chart {
    name: String,
    version: String,
    app_version: String,
    description: String,
    templates: Vec<(String, String)>, // (path, kind)
    template_data: Vec<String>,       // base64, as Helm stores chart files
    files: Vec<(String, String)>,
    values: serde_json::Value,
}

fn chart(rng: &mut Rng, i: usize) -> Chart {
    let name = format!("{}-{}", rng.pick(WORDS), i);
    let count = rng.range(4, 28);
    let mut templates = Vec::new();
    let mut template_data = Vec::new();
    for t in 0..count {
        let kind = rng.pick(KINDS);
        let path = format!("templates/{}-{t}.yaml", kind.to_lowercase());
        let mut text = String::new();
        if rng.chance(40) {
            text.push_str(&format!(
                "{{{{- if .Values.{}.enabled }}}}\n",
                rng.pick(KEYS)
            ));
        }
        text.push_str(&k8s_doc(rng, kind, None, &name));
        text.push_str("{{- end }}\n");
        template_data.push(base64::engine::general_purpose::STANDARD.encode(text));
        templates.push((path, kind.to_owned()));
    }
    let mut helpers = String::new();
    for d in [
        "name",
        "fullname",
        "chart",
        "labels",
        "selectorLabels",
        "serviceAccountName",
    ] {
        helpers.push_str(&format!(
            "{{{{/*\n{}\n*/}}}}\n{{{{- define \"{name}.{d}\" -}}}}\n{{{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix \"-\" }}}}\n{{{{- end }}}}\n\n",
            prose_in(rng, 6, 20)
        ));
    }
    template_data.push(base64::engine::general_purpose::STANDARD.encode(&helpers));
    templates.push(("templates/_helpers.tpl".to_owned(), String::new()));
    let readme = format!("# {name}\n\n{}\n", prose_in(rng, 200, 3000));
    let files = vec![
        (
            ".helmignore".to_owned(),
            base64::engine::general_purpose::STANDARD
                .encode(".DS_Store\n.git/\n.gitignore\n*.swp\n*.bak\n*.tmp\n.idea/\n.vscode/\n"),
        ),
        (
            "README.md".to_owned(),
            base64::engine::general_purpose::STANDARD.encode(readme),
        ),
    ];
    Chart {
        version: format!("{}.{}.{}", rng.below(20), rng.below(40), rng.below(10)),
        app_version: format!("{}.{}.{}", rng.below(5), rng.below(30), rng.below(20)),
        description: prose_in(rng, 5, 20),
        values: object_in(rng, 3, 8, 30),
        name,
        templates,
        template_data,
        files,
    }
}

/// One Helm 3 release record (the JSON Helm stores, base64+gzip removed).
fn release_json(
    rng: &mut Rng,
    c: &Chart,
    namespace: &str,
    name: &str,
    revision: u32,
    latest: u32,
) -> Vec<u8> {
    let status = if revision == latest {
        if rng.chance(90) { "deployed" } else { "failed" }
    } else {
        "superseded"
    };
    let day = rng.range(1, 28);
    let time = format!(
        "2026-{:02}-{day:02}T{:02}:{:02}:{:02}.{}Z",
        rng.range(1, 12),
        rng.below(24),
        rng.below(60),
        rng.below(60),
        rng.range(100_000_000, 999_999_999)
    );
    let r = Render {
        release: name,
        chart: &c.name,
        version: &c.app_version,
    };
    let mut manifest = String::new();
    let mut hooks = Vec::new();
    for (path, kind) in &c.templates {
        if kind.is_empty() {
            continue;
        }
        let doc = k8s_doc(rng, kind, Some(&r), &c.name);
        if rng.chance(5) {
            hooks.push(serde_json::json!({
                "name": format!("{name}-{}-hook", c.name),
                "kind": kind,
                "path": format!("{}/{path}", c.name),
                "manifest": format!("# Source: {}/{path}\n{doc}", c.name),
                "events": ["pre-install", "pre-upgrade"],
                "last_run": {"started_at": time, "completed_at": time, "phase": "Succeeded"},
                "weight": rng.below(10) as i64 - 5,
                "delete_policies": ["before-hook-creation", "hook-succeeded"],
            }));
        } else {
            manifest.push_str(&format!("---\n# Source: {}/{path}\n{doc}", c.name));
        }
    }
    let mut config = object_in(rng, 2, 2, 10);
    if let serde_json::Value::Object(m) = &mut config {
        m.insert(
            "auth".to_owned(),
            serde_json::json!({
                "password": rng.alnum(24),
                "rootPassword": rng.alnum(32),
                "token": base64::engine::general_purpose::STANDARD.encode(rng.bytes(48)),
            }),
        );
    }
    let templates: Vec<_> = c
        .templates
        .iter()
        .zip(&c.template_data)
        .map(|((path, _), data)| serde_json::json!({"name": path, "data": data}))
        .collect();
    let files: Vec<_> = c
        .files
        .iter()
        .map(|(n, d)| serde_json::json!({"name": n, "data": d}))
        .collect();
    let v = serde_json::json!({
        "name": name,
        "info": {
            "first_deployed": "2025-06-01T10:00:00.000000000Z",
            "last_deployed": time,
            "deleted": "",
            "description": if revision == 1 { "Install complete" } else { "Upgrade complete" },
            "status": status,
            "notes": format!("1. Get the application URL by running these commands:\n  export POD_NAME=$(kubectl get pods --namespace {namespace} -l \"app.kubernetes.io/name={},app.kubernetes.io/instance={name}\" -o jsonpath=\"{{.items[0].metadata.name}}\")\n{}\n", c.name, prose_in(rng, 10, 80)),
        },
        "chart": {
            "metadata": {
                "name": c.name,
                "version": c.version,
                "description": c.description,
                "apiVersion": "v2",
                "appVersion": c.app_version,
                "type": "application",
            },
            "lock": null,
            "templates": templates,
            "values": c.values,
            "schema": null,
            "files": files,
        },
        "config": config,
        "manifest": manifest,
        "hooks": hooks,
        "version": revision,
        "namespace": namespace,
    });
    serde_json::to_vec(&v).unwrap()
}

fn generate(target: usize, seed: u64) -> Vec<ReleaseRecord> {
    let mut rng = Rng(seed);
    let charts: Vec<Chart> = (0..48).map(|i| chart(&mut rng, i)).collect();
    let mut records = Vec::new();
    let mut total = 0usize;
    let mut n = 0usize;
    while total < target {
        let namespace = format!("{}-{}", rng.pick(WORDS), n % 37);
        let name = format!("{}-{n}", rng.pick(WORDS));
        let c = &charts[rng.below(charts.len())];
        let revisions = rng.range(1, 10) as u32;
        for rev in 1..=revisions {
            let json = release_json(&mut rng, c, &namespace, &name, rev, revisions);
            total += json.len();
            records.push(ReleaseRecord::from_helm_json(json).expect("generated record parses"));
            if total >= target {
                break;
            }
        }
        n += 1;
    }
    records
}

// ---------------------------------------------------------------------------
// The contenders.

/// Counts bytes and throws them away.
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn index_for(records: &[ReleaseRecord]) -> (Index, Vec<usize>) {
    let mut index = helm_bulk::testing::helm3_index("https://bench.invalid:6443", "bench");
    // Format 1: every record whole, so the reference pair compresses the
    // identical tar (format 2 is measured by scripts/bench/format-v2).
    index.format_version = helm_bulk::snapshot::FORMAT_V1;
    // As `save`'s first pass: rows (with hashes) are made before writing.
    let mut order: Vec<usize> = (0..records.len()).collect();
    order.sort_by_cached_key(|&i| {
        let s = &records[i].summary;
        helm_bulk::snapshot::storage_order(&s.namespace, &s.name, s.revision)
    });
    index.releases = order
        .iter()
        .map(|&i| records[i].index_row(SourceKind::Helm3).unwrap())
        .collect::<Vec<IndexRow>>();
    (index, order)
}

/// helm-bulk: SnapshotWriter → vault::encrypt → `out`.
fn helm_bulk_pipeline<W: Write>(
    records: &[ReleaseRecord],
    index: &Index,
    order: &[usize],
    protection: &Protection,
    out: W,
) -> W {
    let enc = encrypt(out, protection, false).unwrap();
    let mut w = SnapshotWriter::new(enc, index).unwrap();
    for (&i, row) in order.iter().zip(&index.releases) {
        w.append(&row.path, &records[i].data).unwrap();
    }
    w.finish().unwrap().finish().unwrap()
}

/// helm-bulk's tar + gzip stream without encryption (for the breakdown only:
/// helm-bulk itself never writes it).
fn snapshot_only<W: Write>(records: &[ReleaseRecord], index: &Index, order: &[usize], out: W) -> W {
    let mut w = SnapshotWriter::new(out, index).unwrap();
    for (&i, row) in order.iter().zip(&index.releases) {
        w.append(&row.path, &records[i].data).unwrap();
    }
    w.finish().unwrap()
}

/// The same tar helm-bulk writes, uncompressed: identical headers and order.
fn plain_tar(records: &[ReleaseRecord], index: &Index, order: &[usize], out: File) -> u64 {
    use helm_bulk::testing::tar_header as header;
    let mut tar = tar::Builder::new(BufWriter::with_capacity(1 << 20, out));
    let json = serde_json::to_vec_pretty(index).unwrap();
    tar.append_data(&mut header(json.len() as u64), INDEX_PATH, json.as_slice())
        .unwrap();
    for (&i, row) in order.iter().zip(&index.releases) {
        let data: &[u8] = &records[i].data;
        tar.append_data(&mut header(data.len() as u64), &row.path, data)
            .unwrap();
    }
    let mut f = tar.into_inner().unwrap().into_inner().unwrap();
    f.flush().unwrap();
    f.sync_all().unwrap();
    f.metadata().unwrap().len()
}

fn shell(script: &str) -> Duration {
    let start = Instant::now();
    let status = Command::new("bash")
        .args(["-c", &format!("set -euo pipefail; {script}")])
        .status()
        .expect("cannot run bash");
    let elapsed = start.elapsed();
    assert!(status.success(), "`{script}` failed: {status}");
    elapsed
}

fn mibs(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / MIB / d.as_secs_f64()
}

fn main() {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let target_mib: usize = env("HELM_BULK_BENCH_MIB").map_or(256, |v| v.parse().unwrap());
    let seed: u64 = env("HELM_BULK_BENCH_SEED").map_or(1, |v| v.parse().unwrap());
    let age_bin = env("HELM_BULK_BENCH_AGE").unwrap_or_else(|| "/usr/bin/age".to_owned());
    let gzip_bin = env("HELM_BULK_BENCH_GZIP").unwrap_or_else(|| "gzip".to_owned());

    let t = Instant::now();
    let records = generate(target_mib << 20, seed);
    let (index, order) = index_for(&records);
    let input: u64 = index.releases.iter().map(|r| r.size).sum();
    let releases = {
        let mut k: Vec<_> = index
            .releases
            .iter()
            .map(|r| (&r.namespace, &r.name))
            .collect();
        k.dedup();
        k.len()
    };
    println!(
        "generated {} records of {releases} releases, {:.1} MiB of JSON (seed {seed}) in {:.1}s",
        records.len(),
        input as f64 / MIB,
        t.elapsed().as_secs_f64()
    );

    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public();
    let recipient_str = recipient.to_string();
    let protection = Protection::Recipients(vec![Box::new(recipient)]);

    // The reference pair's input: the identical plaintext tar, in a temp file.
    let dir = tempfile::tempdir().unwrap();
    let tar_path = dir.path().join("snapshot.tar");
    let tar_size = plain_tar(&records, &index, &order, File::create(&tar_path).unwrap());

    // helm-bulk without age (tar + gzip only): a breakdown, and the check that
    // its tar is byte for byte the file the reference pair reads.
    let t = Instant::now();
    let gz = snapshot_only(&records, &index, &order, Vec::new());
    let plain_time = t.elapsed();
    {
        let mut ours = flate2::read::GzDecoder::new(gz.as_slice());
        let mut theirs = io::BufReader::new(File::open(&tar_path).unwrap());
        let (mut a, mut b) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
        loop {
            let n = ours.read(&mut a).unwrap();
            if n == 0 {
                assert_eq!(
                    theirs.read(&mut b).unwrap(),
                    0,
                    "the reference tar is longer"
                );
                break;
            }
            theirs.read_exact(&mut b[..n]).unwrap();
            assert!(
                a[..n] == b[..n],
                "the reference tar differs from helm-bulk's"
            );
        }
    }
    let gz_size = gz.len() as u64;
    drop(gz);

    // The measured runs.
    let t = Instant::now();
    let counted = helm_bulk_pipeline(&records, &index, &order, &protection, Counter(0));
    let ours = t.elapsed();

    let tar_q = tar_path.display().to_string();
    // Warm the page cache for the file (it was just written; make sure).
    shell(&format!("cat '{tar_q}' > /dev/null"));
    let pair = shell(&format!(
        "'{gzip_bin}' -6 -c '{tar_q}' | '{age_bin}' -r {recipient_str} > /dev/null"
    ));
    let gzip_alone = shell(&format!("'{gzip_bin}' -6 -c '{tar_q}' > /dev/null"));
    let age_alone = shell(&format!(
        "'{age_bin}' -r {recipient_str} < '{tar_q}' > /dev/null"
    ));

    // The decrypt side, for reference: read_snapshot verifies every record.
    let mut ct = Vec::with_capacity(counted.0 as usize + 4096);
    helm_bulk_pipeline(&records, &index, &order, &protection, &mut ct);
    let t = Instant::now();
    let opened = {
        let id_file = dir.path().join("id.txt");
        use age::secrecy::ExposeSecret;
        std::fs::write(&id_file, identity.to_string().expose_secret()).unwrap();
        helm_bulk::vault::open(io::Cursor::new(ct), &[id_file]).unwrap()
    };
    let mut seen = 0u64;
    helm_bulk::snapshot::read_snapshot(
        opened.reader,
        &helm_bulk::snapshot::Limits::default(),
        |_, _, data| {
            seen += data.len() as u64;
            Ok(())
        },
    )
    .unwrap();
    let read_time = t.elapsed();
    assert_eq!(seen, input);

    let ours_rate = mibs(input, ours);
    let pair_rate = mibs(input, pair);
    println!();
    println!(
        "input: {:.1} MiB of records, tar {:.1} MiB, gzip -6 output {:.1} MiB (ratio {:.2}x of records, {:.2}x of tar), age output {:.1} MiB",
        input as f64 / MIB,
        tar_size as f64 / MIB,
        gz_size as f64 / MIB,
        input as f64 / gz_size as f64,
        tar_size as f64 / gz_size as f64,
        counted.0 as f64 / MIB
    );
    println!("{:<52} {:>8} {:>10}", "pipeline", "seconds", "MiB/s");
    let line = |what: &str, d: Duration| {
        println!(
            "{what:<52} {:>8.2} {:>10.1}",
            d.as_secs_f64(),
            mibs(input, d)
        );
    };
    line("helm-bulk: SnapshotWriter -> vault::encrypt (X25519)", ours);
    line("reference: gzip -6 -c tar | age -r RECIPIENT", pair);
    line("  breakdown: helm-bulk tar+gzip only (no age)", plain_time);
    line("  breakdown: gzip -6 -c tar > /dev/null", gzip_alone);
    line("  breakdown: age -r RECIPIENT < tar > /dev/null", age_alone);
    line("  decrypt+verify: vault::open -> read_snapshot", read_time);
    println!();
    println!(
        "ratio helm-bulk / reference: {:.3} (target >= 0.9) -> {}",
        ours_rate / pair_rate,
        if ours_rate / pair_rate >= 0.9 {
            "MET"
        } else {
            "BELOW TARGET"
        }
    );
}
