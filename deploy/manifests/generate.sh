#!/usr/bin/env bash
# Regenerate gpuguard.yaml (the plain manifests) from the Helm chart's default values, namespace gpuguard,
# with the certificate left to the user (tls.existingSecret=gpuguard-tls + a placeholder Secret).
# Usage: deploy/manifests/generate.sh [OUTPUT]   (HELM=/path/to/helm if helm is not on PATH)
# tests/deploy checks that the committed file is exactly what this script prints.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
chart="$here/../helm/gpuguard"
helm="${HELM:-helm}"
out="${1:-$here/gpuguard.yaml}"
{
  cat "$here/header.yaml.in"
  # Helm bookkeeping (chart label, managed-by Helm, "# Source:" comments) does not belong in plain manifests.
  "$helm" template gpuguard "$chart" --namespace gpuguard --set tls.existingSecret=gpuguard-tls \
    | sed -e '/^# Source: /d' -e '/^ *helm\.sh\/chart: /d' -e 's/app\.kubernetes\.io\/managed-by: Helm/app.kubernetes.io\/managed-by: kubectl/'
} >"$out.tmp"
mv "$out.tmp" "$out"
