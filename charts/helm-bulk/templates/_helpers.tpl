{{/* The chart's name, shortened for Kubernetes names. */}}
{{- define "helm-bulk.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The name of the release's objects. */}}
{{- define "helm-bulk.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "helm-bulk.labels" -}}
app.kubernetes.io/name: {{ include "helm-bulk.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "helm-bulk.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "helm-bulk.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "helm-bulk.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The resource Helm keeps its release records in, for the chosen driver. */}}
{{- define "helm-bulk.recordResource" -}}
{{- if eq .Values.helm.driver "secret" -}}secrets
{{- else if eq .Values.helm.driver "configmap" -}}configmaps
{{- else -}}{{ fail (printf "helm.driver must be secret or configmap, not %q" .Values.helm.driver) }}
{{- end -}}
{{- end -}}

{{/* Checks the required values once, with messages that say what to set. */}}
{{- define "helm-bulk.validate" -}}
{{- if not .Values.bucket.url -}}{{ fail "bucket.url is required: s3://bucket/prefix, gs://bucket/prefix or az://container/prefix" }}{{- end -}}
{{- if not (regexMatch "^(s3|gs|az)://[^/]+" .Values.bucket.url) -}}{{ fail (printf "bucket.url must be an s3://, gs:// or az:// URL, not %q" .Values.bucket.url) }}{{- end -}}
{{- if not .Values.clusterName -}}{{ fail "clusterName is required: the cluster's name in snapshot keys" }}{{- end -}}
{{- if not (regexMatch "^[A-Za-z0-9][A-Za-z0-9._-]*$" .Values.clusterName) -}}{{ fail (printf "clusterName %q may only hold letters, digits, '.', '_' and '-'" .Values.clusterName) }}{{- end -}}
{{- if and (not .Values.recipients) (not .Values.recipientsConfigMap.name) -}}{{ fail "recipients (or recipientsConfigMap.name) is required: snapshots are always encrypted" }}{{- end -}}
{{- if not (has (toString .Values.helm.version) (list "3" "4")) -}}{{ fail (printf "helm.version must be 3 or 4, not %v" .Values.helm.version) }}{{- end -}}
{{- end -}}

{{/* The arguments of `helm-bulk save` for one namespace ("" = all). */}}
{{- define "helm-bulk.saveArgs" -}}
{{- $v := .root.Values -}}
- save
- --to
- {{ $v.bucket.url | quote }}
{{- with $v.bucket.endpoint }}
- --endpoint
- {{ . | quote }}
{{- end }}
- --cluster-name
- {{ if .namespace }}{{ printf "%s.%s" $v.clusterName .namespace | quote }}{{ else }}{{ $v.clusterName | quote }}{{ end }}
- --source
- {{ printf "helm%v" $v.helm.version | quote }}
- --driver
- {{ $v.helm.driver | quote }}
{{- if .namespace }}
- --namespace
- {{ .namespace | quote }}
{{- else }}
- --all-namespaces
{{- end }}
- --recipients-file
- /etc/helm-bulk/recipients/{{ ternary "recipients.txt" $v.recipientsConfigMap.key (not (empty $v.recipients)) }}
{{- if $v.signing.existingSecret }}
- --sign-key
- /etc/helm-bulk/signing/{{ $v.signing.key }}
{{- end }}
{{- range $v.include }}
- --include
- {{ . | quote }}
{{- end }}
{{- range $v.exclude }}
- --exclude
- {{ . | quote }}
{{- end }}
{{- if not (kindIs "invalid" $v.history) }}
- --history
- {{ $v.history | quote }}
{{- end }}
{{- end -}}

{{/* One helm-bulk container (without its name): image, args, environment,
     mounts and a restricted security context. */}}
{{- define "helm-bulk.container" -}}
{{- $v := .root.Values -}}
image: {{ include "helm-bulk.image" .root | quote }}
imagePullPolicy: {{ $v.image.pullPolicy }}
args:
  {{- .args | nindent 2 }}
env:
  - name: HOME
    value: /tmp
  # No configuration file: everything is in the arguments.
  - name: HELM_CONFIG_HOME
    value: /tmp/helm
  {{- if $v.credentials.awsRoleArn }}
  - name: AWS_ROLE_ARN
    value: {{ $v.credentials.awsRoleArn | quote }}
  - name: AWS_WEB_IDENTITY_TOKEN_FILE
    value: /var/run/secrets/sts.amazonaws.com/serviceaccount/token
  {{- end }}
  {{- with $v.credentials.awsRegion }}
  - name: AWS_REGION
    value: {{ . | quote }}
  {{- end }}
  {{- with $v.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with $v.credentials.existingSecret }}
envFrom:
  - secretRef:
      name: {{ . }}
{{- end }}
volumeMounts:
  - name: tmp
    mountPath: /tmp
  - name: recipients
    mountPath: /etc/helm-bulk/recipients
    readOnly: true
  {{- if $v.signing.existingSecret }}
  - name: signing
    mountPath: /etc/helm-bulk/signing
    readOnly: true
  {{- end }}
  {{- if $v.credentials.awsRoleArn }}
  - name: aws-token
    mountPath: /var/run/secrets/sts.amazonaws.com/serviceaccount
    readOnly: true
  {{- end }}
resources:
  {{- toYaml $v.resources | nindent 2 }}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  runAsNonRoot: true
  capabilities:
    drop: ["ALL"]
  seccompProfile:
    type: RuntimeDefault
{{- end -}}
