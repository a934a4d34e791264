#!/usr/bin/env python3
"""Generate Helm 3/4 release Secrets for the benchmarks, as `kubectl create -f` List files.

usage:
  gen_releases.py realistic OUTDIR --start S --count N [--revisions 3] [--namespaces 5] [--chunk 50] [--seed 1]
  gen_releases.py big       OUTDIR --start S --count N [--kib 740] [--namespace bulk-big] [--chunk 20]
  gen_releases.py shared    OUTDIR --start S --count N [--revisions 3] [--namespaces 5] [--charts 3] [--chunk 20] [--seed 1]

Each Secret is what Helm's secret driver writes: type helm.sh/release.v1, labels
owner=helm, name, status, version (and modifiedAt), and data.release =
base64(gzip(release JSON)) (which the Kubernetes API then base64-encodes once
more as a Secret's data).

realistic: N releases x R revisions in namespaces bench-0..bench-K-1. Revisions
  1..R-1 are superseded, R is deployed. Each release has its own chart (the
  chart's templates, README and default values are stored in every revision,
  as Helm does), a rendered manifest of 20-40 KiB with random names, checksums,
  image digests and secrets, a hook, notes and user values. Helm gzips with
  BestCompression, as here (level 9).
shared: N releases x R revisions of a few (--charts, default 3) shared charts,
  the shape of a platform cluster that installs the same public charts in many
  namespaces (issue 17). The charts are modelled on public ones: a monitoring
  stack (about 110 templates, 12 dashboards of 20-40 KiB JSON in files/, two
  CRDs in crds/, 40 KiB of default values, a schema), a database (about 35
  templates, a 25 KiB README, 30 KiB of values, a 12 KiB schema) and an ingress
  controller (about 55 templates, 20 KiB of values). Release i uses chart
  i mod C and namespace i mod K. Each release has its own rendered manifest
  (40-160 KiB: its names, checksums, image digests and secrets), user values
  and notes; an upgrade changes the values (and so the manifest) of one
  revision in two, and leaves them as they were otherwise (a no-op upgrade,
  or one that only changed the chart's defaults), as `helm upgrade
  --reuse-values` of an unchanged chart does.
big: N single-revision releases whose values hold KIB KiB of base64 of random
  bytes: gzip cannot shrink the payload, so each Secret is close to the 1 MiB
  limit and each snapshot entry stays about as large (tests/buckets.rs's
  big_release, made larger).

Writes OUTDIR/sSTART-NNNN.json (CHUNK Secrets each) and prints one JSON line of totals
(secrets, record bytes, Secret payload bytes) to stdout. Deterministic for a seed.
"""
import argparse
import base64
import gzip
import json
import os
import random
import sys

WORDS = ("app api server worker cache redis postgres gateway proxy web frontend backend metrics "
         "exporter operator controller webhook ingress monitor alert queue kafka search grafana "
         "prometheus loki auth keycloak vault consul minio storage backup cron scheduler sync relay "
         "billing payments orders catalog inventory users profile session notifier mailer report "
         "analytics pipeline runner agent collector index ledger audit policy registry nginx envoy").split()
PROSE = ("the a of to and for is this when enable disable number replicas deployment pod container "
         "resources limits requests memory cpu port service account annotations labels selector node "
         "affinity tolerations security context image pull policy tag repository override name chart "
         "default value values configure optional required create existing secret volume mount path "
         "storage class size persistence ingress host tls probe liveness readiness timeout seconds").split()
KEYS = ("enabled replicaCount image repository tag pullPolicy nameOverride fullnameOverride serviceAccount "
        "create annotations name podAnnotations podLabels securityContext runAsUser fsGroup service type "
        "port targetPort ingress className hosts host paths path tls secretName resources limits requests "
        "cpu memory autoscaling minReplicas maxReplicas nodeSelector tolerations affinity persistence "
        "storageClass size metrics interval extraEnv extraArgs livenessProbe readinessProbe config "
        "logLevel database username password auth cluster url endpoint region bucket retention schedule").split()
