{{/* Names, labels and the parts every Driftline container shares. */}}

{{- define "driftline.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "driftline.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "driftline.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "driftline.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Reaching Kafka, with TLS and SASL: every component's, and every sidecar agent's. */}}
{{- define "driftline.kafkaEnv" -}}
- name: DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS
  value: {{ .Values.kafka.bootstrapServers | quote }}
- name: DRIFTLINE_TOPIC
  value: {{ .Values.kafka.topic | quote }}
- name: DRIFTLINE_KAFKA_SECURITY_PROTOCOL
  value: {{ .Values.kafka.securityProtocol | quote }}
- name: DRIFTLINE_KAFKA_SASL_MECHANISM
  value: {{ .Values.kafka.saslMechanism | quote }}
{{- if .Values.kafka.saslSecret }}
- name: DRIFTLINE_KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef: {name: {{ .Values.kafka.saslSecret | quote }}, key: {{ .Values.kafka.saslUsernameKey | quote }}}
- name: DRIFTLINE_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ .Values.kafka.saslSecret | quote }}, key: {{ .Values.kafka.saslPasswordKey | quote }}}
{{- end }}
{{- if .Values.kafka.caSecret }}
- name: DRIFTLINE_KAFKA_SSL_CA_FILE
  value: /etc/driftline/kafka-ca/{{ .Values.kafka.caKey }}
{{- end }}
{{- end -}}

{{/* Environment of every component: store, Kafka, the address people reach it at (for links
in alerts), settings. */}}
{{- define "driftline.env" -}}
- name: HOME
  value: /tmp
- name: DRIFTLINE_DATABASE_URL
  valueFrom:
    secretKeyRef: {name: {{ .Values.database.urlSecret | quote }}, key: {{ .Values.database.urlKey | quote }}}
{{ include "driftline.kafkaEnv" . }}
{{- with .Values.api.externalUrl }}
- name: DRIFTLINE_EXTERNAL_URL
  value: {{ . | quote }}
{{- end }}
- name: DRIFTLINE_MIGRATE_ON_START
  value: {{ not .Values.migrations.enabled | quote }}
- name: DRIFTLINE_SPOOL_DIR
  value: /var/lib/driftline/spool/agent
- name: DRIFTLINE_DETECT_SPOOL_DIR
  value: /var/lib/driftline/spool/detector
- name: DRIFTLINE_ROUTER_SPOOL_DIR
  value: /var/lib/driftline/spool/router
{{- if .Values.alerting }}
- name: DRIFTLINE_ALERTING_CONFIG
  value: /etc/driftline/alerting/alerting.yaml
{{- end }}
{{- range $name, $value := .Values.settings }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{- define "driftline.mounts" -}}
- {name: tmp, mountPath: /tmp}
- {name: spool, mountPath: /var/lib/driftline/spool}
{{- if .Values.kafka.caSecret }}
- {name: kafka-ca, mountPath: /etc/driftline/kafka-ca, readOnly: true}
{{- end }}
{{- if .Values.alerting }}
- {name: alerting, mountPath: /etc/driftline/alerting, readOnly: true}
{{- end }}
{{- end -}}

{{- define "driftline.volumes" -}}
- name: tmp
  emptyDir: {}
- name: spool
  emptyDir: {}
{{- if .Values.kafka.caSecret }}
- name: kafka-ca
  secret: {secretName: {{ .Values.kafka.caSecret | quote }}}
{{- end }}
{{- if .Values.alerting }}
- name: alerting
  configMap: {name: {{ include "driftline.fullname" . }}-alerting}
{{- end }}
{{- end -}}

{{/* Provenance: a worker that signs ("sign": detector, router) gets the producer key, one
that checks ("trust": collector) its public key and any other trusted one, nothing more. */}}
{{- define "driftline.producerEnv" -}}
{{- $key := .root.Values.producerKey -}}
{{- if eq .producer "sign" }}
- name: DRIFTLINE_PRODUCER_KEY_FILE
  value: /etc/driftline/producer/{{ $key.key }}
{{- else if eq .producer "trust" }}
{{- $trusted := list (printf "/etc/driftline/producer/%s" $key.publicKey) }}
{{- if $key.trustedPublicKeysSecret }}
{{- $trusted = append $trusted "/etc/driftline/trusted-producers/previous.pem" }}
{{- end }}
- name: DRIFTLINE_TRUSTED_PRODUCER_KEYS
  value: {{ $trusted | toJson | quote }}
{{- end }}
{{- end -}}

{{- define "driftline.producerMounts" -}}
{{- if .producer }}
- {name: producer-key, mountPath: /etc/driftline/producer, readOnly: true}
{{- end }}
{{- if and (eq .producer "trust") .root.Values.producerKey.trustedPublicKeysSecret }}
- {name: trusted-producers, mountPath: /etc/driftline/trusted-producers, readOnly: true}
{{- end }}
{{- end -}}

{{- define "driftline.producerVolumes" -}}
{{- $key := .root.Values.producerKey -}}
{{- if .producer }}
- name: producer-key
  secret:
    secretName: {{ $key.secret | quote }}
    defaultMode: 0400
    items:
      {{- if eq .producer "sign" }}
      - {key: {{ $key.key | quote }}, path: {{ $key.key | quote }}}
      {{- else }}
      - {key: {{ $key.publicKey | quote }}, path: {{ $key.publicKey | quote }}}
      {{- end }}
{{- end }}
{{- if and (eq .producer "trust") $key.trustedPublicKeysSecret }}
- name: trusted-producers
  secret: {secretName: {{ $key.trustedPublicKeysSecret | quote }}}
{{- end }}
{{- end -}}

