#!/usr/bin/env bash
# Checks the chart: helm lint, then helm template piped to kubeconform -strict, for the default
# values and for ci/all-options-values.yaml (every option on). Installs its tools once under
# ~/.cache/ingest-tools: helm and kubeconform built from the Go module proxy with the machine's Go
# (pinned versions), and Kubernetes' JSON schemas from the kubernetes-validate wheel on PyPI
# (kubeconform's own default, GitHub, is not reachable from every CI machine).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

HELM_VERSION=v4.3.2
KUBECONFORM_VERSION=v0.8.0
K8S_SCHEMAS_WHEEL=kubernetes-validate==1.37.0   # bundles the schemas of Kubernetes 1.x releases
K8S_VERSION=1.30.0                               # the oldest Kubernetes the chart is checked against
# The kinds the chart renders (a new kind fails the check until it is added here).
KINDS=configmap-v1,secret-v1,service-v1,serviceaccount-v1,deployment-apps-v1,job-batch-v1,horizontalpodautoscaler-autoscaling-v2,poddisruptionbudget-policy-v1

python="${CHART_PYTHON:-.venv/bin/python}"   # the project's venv (make chart makes it): it has pip
tools="$HOME/.cache/ingest-tools"
bin="$tools/bin"
export GOBIN="$bin" GOPATH="$tools/go" GOMODCACHE="$tools/go/pkg/mod" GOCACHE="$tools/go-build"
mkdir -p "$bin"
# Built with `go install`, the tools do not know their own versions: a stamp file says which.
if [ ! -x "$bin/helm" ] || [ ! -e "$bin/.helm-$HELM_VERSION" ]; then
  echo "helm/ci.sh: building helm $HELM_VERSION (once; cached in $tools)"
  go install "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
  touch "$bin/.helm-$HELM_VERSION"
fi
if [ ! -x "$bin/kubeconform" ] || [ ! -e "$bin/.kubeconform-$KUBECONFORM_VERSION" ]; then
  echo "helm/ci.sh: building kubeconform $KUBECONFORM_VERSION (once; cached in $tools)"
  go install "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
  touch "$bin/.kubeconform-$KUBECONFORM_VERSION"
fi
schemas="$tools/k8s-schemas/${K8S_SCHEMAS_WHEEL#*==}"
if [ ! -d "$schemas/v$K8S_VERSION-local-strict" ]; then
  echo "helm/ci.sh: fetching Kubernetes' JSON schemas ($K8S_SCHEMAS_WHEEL)"
  rm -rf "$schemas.tmp" && mkdir -p "$schemas.tmp"
  "$python" -m pip download --quiet --no-deps --dest "$schemas.tmp" "$K8S_SCHEMAS_WHEEL"
  "$python" - "$schemas.tmp" "$K8S_VERSION" <<'PY'
import sys, zipfile, pathlib
out, version = pathlib.Path(sys.argv[1]), sys.argv[2]
wheel = next(out.glob("*.whl"))
prefix = "kubernetes_validate/kubernetes-json-schema/"
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(f"{prefix}v{version}-local"):
            target = out / name[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(z.read(name))
wheel.unlink()
PY
  rm -rf "$schemas" && mv "$schemas.tmp" "$schemas"
fi

standalone="$(mktemp -d)"
trap 'rm -rf "$standalone"' EXIT
"$python" helm/k8s_standalone_schemas.py "$schemas/v$K8S_VERSION-local-strict" \
  "$standalone/v$K8S_VERSION-standalone-strict" "$KINDS"

chart=helm/ingest-gateway
location="$standalone/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json"
for values in "" "$chart/ci/all-options-values.yaml"; do
  args=()
  [ -n "$values" ] && args=(--values "$values")
  echo "helm/ci.sh: ${values:-default values}"
  "$bin/helm" lint --strict "$chart" "${args[@]}"
  # ServiceMonitor is the Prometheus Operator's CRD: Kubernetes' schemas do not have it.
  "$bin/helm" template ingest "$chart" "${args[@]}" --kube-version "$K8S_VERSION" \
    | "$bin/kubeconform" -strict -summary -kubernetes-version "$K8S_VERSION" \
        -schema-location "$location" -skip ServiceMonitor
done