KINDS = ("Deployment Service ConfigMap Secret ServiceAccount Ingress StatefulSet Role RoleBinding "
         "HorizontalPodAutoscaler PodDisruptionBudget CronJob NetworkPolicy").split()
API = {"Deployment": "apps/v1", "StatefulSet": "apps/v1", "Ingress": "networking.k8s.io/v1",
       "NetworkPolicy": "networking.k8s.io/v1", "Role": "rbac.authorization.k8s.io/v1",
       "RoleBinding": "rbac.authorization.k8s.io/v1", "CronJob": "batch/v1",
       "HorizontalPodAutoscaler": "autoscaling/v2", "PodDisruptionBudget": "policy/v1"}
ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)

    def pick(self, seq):
        return seq[self.r.randrange(len(seq))]

    def prose(self, lo, hi):
        return " ".join(self.pick(PROSE) for _ in range(self.r.randint(lo, hi)))

    def hex(self, n):
        return "%0*x" % (n, self.r.getrandbits(4 * n))

    def alnum(self, lo, hi):
        return "".join(self.pick(ALNUM) for _ in range(self.r.randint(lo, hi)))

    def value(self, depth):
        k = self.r.randrange(7 if depth == 0 else 10)
        if k == 0:
            return self.r.random() < 0.5
        if k == 1:
            return self.r.randrange(65536)
        if k == 2:
            return "%s-%s" % (self.pick(WORDS), self.pick(WORDS))
        if k == 3:
            return self.prose(3, 12)
        if k == 4:
            return "%s.example.com/%s/%s" % (self.pick(WORDS), self.pick(WORDS), self.pick(WORDS))
        if k == 5:
            return "%dMi" % (64 << self.r.randrange(6))
        if k == 6:
            return ["--%s=%s" % (self.pick(KEYS), self.pick(WORDS)) for _ in range(self.r.randint(1, 4))]
        return self.obj(depth - 1, 2, 6)

    def obj(self, depth, lo, hi):
        return {self.pick(KEYS): self.value(depth) for _ in range(self.r.randint(lo, hi))}

    def yaml(self, v, indent, out):
        for k, x in v.items():
            if isinstance(x, dict):
                out.append("%s%s:\n" % ("  " * indent, k))
                self.yaml(x, indent + 1, out)
            else:
                out.append("%s%s: %s\n" % ("  " * indent, k, json.dumps(x)))

    def doc(self, kind, release, chart, version, rendered):
        name = "%s-%s" % (release, chart) if rendered else '{{ include "%s.fullname" . }}' % chart
        if rendered:
            labels = ("    helm.sh/chart: %s-%s\n    app.kubernetes.io/name: %s\n    app.kubernetes.io/instance: %s\n"
                      "    app.kubernetes.io/managed-by: Helm\n" % (chart, version, chart, release))
        else:
            labels = '    {{- include "%s.labels" . | nindent 4 }}\n' % chart
        s = ["apiVersion: %s\nkind: %s\nmetadata:\n  name: %s\n  labels:\n%s" % (API.get(kind, "v1"), kind, name, labels)]
        if kind == "Secret":
            s.append("type: Opaque\ndata:\n")
            for _ in range(self.r.randint(2, 8)):
                key = self.pick(KEYS)
                if rendered:
                    s.append("  %s: %s\n" % (key, base64.b64encode(self.alnum(16, 48).encode()).decode()))
                else:
                    s.append("  %s: {{ .Values.auth.%s | default (randAlphaNum 32) | b64enc | quote }}\n" % (key, key))
        elif kind == "ConfigMap":
            s.append("data:\n")
            for _ in range(self.r.randint(2, 10)):
                s.append("  %s.conf: |\n" % self.pick(KEYS))
                for _ in range(self.r.randint(3, 30)):
                    if rendered:
                        v = self.hex(16) if self.r.random() < 0.12 else self.prose(1, 6)
                        s.append("    %s = %s\n" % (self.pick(KEYS), v))
                    else:
                        s.append("    %s = {{ .Values.config.%s | quote }}\n" % (self.pick(KEYS), self.pick(KEYS)))
        elif kind in ("Deployment", "StatefulSet", "CronJob"):
            checksum = self.hex(64) if rendered else '{{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}'
            image = ("registry.example.com/%s/%s@sha256:%s" % (self.pick(WORDS), self.pick(WORDS), self.hex(64))
                     if rendered else '"{{ .Values.image.repository }}:{{ .Values.image.tag }}"')
            s.append("spec:\n  replicas: %d\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: %s\n"
                     "  template:\n    metadata:\n      annotations:\n        checksum/config: %s\n    spec:\n"
                     "      serviceAccountName: %s\n      securityContext:\n        runAsNonRoot: true\n"
                     "        runAsUser: %d\n      containers:\n"
                     % (self.r.randint(1, 5), chart, checksum, name, self.r.randint(1000, 65000)))
            for c in range(self.r.randint(1, 3)):
                s.append("        - name: %s-%d\n          image: %s\n          imagePullPolicy: IfNotPresent\n          args:\n"
                         % (self.pick(WORDS), c, image))
                for _ in range(self.r.randint(2, 10)):
                    s.append("            - --%s=%s\n" % (self.pick(KEYS), self.pick(WORDS)))
                s.append("          env:\n")
                for _ in range(self.r.randint(2, 14)):
                    key = self.pick(KEYS).upper()
                    if rendered:
                        s.append("            - name: %s\n              value: %s\n" % (key, json.dumps(self.prose(1, 4))))
                    else:
                        s.append("            - name: %s\n              value: {{ .Values.env.%s | quote }}\n" % (key, self.pick(KEYS)))
                s.append("          ports:\n            - name: http\n              containerPort: %d\n"
                         "          resources:\n            limits:\n              cpu: %dm\n              memory: %dMi\n"
                         % (self.r.randint(1024, 9999), self.r.randint(1, 40) * 50, 64 << self.r.randrange(6)))
        elif kind == "Role":
            s.append("rules:\n")
            for _ in range(self.r.randint(2, 12)):
                s.append('  - apiGroups: ["%s"]\n    resources: ["%ss"]\n    verbs: ["get", "list", "watch"]\n'
                         % ("" if self.r.random() < 0.5 else "apps", self.pick(WORDS)))
        else:
            s.append("spec:\n")
            self.yaml(self.obj(2, 3, 8), 1, s)
        return "".join(s)

    def chart(self, i):
        name = "%s-%d" % (self.pick(WORDS), i)
        version = "%d.%d.%d" % (self.r.randrange(20), self.r.randrange(40), self.r.randrange(10))
        kinds = [self.pick(KINDS) for _ in range(self.r.randint(6, 16))]
        templates = []
        for t, kind in enumerate(kinds):
            text = self.doc(kind, None, name, version, False)
            templates.append({"name": "templates/%s-%d.yaml" % (kind.lower(), t),
                              "data": base64.b64encode(text.encode()).decode()})
        helpers = "".join('{{/*\n%s\n*/}}\n{{- define "%s.%s" -}}\n{{- default .Chart.Name .Values.nameOverride | trunc 63 }}\n{{- end }}\n\n'
                          % (self.prose(6, 20), name, d) for d in ("name", "fullname", "chart", "labels", "selectorLabels"))
        templates.append({"name": "templates/_helpers.tpl", "data": base64.b64encode(helpers.encode()).decode()})
        readme = "# %s\n\n%s\n" % (name, self.prose(100, 800))
        return {
            "metadata": {"name": name, "version": version, "description": self.prose(5, 20), "apiVersion": "v2",
                         "appVersion": "%d.%d.%d" % (self.r.randrange(5), self.r.randrange(30), self.r.randrange(20)),
                         "type": "application"},
            "lock": None,
            "templates": templates,
            "values": self.obj(3, 10, 30),
            "schema": None,
            "files": [{"name": ".helmignore", "data": base64.b64encode(b".git/\n*.swp\n*.bak\n").decode()},
                      {"name": "README.md", "data": base64.b64encode(readme.encode()).decode()}],
        }, kinds

    def manifest(self, release, chart, kinds):
        target = self.r.randint(20 * 1024, 40 * 1024)
        docs, size, t = [], 0, 0
        while size < target:
            kind = kinds[t % len(kinds)]
            d = "---\n# Source: %s/templates/%s-%d.yaml\n%s" % (
                chart["metadata"]["name"], kind.lower(), t,
                self.doc(kind, release, chart["metadata"]["name"], chart["metadata"]["version"], True))
            docs.append(d)
            size += len(d)
            t += 1
        return "".join(docs)


