{{/* Chart name, truncated to the 63 characters a label allows. */}}
{{- define "provisioner.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart unless the release name already contains the chart name. */}}
{{- define "provisioner.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "provisioner.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "provisioner.selectorLabels" -}}
app.kubernetes.io/name: {{ include "provisioner.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "provisioner.labels" -}}
helm.sh/chart: {{ include "provisioner.chart" . }}
{{ include "provisioner.selectorLabels" . }}
app.kubernetes.io/version: {{ (default .Chart.AppVersion .Values.image.tag) | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: provisioner
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "provisioner.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "provisioner.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "provisioner.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* Name of the metrics Service; Prometheus' job label when scraped by the ServiceMonitor. */}}
{{- define "provisioner.metricsServiceName" -}}
{{- printf "%s-metrics" (include "provisioner.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* PromQL label matchers selecting this release's series. */}}
{{- define "provisioner.promSelector" -}}
namespace="{{ .Release.Namespace }}", job="{{ include "provisioner.metricsServiceName" . }}"
{{- end }}

{{/*
Milliseconds of a Go duration made of integer h, m, s and ms parts (the schema allows only those),
e.g. "1m30s" -> 90000. Helm has no duration parser; this one is enough to compare two settings.
*/}}
{{- define "provisioner.durationMillis" -}}
{{- $total := 0 }}
{{- range regexFindAll "[0-9]+(ms|h|m|s)" . -1 }}
{{- $n := regexFind "^[0-9]+" . | int }}
{{- $unit := trimPrefix (regexFind "^[0-9]+" .) . }}
{{- if eq $unit "h" }}{{ $total = add $total (mul $n 3600000) }}
{{- else if eq $unit "m" }}{{ $total = add $total (mul $n 60000) }}
{{- else if eq $unit "s" }}{{ $total = add $total (mul $n 1000) }}
{{- else }}{{ $total = add $total $n }}
{{- end }}
{{- end }}
{{- $total }}
{{- end }}

{{/* Mount paths of the files the pod gets from Secrets. */}}
{{- define "provisioner.natsAuthDir" -}}/etc/provisioner/nats-auth{{- end }}
{{- define "provisioner.natsTLSDir" -}}/etc/provisioner/nats-tls{{- end }}
{{- define "provisioner.vaultTLSDir" -}}/etc/provisioner/vault-tls{{- end }}
{{- define "provisioner.fileSecretsDir" -}}/etc/provisioner/secrets{{- end }}

{{/* Whether the pod needs the Kubernetes API token (only for Vault's kubernetes auth). */}}
{{- define "provisioner.needsServiceAccountToken" -}}
{{- if and .Values.vault.enabled (eq .Values.vault.auth.method "kubernetes") }}true{{ else }}false{{ end }}
{{- end }}

{{/*
Cross-field checks the JSON schema cannot express. Every message names the value to fix.
*/}}
{{- define "provisioner.validate" -}}
{{- $v := .Values }}
{{- if and $v.autoscaling.hpa.enabled $v.autoscaling.keda.enabled }}
{{- fail "autoscaling.hpa.enabled and autoscaling.keda.enabled are both true: KEDA creates its own HorizontalPodAutoscaler, enable only one" }}
{{- end }}
{{- $grace := mul $v.terminationGracePeriodSeconds 1000 }}
{{- $shutdown := include "provisioner.durationMillis" $v.config.shutdownTimeout | int }}
{{- if le $grace $shutdown }}
{{- fail (printf "terminationGracePeriodSeconds (%ds) must be greater than config.shutdownTimeout (%s), or pods are killed before they drain" (int $v.terminationGracePeriodSeconds) $v.config.shutdownTimeout) }}
{{- end }}
{{- $ackWait := include "provisioner.durationMillis" $v.config.ackWait | int }}
{{- $airbyteTimeout := include "provisioner.durationMillis" $v.airbyte.timeout | int }}
{{- if ge $airbyteTimeout $ackWait }}
{{- fail (printf "airbyte.timeout (%s) must be below config.ackWait (%s), or a slow call outlives the delivery" $v.airbyte.timeout $v.config.ackWait) }}
{{- end }}
{{- if lt (int $v.config.maxAckPending) (int $v.config.concurrency) }}
{{- fail "config.maxAckPending must be at least config.concurrency" }}
{{- end }}
{{- if and $v.airbyte.clientSecret.existingSecret $v.airbyte.clientSecret.ref }}
{{- fail "set airbyte.clientSecret.existingSecret or airbyte.clientSecret.ref, not both" }}
{{- end }}
{{- if not (or $v.airbyte.clientSecret.existingSecret $v.airbyte.clientSecret.ref) }}
{{- fail "airbyte.clientSecret.existingSecret or airbyte.clientSecret.ref is required" }}
{{- end }}
{{- with $v.nats.auth }}
{{- if and (or .credsKey .userKey .passwordKey .tokenKey) (not .existingSecret) }}
{{- fail "nats.auth.existingSecret is required when a nats.auth key is set" }}
{{- end }}
{{- if and .credsKey (or .userKey .tokenKey) }}
{{- fail "nats.auth: use one of credsKey, userKey/passwordKey or tokenKey" }}
{{- end }}
{{- end }}
{{- if not (eq (empty $v.nats.tls.certKey) (empty $v.nats.tls.keyKey)) }}
{{- fail "nats.tls.certKey and nats.tls.keyKey go together" }}
{{- end }}
{{- if $v.vault.enabled }}
{{- if not $v.vault.addr }}
{{- fail "vault.addr is required when vault.enabled is true" }}
{{- end }}
{{- $auth := $v.vault.auth }}
{{- if and (eq $auth.method "token") (not $auth.token.existingSecret) }}
{{- fail "vault.auth.token.existingSecret is required for vault.auth.method=token" }}
{{- end }}
{{- if and (eq $auth.method "approle") (not (and $auth.approle.roleId $auth.approle.secretId.existingSecret)) }}
{{- fail "vault.auth.approle.roleId and vault.auth.approle.secretId.existingSecret are required for vault.auth.method=approle" }}
{{- end }}
{{- if and (eq $auth.method "kubernetes") (not $auth.kubernetes.role) }}
{{- fail "vault.auth.kubernetes.role is required for vault.auth.method=kubernetes" }}
{{- end }}
{{- if not (eq (empty $v.vault.tls.certKey) (empty $v.vault.tls.keyKey)) }}
{{- fail "vault.tls.certKey and vault.tls.keyKey go together" }}
{{- end }}
{{- end }}
{{- if and $v.envSecrets.enabled (not $v.envSecrets.existingSecret) }}
{{- fail "envSecrets.existingSecret is required when envSecrets.enabled is true" }}
{{- end }}
{{- /* What `provisioner run` itself refuses (exit 2): refused here, before anything is deployed. */}}
{{- $_ := required "airbyte.clientId is required: the Airbyte application's client id (--set airbyte.clientId=...)" $v.airbyte.clientId }}
{{- if not (or $v.vault.enabled $v.fileSecrets.existingSecret $v.envSecrets.enabled) }}
{{- fail "no secret backend: set vault.enabled=true (with vault.addr), fileSecrets.existingSecret or envSecrets.enabled=true" }}
{{- end }}
{{- if not $v.config.secretPathPolicy }}
{{- fail "config.secretPathPolicy is required: the path every secret reference of a workspace must fall under, e.g. customers/{workspace_name}/ (\"none\" turns tenant isolation off)" }}
{{- end }}
{{- if and $v.autoscaling.keda.enabled (not $v.autoscaling.keda.account) }}
{{- fail "autoscaling.keda.account is required: the NATS account of the streams (PROVISIONER with deploy/nats/provisioner.conf; $G only on a server without accounts)" }}
{{- end }}
{{- end }}

{{/*
The worker container's environment and files, shared by the Deployment's container and the
`helm test` pod that runs `provisioner doctor` with the same configuration.
*/}}
{{- define "provisioner.envFrom" -}}
- configMapRef:
    name: {{ include "provisioner.fullname" . }}
{{- if .Values.envSecrets.enabled }}
- secretRef:
    name: {{ .Values.envSecrets.existingSecret }}
{{- end }}
{{- end }}

{{- define "provisioner.env" -}}
{{- $env := list }}
{{- with .Values.airbyte.clientSecret }}
{{- if .existingSecret }}
{{- $env = append $env (dict "name" "PROVISIONER_AIRBYTE_CLIENT_SECRET" "secret" .existingSecret "key" .key) }}
{{- end }}
{{- end }}
{{- with .Values.nats.auth }}
{{- if .userKey }}
{{- $env = append $env (dict "name" "PROVISIONER_NATS_USER" "secret" .existingSecret "key" .userKey) }}
{{- end }}
{{- if .passwordKey }}
{{- $env = append $env (dict "name" "PROVISIONER_NATS_PASSWORD" "secret" .existingSecret "key" .passwordKey) }}
{{- end }}
{{- if .tokenKey }}
{{- $env = append $env (dict "name" "PROVISIONER_NATS_TOKEN" "secret" .existingSecret "key" .tokenKey) }}
{{- end }}
{{- end }}
{{- if .Values.vault.enabled }}
{{- with .Values.vault.auth }}
{{- if eq .method "token" }}
{{- $env = append $env (dict "name" "PROVISIONER_VAULT_TOKEN" "secret" .token.existingSecret "key" .token.key) }}
{{- end }}
{{- if eq .method "approle" }}
{{- $env = append $env (dict "name" "PROVISIONER_VAULT_SECRET_ID" "secret" .approle.secretId.existingSecret "key" .approle.secretId.key) }}
{{- end }}
{{- end }}
{{- end }}
{{- range $env }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "provisioner.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.nats.auth.credsKey }}
- name: nats-auth
  mountPath: {{ include "provisioner.natsAuthDir" . }}
  readOnly: true
{{- end }}
{{- if .Values.nats.tls.existingSecret }}
- name: nats-tls
  mountPath: {{ include "provisioner.natsTLSDir" . }}
  readOnly: true
{{- end }}
{{- if and .Values.vault.enabled .Values.vault.tls.existingSecret }}
- name: vault-tls
  mountPath: {{ include "provisioner.vaultTLSDir" . }}
  readOnly: true
{{- end }}
{{- if .Values.fileSecrets.existingSecret }}
- name: file-secrets
  mountPath: {{ include "provisioner.fileSecretsDir" . }}
  readOnly: true
{{- end }}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "provisioner.volumes" -}}
- name: tmp
  emptyDir:
    medium: Memory
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- if .Values.nats.auth.credsKey }}
- name: nats-auth
  secret:
    secretName: {{ .Values.nats.auth.existingSecret }}
    defaultMode: 0400
    items:
      - key: {{ .Values.nats.auth.credsKey }}
        path: {{ .Values.nats.auth.credsKey }}
{{- end }}
{{- if .Values.nats.tls.existingSecret }}
- name: nats-tls
  secret:
    secretName: {{ .Values.nats.tls.existingSecret }}
    defaultMode: 0400
{{- end }}
{{- if and .Values.vault.enabled .Values.vault.tls.existingSecret }}
- name: vault-tls
  secret:
    secretName: {{ .Values.vault.tls.existingSecret }}
    defaultMode: 0400
{{- end }}
{{- if .Values.fileSecrets.existingSecret }}
- name: file-secrets
  secret:
    secretName: {{ .Values.fileSecrets.existingSecret }}
    defaultMode: 0400
{{- end }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The standard labels merged with extra ones (extra wins), so a key given twice is written once.
Call with (dict "ctx" $ "extra" .labels).
*/}}
{{- define "provisioner.labelsWith" -}}
{{- $labels := include "provisioner.labels" .ctx | fromYaml }}
{{- toYaml (mergeOverwrite $labels (default (dict) .extra)) }}
{{- end }}
