{{/* The controller's image (and every injected sidecar's). */}}
{{- define "smc.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The controller's Service name in the release namespace, as sidecars and the API server reach it. */}}
{{- define "smc.service" -}}
smc-controller.{{ .Release.Namespace }}.svc
{{- end -}}