def stamp(g, day):
    return "2026-%02d-%02dT%02d:%02d:%02d.%06dZ" % (1 + day // 28, 1 + day % 28, g.r.randrange(24),
                                                     g.r.randrange(60), g.r.randrange(60), g.r.randrange(10**6))


def secret(ns, name, rev, status, record):
    payload = base64.b64encode(gzip.compress(record, compresslevel=9))
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
        "metadata": {"name": "sh.helm.release.v1.%s.v%d" % (name, rev), "namespace": ns,
                     "labels": {"owner": "helm", "name": name, "status": status, "version": str(rev),
                                "modifiedAt": "1767225600"}},
        "data": {"release": base64.b64encode(payload).decode()},
    }, len(payload)


def realistic(a):
    g = Gen(a.seed * 1000003 + a.start)
    for i in range(a.start, a.start + a.count):
        ns = "bench-%d" % (i % a.namespaces)
        chart, kinds = g.chart(i)
        name = "%s-%d" % (g.pick(WORDS), i)
        day0 = g.r.randrange(200)
        for rev in range(1, a.revisions + 1):
            status = "deployed" if rev == a.revisions else "superseded"
            config = g.obj(2, 3, 12)
            rec = {
                "name": name,
                "info": {"first_deployed": stamp(g, day0), "last_deployed": stamp(g, day0 + rev),
                         "deleted": "", "description": "Install complete" if rev == 1 else "Upgrade complete",
                         "status": status,
                         "notes": "1. Get the application URL by running these commands:\n  %s\n" % g.prose(20, 60)},
                "chart": chart,
                "config": config,
                "manifest": g.manifest(name, chart, kinds),
                "hooks": [{"name": "%s-%s-pre-install" % (name, chart["metadata"]["name"]), "kind": "ConfigMap",
                           "path": "%s/templates/hook.yaml" % chart["metadata"]["name"],
                           "manifest": g.doc("ConfigMap", name, chart["metadata"]["name"], chart["metadata"]["version"], True),
                           "events": ["pre-install", "pre-upgrade"],
                           "last_run": {"started_at": "", "completed_at": "", "phase": ""},
                           "weight": 0, "delete_policies": ["before-hook-creation"]}],
                "version": rev,
                "namespace": ns,
            }
            yield ns, name, rev, status, json.dumps(rec, separators=(",", ":")).encode()


