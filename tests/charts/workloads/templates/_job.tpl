{{- /* A hook Job: name suffix, hook kinds, weight, whether its Pod fails. */ -}}
{{- define "workloads.hookJob" -}}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .root.Release.Name }}-{{ .suffix }}
  labels:
    app.kubernetes.io/instance: {{ .root.Release.Name }}
    app.kubernetes.io/component: {{ .suffix }}
  annotations:
    helm.sh/hook: {{ .hook }}
    helm.sh/hook-weight: {{ .weight | quote }}
    helm.sh/hook-delete-policy: {{ .root.Values.hookDeletePolicy }}
spec:
  backoffLimit: 0
  template:
    metadata:
      labels:
        app.kubernetes.io/instance: {{ .root.Release.Name }}
        app.kubernetes.io/component: {{ .suffix }}
        {{- if .fail }}
        helm-bulk.testenv/fail: "true"
        {{- end }}
      annotations:
        helm-bulk.testenv/delay: {{ .root.Values.hookDelay | quote }}
    spec:
      restartPolicy: Never
      containers:
        - name: task
          image: {{ .root.Values.image }}
          command: ["/bin/migrate", "--step", {{ .suffix | quote }}]
{{- end -}}
