{{- define "arbiter.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "arbiter.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "arbiter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "arbiter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "arbiter.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "arbiter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "arbiter.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The same endpoints for the workers and the migrate job; each brings its own DATABASE_URL (arbiter.databaseUrl). */}}
{{- define "arbiter.env" -}}
- name: KAFKA_BROKERS
  value: {{ .Values.kafka.brokers | quote }}
- name: SCHEMA_REGISTRY_URL
  value: {{ .Values.schemaRegistry.url | quote }}
- name: ARBITER_EXECUTOR_URL
  value: {{ .Values.executor.url | quote }}
{{- with .Values.kafka.sasl }}
{{- if .mechanism }}
- name: KAFKA_SASL_MECHANISM
  value: {{ .mechanism | quote }}
- name: KAFKA_SASL_USERNAME
  value: {{ required "kafka.sasl.username is needed with kafka.sasl.mechanism" .username | quote }}
{{ include "arbiter.secretEnv" (dict "name" "KAFKA_SASL_PASSWORD" "secret" .passwordSecret "missing" "kafka.sasl.passwordSecret.name is needed with kafka.sasl.mechanism") }}
{{- end }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
DATABASE_URL from an existing Secret, or in plain text. Takes a dict: existingSecret, url, and
missing (the message when neither is set).
*/}}
{{- define "arbiter.databaseUrl" -}}
- name: DATABASE_URL
{{- if .existingSecret.name }}
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret.name }}
      key: {{ .existingSecret.key }}
{{- else }}
  value: {{ required .missing .url | quote }}
{{- end }}
{{- end -}}

{{/* One environment variable from a key of an existing Secret. Takes a dict: name, secret ({name, key}), missing. */}}
{{- define "arbiter.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ required .missing .secret.name }}
      key: {{ .secret.key }}
{{- end -}}

{{/* The image runs as the `node` user; a numeric uid lets the kubelet verify runAsNonRoot. */}}
{{- define "arbiter.securityContext" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}