SHARED_SHAPES = (
    # name, templates, files (name, KiB), values KiB, schema KiB, manifest KiB range
    ("kube-monitoring", 110, [("dashboards/%02d-overview.json" % i, 20 + 2 * i) for i in range(12)]
     + [("crds/crd-alertmanagers.yaml", 180), ("crds/crd-prometheuses.yaml", 240), ("README.md", 18)], 40, 6, (80, 160)),
    ("postgresql", 35, [("README.md", 25), (".helmignore", 0)], 30, 12, (40, 70)),
    ("ingress-controller", 55, [("README.md", 15), ("ci/default-values.yaml", 3)], 20, 0, (40, 90)),
)


def shared_chart(g, shape):
    name, ntemplates, files, values_kib, schema_kib, _ = shape
    version = "%d.%d.%d" % (g.r.randrange(60), g.r.randrange(30), g.r.randrange(10))
    kinds = [g.pick(KINDS) for _ in range(ntemplates)]
    templates = []
    for t, kind in enumerate(kinds):
        text = g.doc(kind, None, name, version, False)
        templates.append({"name": "templates/%s-%d.yaml" % (kind.lower(), t),
                          "data": base64.b64encode(text.encode()).decode()})
    helpers = "".join('{{/*\n%s\n*/}}\n{{- define "%s.%s" -}}\n{{- default .Chart.Name .Values.nameOverride | trunc 63 }}\n{{- end }}\n\n'
                      % (g.prose(6, 20), name, d) for d in ("name", "fullname", "chart", "labels", "selectorLabels"))
    templates.append({"name": "templates/_helpers.tpl", "data": base64.b64encode(helpers.encode()).decode()})
    out_files = []
    for fname, kib in files:
        if fname.endswith(".json"):
            panels = []
            while len(json.dumps(panels)) < kib * 1024:
                panels.append({"id": len(panels), "title": g.prose(2, 5), "type": g.pick(("graph", "stat", "table")),
                               "targets": [{"expr": "sum(rate(%s_%s_total{job=\"$job\"}[5m])) by (%s)"
                                            % (g.pick(WORDS), g.pick(WORDS), g.pick(KEYS))}],
                               "gridPos": {"h": 8, "w": 12, "x": 0, "y": len(panels) * 8}})
            text = json.dumps({"title": fname, "panels": panels}, indent=2)
        elif fname.endswith(".md") or fname.endswith(".yaml") and fname.startswith("ci/"):
            text = "# %s\n\n%s\n" % (fname, "\n\n".join(g.prose(20, 60) for _ in range(kib * 1024 // 250)))
        elif fname.startswith("crds/"):
            lines = ["apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: %s\n"
                     "spec:\n  group: monitoring.example.com\n  versions:\n    - name: v1\n      schema:\n"
                     "        openAPIV3Schema:\n          properties:\n" % fname]
            size = len(lines[0])
            while size < kib * 1024:
                line = "            %s:\n              description: %s\n              type: string\n" % (g.pick(KEYS) + str(size), g.prose(8, 30))
                lines.append(line)
                size += len(line)
            text = "".join(lines)
        else:
            text = ".git/\n*.swp\n*.bak\n"
        out_files.append({"name": fname, "data": base64.b64encode(text.encode()).decode()})
    values = {}
    while len(json.dumps(values)) < values_kib * 1024:
        values.update(g.obj(3, 5, 10))
        values["section%d" % len(values)] = g.obj(3, 5, 12)
    schema = None
    if schema_kib:
        props = {}
        while len(json.dumps(props)) < schema_kib * 1024:
            props["%s%d" % (g.pick(KEYS), len(props))] = {"type": g.pick(("string", "integer", "boolean")),
                                                          "description": g.prose(5, 20)}
        schema = base64.b64encode(json.dumps({"$schema": "http://json-schema.org/draft-07/schema#",
                                              "type": "object", "properties": props}).encode()).decode()
    return {
        "metadata": {"name": name, "home": "https://example.com/charts/%s" % name, "version": version,
                     "description": g.prose(10, 25), "keywords": [g.pick(WORDS) for _ in range(6)],
                     "maintainers": [{"name": g.pick(WORDS), "email": "%s@example.com" % g.pick(WORDS)}],
                     "apiVersion": "v2", "appVersion": "%d.%d.%d" % (g.r.randrange(5), g.r.randrange(30), g.r.randrange(20)),
                     "annotations": {"category": g.pick(WORDS), "licenses": "Apache-2.0"}, "type": "application"},
        "lock": None,
        "templates": templates,
        "values": values,
        "schema": schema,
        "files": out_files,
    }, kinds


def shared(a):
    g = Gen(a.seed * 7907)
    charts = [shared_chart(g, SHARED_SHAPES[c % len(SHARED_SHAPES)]) + (SHARED_SHAPES[c % len(SHARED_SHAPES)],)
              for c in range(a.charts)]
    for i in range(a.start, a.start + a.count):
        g = Gen(a.seed * 1000003 + i)
        ns = "bench-%d" % (i % a.namespaces)
        chart, kinds, shape = charts[i % len(charts)]
        cname = chart["metadata"]["name"]
        name = "%s-%d" % (g.pick(WORDS), i)
        day0 = g.r.randrange(200)
        lo, hi = shape[5]

        def render():
            target = g.r.randint(lo * 1024, hi * 1024)
            docs, size, t = [], 0, 0
            while size < target:
                kind = kinds[t % len(kinds)]
                d = "---\n# Source: %s/templates/%s-%d.yaml\n%s" % (
                    cname, kind.lower(), t, g.doc(kind, name, cname, chart["metadata"]["version"], True))
                docs.append(d)
                size += len(d)
                t += 1
            return "".join(docs)

        config, manifest = g.obj(2, 3, 12), render()
        notes = "1. Get the application URL by running these commands:\n  %s\n" % g.prose(20, 60)
        for rev in range(1, a.revisions + 1):
            status = "deployed" if rev == a.revisions else "superseded"
            if rev > 1 and g.r.random() < 0.5:
                config, manifest = g.obj(2, 3, 12), render()
            rec = {
                "name": name,
                "info": {"first_deployed": stamp(g, day0), "last_deployed": stamp(g, day0 + rev),
                         "deleted": "", "description": "Install complete" if rev == 1 else "Upgrade complete",
                         "status": status, "notes": notes},
                "chart": chart,
                "config": config,
                "manifest": manifest,
                "hooks": [{"name": "%s-%s-pre-install" % (name, cname), "kind": "Job",
                           "path": "%s/templates/hook.yaml" % cname,
                           "manifest": g.doc("CronJob", name, cname, chart["metadata"]["version"], True),
                           "events": ["pre-install", "pre-upgrade"],
                           "last_run": {"started_at": stamp(g, day0 + rev), "completed_at": stamp(g, day0 + rev),
                                        "phase": "Succeeded"},
                           "weight": 0, "delete_policies": ["before-hook-creation"]}],
                "version": rev,
                "namespace": ns,
            }
            yield ns, name, rev, status, json.dumps(rec, separators=(",", ":")).encode()


def big(a):
    for i in range(a.start, a.start + a.count):
        name = "big%d" % i
        blob = base64.b64encode(random.Random(a.seed * 7919 + i).randbytes(a.kib * 1024)).decode()
        rec = {"name": name, "namespace": a.namespace, "version": 1,
               "info": {"status": "deployed", "last_deployed": "2026-01-01T00:00:00Z"},
               "chart": {"metadata": {"name": "big", "version": "1.0.0"}},
               "config": {"blob": blob}, "manifest": ""}
        yield a.namespace, name, 1, "deployed", json.dumps(rec, separators=(",", ":")).encode()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=("realistic", "big", "shared"))
    p.add_argument("outdir")
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--revisions", type=int, default=3)
    p.add_argument("--namespaces", type=int, default=5)
    p.add_argument("--namespace", default="bulk-big")
    p.add_argument("--kib", type=int, default=740)
    p.add_argument("--chunk", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--charts", type=int, default=3)
    a = p.parse_args()
    chunk = a.chunk or (50 if a.mode == "realistic" else 20)
    gen = {"realistic": realistic, "big": big, "shared": shared}[a.mode]
    os.makedirs(a.outdir, exist_ok=True)
    items, n, files, rec_bytes, payload_bytes = [], 0, 0, 0, 0

    def flush():
        nonlocal items, files
        if items:
            with open(os.path.join(a.outdir, "s%07d-%04d.json" % (a.start, files)), "w") as f:
                json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f)
            files += 1
            items = []

    for ns, name, rev, status, record in gen(a):
        s, plen = secret(ns, name, rev, status, record)
        items.append(s)
        n += 1
        rec_bytes += len(record)
        payload_bytes += plen
        if len(items) >= chunk:
            flush()
    flush()
    print(json.dumps({"secrets": n, "files": files, "record_bytes": rec_bytes, "payload_bytes": payload_bytes,
                      "avg_record_kib": round(rec_bytes / max(n, 1) / 1024, 1),
                      "avg_payload_kib": round(payload_bytes / max(n, 1) / 1024, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
