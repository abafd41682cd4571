{{- define "ingest.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ingest.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ingest.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "ingest.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: gateway, sink, importer, topics. */}}
{{- define "ingest.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ingest.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "ingest.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "ingest.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ingest.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "ingest.secretName" -}}
{{- default (include "ingest.fullname" .) .Values.auth.existingSecret -}}
{{- end -}}

{{/* Rolls the pods when the registry, the schemas or the chart's Secret change. */}}
{{- define "ingest.checksums" -}}
checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
checksum/secret: {{ include (print $.Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end -}}

{{/* Every program's environment: Kafka, the store, the registry, logs. */}}
{{- define "ingest.env" -}}
- name: KAFKA_BOOTSTRAP_SERVERS
  value: {{ .Values.kafka.bootstrapServers | quote }}
- name: JOBS_TOPIC
  value: {{ .Values.kafka.jobsTopic | quote }}
{{- range $property, $value := .Values.kafka.config }}
- name: LIBRDKAFKA_{{ $property | upper | replace "." "_" }}
  value: {{ $value | toString | quote }}
{{- end }}
- name: LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
- name: TOPICS_FILE
  value: /app/topics.yaml
- name: UPLOAD_DIR
  value: /data/uploads
{{- with .Values.uploads.s3 }}
{{- if .url }}
- name: BLOB_STORE_URL
  value: {{ .url | quote }}
{{- with .endpoint }}
- name: AWS_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
{{- with .region }}
- name: AWS_REGION
  value: {{ . | quote }}
{{- end }}
{{- with .existingSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef: {name: {{ . }}, key: AWS_ACCESS_KEY_ID}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef: {name: {{ . }}, key: AWS_SECRET_ACCESS_KEY}
{{- end }}
{{- end }}
{{- end }}
{{- if or .Values.store.url .Values.store.existingSecret }}
- name: STORE_URL
  valueFrom:
    secretKeyRef:
      name: {{ default (include "ingest.fullname" .) .Values.store.existingSecret }}
      key: {{ if .Values.store.existingSecret }}{{ .Values.store.existingSecretKey }}{{ else }}store-url{{ end }}
{{- end }}
{{- end -}}

{{- define "ingest.securityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The registry's files over the image's, the uploads, and a writable /tmp. */}}
{{/* The Secret of LIBRDKAFKA_* variables (SASL passwords), for a container's envFrom. */}}
{{- define "ingest.envFrom" -}}
{{- with .Values.kafka.existingSecret }}
envFrom:
  - secretRef:
      name: {{ . }}
{{- end }}
{{- end -}}

{{- define "ingest.volumeMounts" -}}
{{- if .Values.kafka.tlsSecret }}
- name: kafka-tls
  mountPath: /etc/kafka/tls
  readOnly: true
{{- end }}
- name: uploads
  mountPath: /data
- name: tmp
  mountPath: /tmp
{{- if .Values.registry.topicsYaml }}
- name: registry
  mountPath: /app/topics.yaml
  subPath: topics.yaml
  readOnly: true
{{- end }}
{{- range $path, $_ := .Values.registry.schemas }}
- name: registry
  mountPath: /app/schemas/{{ $path }}
  subPath: {{ printf "schema-%s" ($path | replace "/" "__") }}
  readOnly: true
{{- end }}
{{- end -}}

{{- define "ingest.volumes" -}}
{{- with .Values.kafka.tlsSecret }}
- name: kafka-tls
  secret:
    secretName: {{ . }}
{{- end }}
- name: uploads
{{- if .Values.uploads.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ .Values.uploads.existingClaim }}
{{- else }}
  emptyDir: {}
{{- end }}
- name: tmp
  emptyDir: {}
- name: registry
  configMap:
    name: {{ include "ingest.fullname" . }}
{{- end -}}
