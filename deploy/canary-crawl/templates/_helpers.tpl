{{- define "canary-crawl.name" -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{- define "canary-crawl.labels" -}}
app.kubernetes.io/name: canary-crawl
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "canary-crawl.dbSecret" -}}
{{- if .Values.database.existingSecret -}}
{{ .Values.database.existingSecret }}
{{- else -}}
{{ include "canary-crawl.name" . }}-db
{{- end -}}
{{- end -}}

{{- define "canary-crawl.env" -}}
- name: CANARY_DB
  valueFrom:
    secretKeyRef:
      name: {{ include "canary-crawl.dbSecret" . }}
      key: {{ .Values.database.key }}
- name: CANARY_CACHE_DIR
  value: /var/cache/canary
{{- if .Values.dockerConfigSecret }}
- name: DOCKER_CONFIG
  value: /etc/canary/docker
{{- end }}
{{- end -}}

{{- define "canary-crawl.volumeMounts" -}}
- name: cache
  mountPath: /var/cache/canary
- name: sources
  mountPath: /etc/canary/sources
{{- if .Values.dockerConfigSecret }}
- name: docker-config
  mountPath: /etc/canary/docker
  readOnly: true
{{- end }}
{{- end -}}

{{- define "canary-crawl.volumes" -}}
- name: cache
  emptyDir:
    sizeLimit: {{ .Values.workers.cacheSize }}
- name: sources
  configMap:
    name: {{ include "canary-crawl.name" . }}-sources
{{- if .Values.dockerConfigSecret }}
- name: docker-config
  secret:
    secretName: {{ .Values.dockerConfigSecret }}
{{- end }}
{{- end -}}
