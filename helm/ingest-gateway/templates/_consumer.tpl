{{/* A consumer program's Deployment (the sink, the import worker): its probes and metrics port.
     Arguments: root, component, command, portEnv, instanceEnv, values (the component's values).
     The pod's name is its static group membership id: a container restarted after a crash gets its
     partitions back at once instead of after the session timeout. */}}
{{- define "ingest.consumer" -}}
{{- $root := .root -}}
{{- $v := .values -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "ingest.fullname" $root }}-{{ .component }}
  labels:
    {{- include "ingest.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  replicas: {{ $v.replicas }}
  selector:
    matchLabels:
      {{- include "ingest.selectorLabels" (dict "root" $root "component" .component) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "ingest.selectorLabels" (dict "root" $root "component" .component) | nindent 8 }}
      annotations:
        {{- include "ingest.checksums" $root | nindent 8 }}
    spec:
      serviceAccountName: {{ include "ingest.serviceAccountName" $root }}
      automountServiceAccountToken: false
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      # The batch in flight is finished and its offsets committed on SIGTERM.
      terminationGracePeriodSeconds: 60
      securityContext:
        fsGroup: 10001
      containers:
        - name: {{ .component }}
          image: {{ include "ingest.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: [{{ .command | quote }}]
          ports:
            - name: metrics
              containerPort: {{ $v.port }}
          {{- include "ingest.envFrom" $root | nindent 10 }}
          env:
            {{- include "ingest.env" $root | nindent 12 }}
            - name: {{ .portEnv }}
              value: {{ $v.port | quote }}
            - name: DLQ_TOPIC
              value: {{ $root.Values.kafka.dlqTopic | quote }}
            - name: {{ .instanceEnv }}
              valueFrom:
                fieldRef: {fieldPath: metadata.name}
            {{- range $name, $value := $v.env }}
            - name: {{ $name }}
              value: {{ $value | quote }}
            {{- end }}
          startupProbe:
            httpGet: {path: /health, port: metrics}
            periodSeconds: 2
            failureThreshold: 30
          livenessProbe:
            httpGet: {path: /health, port: metrics}
            periodSeconds: 10
          readinessProbe:
            httpGet: {path: /ready, port: metrics}
            periodSeconds: 5
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- include "ingest.securityContext" $root | nindent 12 }}
          volumeMounts:
            {{- include "ingest.volumeMounts" $root | nindent 12 }}
      volumes:
        {{- include "ingest.volumes" $root | nindent 8 }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}
