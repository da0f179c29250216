#!/usr/bin/env bash
# make local-run: the SDAR pipeline on a local kind cluster with Kubeflow Pipelines standalone.
#
# Versions: the KFP SDK is 2.17.0 (pyproject.toml); the backend installed here is 2.14.3, the last
# release whose object store is MinIO, which the input upload below relies on.
# Steps: check prerequisites; install the project; create the kind cluster; install KFP at a
# pinned version; build the CPU image and load it into kind; start an MLflow server in the
# cluster (or use MLFLOW_URI); prepare the tiny model and games and copy them into KFP's object
# store; compile the pipeline (local profile: CPU image, no GPU requests) and submit it with
# kfp.Client; print how to reach the UIs.
#
# DRY_RUN=1 prints every step's commands without running anything (no tool is needed).
# Settings (environment): CLUSTER_NAME, KFP_VERSION, ALGORITHM, ROUNDS, MLFLOW_URI, KFP_PORT,
# SDAR_IMAGE_REGISTRY. Not exercised on the machines this was written on (no Docker engine,
# no kind, no cluster); only DRY_RUN=1 and the prerequisite check are tested.
set -euo pipefail

DRY_RUN="${DRY_RUN:-0}"
CLUSTER_NAME="${CLUSTER_NAME:-sdar}"
KFP_VERSION="${KFP_VERSION:-2.14.3}"
ALGORITHM="${ALGORITHM:-sdar}"
ROUNDS="${ROUNDS:-2}"
MLFLOW_URI="${MLFLOW_URI:-}"
KFP_PORT="${KFP_PORT:-8080}"
KFP_API_PORT="${KFP_API_PORT:-8888}"
export SDAR_IMAGE_REGISTRY="${SDAR_IMAGE_REGISTRY:-localhost/sdar}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${ROOT}/runs/local-run"
BIN="${ROOT}/.venv/bin"
KFP_KUSTOMIZE="github.com/kubeflow/pipelines/manifests/kustomize"
CPU_IMAGE_TAG="$(sed -n 's/^ *"sdar-cpu": "\([^"]*\)".*/\1/p' "${ROOT}/components/images.py")"
CPU_IMAGE="${SDAR_IMAGE_REGISTRY}/sdar-cpu:${CPU_IMAGE_TAG}"
IN_CLUSTER_MLFLOW="http://mlflow.mlflow.svc.cluster.local:5000"
INPUTS_PREFIX="sdar-inputs/${CLUSTER_NAME}"
STEP=0
PORT_FORWARD_PID=""
TOTAL=9

step() {
  STEP=$((STEP + 1))
  printf '\n== step %d/%d: %s\n' "${STEP}" "${TOTAL}" "$1"
}

# Print a command, then run it unless DRY_RUN=1.
run() {
  printf '+ %s\n' "$*"
  if [[ "${DRY_RUN}" != "1" ]]; then
    "$@"
  fi
}

check_prerequisites() {
  step "check prerequisites (docker, kind, kubectl, python3.11)"
  local missing=()
  local tool
  for tool in docker kind kubectl; do
    command -v "${tool}" >/dev/null 2>&1 || missing+=("${tool}")
  done
  if [[ ! -x "${BIN}/python" ]] && ! command -v python3.11 >/dev/null 2>&1; then
    missing+=("python3.11")
  fi
  if [[ ${#missing[@]} -eq 0 ]] && ! docker info >/dev/null 2>&1; then
    missing+=("a running Docker engine (docker info failed)")
  fi
  if [[ ${#missing[@]} -gt 0 ]]; then
    if [[ "${DRY_RUN}" == "1" ]]; then
      printf 'note: missing here: %s (a real run stops at this point)\n' "${missing[*]}"
      return 0
    fi
    printf 'error: make local-run needs: %s\n' "${missing[*]}" >&2
    printf 'install them (https://kind.sigs.k8s.io, https://kubernetes.io/docs/tasks/tools) ' >&2
    printf 'and retry, or use "make run" for the embedded run without Docker or Kubernetes\n' >&2
    exit 1
  fi
  echo "ok: docker, kind, kubectl"
}

install_project() {
  step "install the project (.venv, pinned)"
  run make -C "${ROOT}" install
}

create_cluster() {
  step "create the kind cluster '${CLUSTER_NAME}'"
  if [[ "${DRY_RUN}" != "1" ]] && kind get clusters 2>/dev/null | grep -qx "${CLUSTER_NAME}"; then
    echo "cluster ${CLUSTER_NAME} exists; reusing it"
  else
    run kind create cluster --name "${CLUSTER_NAME}" --wait 120s
  fi
  run kubectl config use-context "kind-${CLUSTER_NAME}"
}

install_kfp() {
  step "install Kubeflow Pipelines ${KFP_VERSION} (standalone)"
  run kubectl apply -k "${KFP_KUSTOMIZE}/cluster-scoped-resources?ref=${KFP_VERSION}"
  run kubectl wait --for condition=established --timeout=120s crd/applications.app.k8s.io
  run kubectl apply -k "${KFP_KUSTOMIZE}/env/platform-agnostic?ref=${KFP_VERSION}"
  run kubectl -n kubeflow wait --for=condition=available --timeout=900s deployment --all
}

build_images() {
  step "build the CPU image ${CPU_IMAGE} and load it into kind"
  run docker build -f "${ROOT}/images/sdar-cpu/Dockerfile" -t "${CPU_IMAGE}" "${ROOT}"
  run kind load docker-image "${CPU_IMAGE}" --name "${CLUSTER_NAME}"
}

start_mlflow() {
  step "MLflow tracking server"
  if [[ -n "${MLFLOW_URI}" ]]; then
    echo "using the given MLFLOW_URI=${MLFLOW_URI}"
    return 0
  fi
  MLFLOW_URI="${IN_CLUSTER_MLFLOW}"
  printf '+ kubectl apply -f - <<(MLflow namespace, deployment and service; image %s)\n' \
    "${CPU_IMAGE}"
  if [[ "${DRY_RUN}" != "1" ]]; then
    mlflow_manifest | kubectl apply -f -
  fi
  run kubectl -n mlflow wait --for=condition=available --timeout=300s deployment/mlflow
}

# The MLflow server runs in the project's own CPU image, which pins the same mlflow version.
mlflow_manifest() {
  cat <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: mlflow}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: mlflow, namespace: mlflow}
spec:
  replicas: 1
  selector: {matchLabels: {app: mlflow}}
  template:
    metadata: {labels: {app: mlflow}}
    spec:
      containers:
        - name: mlflow
          image: ${CPU_IMAGE}
          command: [mlflow, server, --host, 0.0.0.0, --port, "5000",
                    --backend-store-uri, sqlite:////mlflow/mlflow.db,
                    --artifacts-destination, /mlflow/artifacts, --serve-artifacts,
                    --allowed-hosts, "*"]
          ports: [{containerPort: 5000}]
          resources:
            requests: {cpu: 500m, memory: 1Gi}
            limits: {cpu: "2", memory: 2Gi}
          readinessProbe:
            httpGet: {path: /health, port: 5000}
            initialDelaySeconds: 10
            periodSeconds: 5
          volumeMounts: [{name: store, mountPath: /mlflow}]
      volumes:
        - name: store
          persistentVolumeClaim: {claimName: mlflow-store}
---
# the store survives pod restarts (kind's default storage class provisions it)
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: mlflow-store, namespace: mlflow}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 5Gi}}
---
apiVersion: v1
kind: Service
metadata: {name: mlflow, namespace: mlflow}
spec:
  selector: {app: mlflow}
  ports: [{port: 5000, targetPort: 5000}]
YAML
}

upload_inputs() {
  step "prepare the tiny model and games and copy them into KFP's object store (MinIO)"
  # re-runnable: the model and games of an earlier run are reused
  if [[ "${DRY_RUN}" != "1" && -f "${WORK}/model/config.json" ]]; then
    echo "reusing the model at ${WORK}/model"
  else
    run "${BIN}/sdar" build-model "${WORK}/model"
  fi
  run "${BIN}/sdar" gen-games "${WORK}/games" --n-train 12 --n-valid-seen 12 \
    --n-valid-unseen 0 --overwrite
  local pod="<minio pod>"
  if [[ "${DRY_RUN}" != "1" ]]; then
    pod="$(kubectl -n kubeflow get pod -l app=minio -o jsonpath='{.items[0].metadata.name}')"
  fi
  # KFP's MinIO serves a plain folder: files under /data/<bucket>/ are objects.
  run kubectl -n kubeflow exec "${pod}" -- mkdir -p "/data/mlpipeline/${INPUTS_PREFIX}"
  run kubectl -n kubeflow cp "${WORK}/model" "${pod}:/data/mlpipeline/${INPUTS_PREFIX}/model"
  run kubectl -n kubeflow cp "${WORK}/games" "${pod}:/data/mlpipeline/${INPUTS_PREFIX}/games"
}

compile_and_submit() {
  step "compile (local profile) and submit the pipeline with kfp.Client"
  local yaml="${WORK}/sdar-${ALGORITHM}-r${ROUNDS}.yaml"
  # No --mlflow-secret: the in-cluster MLflow has no auth, and KFP 2.14's driver cannot make a
  # secret optional, so a named but missing secret would hold every pod in
  # CreateContainerConfigError.
  run "${BIN}/sdar" compile "${yaml}" --algorithm "${ALGORITHM}" --rounds "${ROUNDS}" \
    --profile local
  printf '+ kubectl -n kubeflow port-forward svc/ml-pipeline %s:8888 &\n' "${KFP_API_PORT}"
  if [[ "${DRY_RUN}" != "1" ]]; then
    kubectl -n kubeflow port-forward svc/ml-pipeline "${KFP_API_PORT}:8888" >/dev/null &
    PORT_FORWARD_PID=$!
    trap 'kill "${PORT_FORWARD_PID}" 2>/dev/null || true' EXIT
    sleep 5  # let the port-forward come up before kfp.Client checks the server's health
  fi
  run "${BIN}/sdar" submit "${yaml}" --host "http://localhost:${KFP_API_PORT}" \
    --model-uri "minio://mlpipeline/${INPUTS_PREFIX}/model" \
    --games-uri "minio://mlpipeline/${INPUTS_PREFIX}/games" \
    --tracking-uri "${MLFLOW_URI}" --run-name "sdar-${ALGORITHM}-local-run"
}

print_access() {
  step "how to reach the UIs"
  echo "Kubeflow Pipelines UI: kubectl -n kubeflow port-forward svc/ml-pipeline-ui ${KFP_PORT}:80"
  echo "                       then open http://localhost:${KFP_PORT}"
  if [[ "${MLFLOW_URI}" == "${IN_CLUSTER_MLFLOW}" ]]; then
    echo "MLflow UI:             kubectl -n mlflow port-forward svc/mlflow 5000:5000"
    echo "                       then open http://localhost:5000"
  else
    echo "MLflow UI:             ${MLFLOW_URI}"
  fi
  echo "Delete everything:     kind delete cluster --name ${CLUSTER_NAME}"
}

main() {
  if [[ "${DRY_RUN}" == "1" ]]; then
    echo "DRY_RUN=1: printing the plan; nothing is executed"
  fi
  check_prerequisites
  install_project
  create_cluster
  install_kfp
  build_images
  start_mlflow
  upload_inputs
  compile_and_submit
  print_access
}

main "$@"
