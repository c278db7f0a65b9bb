{{/* Chart name. */}}
{{- define "gpuguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name (also the Service name the API server calls). */}}
{{- define "gpuguard.fullname" -}}
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

{{- define "gpuguard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gpuguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gpuguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "gpuguard.labels" -}}
helm.sh/chart: {{ include "gpuguard.chart" . }}
{{ include "gpuguard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: admission-webhook
app.kubernetes.io/part-of: gpuguard
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "gpuguard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gpuguard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret that holds the serving certificate (tls.crt, tls.key). */}}
{{- define "gpuguard.tlsSecretName" -}}
{{- if .Values.tls.existingSecret }}
{{- .Values.tls.existingSecret }}
{{- else }}
{{- printf "%s-tls" (include "gpuguard.fullname" .) }}
{{- end }}
{{- end }}

{{- define "gpuguard.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The namespaces the webhooks never see: the release namespace (the webhook must not block its own pods)
and kube-system, plus webhook.excludeNamespaces. kubernetes.io/metadata.name is set by the API server
on every namespace and cannot be changed, so it cannot be forged to dodge the webhook.
*/}}
{{- define "gpuguard.namespaceSelector" -}}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values:
      {{- range (concat (list .Release.Namespace "kube-system") .Values.webhook.excludeNamespaces | uniq) }}
      - {{ . | quote }}
      {{- end }}
  {{- with .Values.webhook.namespaceSelectorExpressions }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{- define "gpuguard.failurePolicy" -}}
{{- if not (has .Values.failurePolicy (list "Fail" "Ignore")) }}
{{- fail "failurePolicy must be Fail or Ignore" }}
{{- end }}
{{- if or (lt (int .Values.timeoutSeconds) 1) (gt (int .Values.timeoutSeconds) 30) }}
{{- fail "timeoutSeconds must be between 1 and 30" }}
{{- end }}
{{- .Values.failurePolicy }}
{{- end }}

{{/* The pod rules both webhooks match: pods and the ephemeral-container subresource. */}}
{{- define "gpuguard.rules" -}}
- apiGroups: [""]
  apiVersions: ["v1"]
  operations: ["CREATE", "UPDATE"]
  resources: ["pods", "pods/ephemeralcontainers"]
  scope: Namespaced
{{- end }}
