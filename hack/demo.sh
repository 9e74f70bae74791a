#!/usr/bin/env bash
# demo.sh — `make demo`: starts the local system and prints how to use it; Ctrl-C tears it down.
#
# What exists today: a real etcd + kube-apiserver (with the project's CRDs) and a real Kafka
# broker, on loopback. The gateway, operator, node agent and LB simulator join as their issues
# land; this script then applies the sample TCPGateway and prints the tcpgwctl commands.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

mkdir -p bin
KUBEBUILDER_ASSETS=$(hack/k8s.sh)
export KUBEBUILDER_ASSETS
KAFKA_STATE_DIR="$REPO_ROOT/bin/demo-kafka"
export KAFKA_STATE_DIR

cleanup() {
  log "tearing down"
  [ -n "${cluster_pid:-}" ] && kill -TERM "$cluster_pid" 2>/dev/null && wait "$cluster_pid" 2>/dev/null || true
  hack/kafka.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bootstrap=$(hack/kafka.sh start)
go build -o bin/localcluster ./hack/localcluster
rm -f bin/demo.kubeconfig
bin/localcluster -kubeconfig bin/demo.kubeconfig &
cluster_pid=$!
for _ in $(seq 1 120); do
  [ -s bin/demo.kubeconfig ] && break
  kill -0 "$cluster_pid" 2>/dev/null || die "the control plane exited; see its log above"
  sleep 0.5
done
[ -s bin/demo.kubeconfig ] || die "the control plane did not come up within 60s"

cat <<MSG

tcpgateway demo — running on loopback:
  Kubernetes API   kubectl --kubeconfig bin/demo.kubeconfig get --raw /version
                   (kubectl: $KUBEBUILDER_ASSETS/kubectl)
  Kafka            bootstrap $bootstrap

This stage of the project runs the real control plane and Kafka; the gateway, operator and
load balancer join as their issues land, and this demo will then apply the sample TCPGateway.
Press Ctrl-C to stop everything.
MSG
wait "$cluster_pid"