{{/* The checkpoint signing key: what signs ("sign": the housekeeper, an API with api.signs)
gets the private key, what only verifies ("verify": the API) its public key, nothing more; both
trust the earlier keys' public halves. */}}
{{- define "driftline.signingEnv" -}}
{{- $key := .root.Values.signingKey -}}
{{- if eq .signing "sign" }}
- name: DRIFTLINE_SIGNING_KEY_FILE
  value: /etc/driftline/keys/{{ $key.key }}
{{- end }}
{{- if .signing }}
- name: DRIFTLINE_SIGNING_PUBLIC_KEY_FILE
  value: /etc/driftline/keys/{{ $key.publicKey }}
{{- end }}
{{- if and .signing $key.trustedPublicKeysSecret }}
- name: DRIFTLINE_TRUSTED_PUBLIC_KEYS
  value: '["/etc/driftline/trusted/previous.pem"]'
{{- end }}
{{- end -}}

{{- define "driftline.signingMounts" -}}
{{- if .signing }}
- {name: signing-key, mountPath: /etc/driftline/keys, readOnly: true}
{{- end }}
{{- if and .signing .root.Values.signingKey.trustedPublicKeysSecret }}
- {name: trusted-keys, mountPath: /etc/driftline/trusted, readOnly: true}
{{- end }}
{{- end -}}

{{- define "driftline.signingVolumes" -}}
{{- $key := .root.Values.signingKey -}}
{{- if .signing }}
- name: signing-key
  secret:
    secretName: {{ $key.secret | quote }}
    defaultMode: 0400
    items:
      {{- if eq .signing "sign" }}
      - {key: {{ $key.key | quote }}, path: {{ $key.key | quote }}}
      {{- end }}
      - {key: {{ $key.publicKey | quote }}, path: {{ $key.publicKey | quote }}}
{{- end }}
{{- if and .signing $key.trustedPublicKeysSecret }}
- name: trusted-keys
  secret: {secretName: {{ $key.trustedPublicKeysSecret | quote }}}
{{- end }}
{{- end -}}

{{/* A worker (collector, detector, router, housekeeper): its command, probes on the health
port; with "metrics", a Service for Prometheus to find its pods' /metrics by. */}}
{{- define "driftline.worker" -}}
{{- $root := .root -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "driftline.fullname" $root }}-{{ .component }}
  labels:
    {{- include "driftline.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  {{- if not .autoscaled }}
  replicas: {{ .values.replicas }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "driftline.selector" (dict "root" $root "component" .component) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "driftline.labels" $root | nindent 8 }}
        app.kubernetes.io/component: {{ .component }}
      annotations:
        checksum/alerting: {{ toYaml $root.Values.alerting | sha256sum }}
    spec:
      # Kubernetes' service links (DRIFTLINE_API_PORT=tcp://... for the chart's own Service)
      # would collide with Driftline's settings.
      enableServiceLinks: false
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ .component }}
          image: {{ include "driftline.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args: [{{ .command | quote }}]
          env:
            {{- include "driftline.env" $root | nindent 12 }}
            - name: DRIFTLINE_HEALTH_HOST
              value: "0.0.0.0"
            - name: DRIFTLINE_HEALTH_PORT
              value: {{ $root.Values.healthPort | quote }}
            {{- range $name, $value := .extraEnv }}
            - name: {{ $name }}
              value: {{ $value | quote }}
            {{- end }}
            {{- include "driftline.producerEnv" (dict "root" $root "producer" (.producer | default "")) | nindent 12 }}
            {{- include "driftline.signingEnv" (dict "root" $root "signing" (.signing | default "")) | nindent 12 }}
          ports:
            - {name: health, containerPort: {{ $root.Values.healthPort }}}
          livenessProbe:
            httpGet: {path: /healthz, port: health}
            initialDelaySeconds: 20
            periodSeconds: 15
            failureThreshold: 4
          readinessProbe:
            httpGet: {path: /readyz, port: health}
            periodSeconds: 10
          resources:
            {{- toYaml .values.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            {{- include "driftline.mounts" $root | nindent 12 }}
            {{- include "driftline.producerMounts" (dict "root" $root "producer" (.producer | default "")) | nindent 12 }}
            {{- include "driftline.signingMounts" (dict "root" $root "signing" (.signing | default "")) | nindent 12 }}
      volumes:
        {{- include "driftline.volumes" $root | nindent 8 }}
        {{- include "driftline.producerVolumes" (dict "root" $root "producer" (.producer | default "")) | nindent 8 }}
        {{- include "driftline.signingVolumes" (dict "root" $root "signing" (.signing | default "")) | nindent 8 }}
      {{- with $root.Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "driftline.fullname" $root }}-{{ .component }}
  labels:
    {{- include "driftline.labels" $root | nindent 4 }}
spec:
  minAvailable: {{ .values.podDisruptionBudget.minAvailable }}
  selector:
    matchLabels:
      {{- include "driftline.selector" (dict "root" $root "component" .component) | nindent 6 }}
{{- if .metrics }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ include "driftline.fullname" $root }}-{{ .component }}
  labels:
    {{- include "driftline.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  # Headless: nothing is balanced over a worker's pods; Prometheus scrapes each one, also one
  # that is not ready (its database failing, say), whose metrics then matter most.
  clusterIP: None
  publishNotReadyAddresses: true
  selector:
    {{- include "driftline.selector" (dict "root" $root "component" .component) | nindent 4 }}
  ports:
    - {name: metrics, port: {{ $root.Values.healthPort }}, targetPort: health}
{{- end }}
{{- end -}}
