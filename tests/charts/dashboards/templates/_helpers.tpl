{{- define "dashboards.fullname" -}}
{{ .Release.Name }}-grafana
{{- end -}}
