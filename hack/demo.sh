#!/usr/bin/env bash
# demo.sh — `make demo`: starts the whole system on loopback, applies the sample TCPGateway,
# waits for it to be Ready and prints how to use it; Ctrl-C tears everything down.
#
# Runs: Kafka (hack/kafka.sh), a local cluster (hack/localcluster: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, two node agents running pods as processes on
# 127.0.10.x, the LoadBalancer simulator on 127.0.20.x), the operator (cmd/manager) as a process,
# and an example backend. The TCPGateway is config/samples' with the addresses of this machine.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

mkdir -p bin
KUBEBUILDER_ASSETS=$(hack/k8s.sh)
export KUBEBUILDER_ASSETS
KAFKA_STATE_DIR="$REPO_ROOT/bin/demo-kafka"
export KAFKA_STATE_DIR
kubectl() { "$KUBEBUILDER_ASSETS/kubectl" --kubeconfig "$REPO_ROOT/bin/demo.kubeconfig" "$@"; }

cleanup() {
  log "tearing down"
  # The cluster first: its node agents drain and stop the gateway pods.
  for pid in ${cluster_pid:-} ${operator_pid:-} ${backend_pid:-}; do
    kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  done
  hack/kafka.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bootstrap=$(hack/kafka.sh start)
log "building"
go build -o bin/ ./hack/localcluster ./test/echobackend ./cmd/gateway ./cmd/manager ./cmd/tcpgwctl

bin/echobackend -listen 127.0.0.1:18080 2>bin/demo-echobackend.log &
backend_pid=$!

log "starting the local cluster (log: bin/demo-cluster.log)"
rm -rf bin/demo.kubeconfig bin/demo-cluster
mkdir -p bin/demo-cluster
# The operator's pods run /usr/local/bin/gateway; the node agents run this build of it.
bin/localcluster -write-kubeconfig bin/demo.kubeconfig -dir "$REPO_ROOT/bin/demo-cluster" \
  -binaries "/usr/local/bin/gateway=$REPO_ROOT/bin/gateway" 2>bin/demo-cluster.log &
cluster_pid=$!
for _ in $(seq 1 240); do
  [ -s bin/demo.kubeconfig ] && break
  kill -0 "$cluster_pid" 2>/dev/null || die "the local cluster exited; see bin/demo-cluster.log"
  sleep 0.5
done
[ -s bin/demo.kubeconfig ] || die "the local cluster did not come up within 120s; see bin/demo-cluster.log"

log "starting the operator (log: bin/demo-operator.log)"
bin/manager --kubeconfig bin/demo.kubeconfig --metrics-bind-address 127.0.0.1:18082 \
  --health-probe-bind-address 127.0.0.1:18081 2>bin/demo-operator.log &
operator_pid=$!

log "applying the sample TCPGateway"
head -c 32 /dev/urandom > bin/demo-hs256
kubectl create secret generic chat-jwt --from-file=hs256.secret=bin/demo-hs256 >/dev/null
# config/samples with this machine's Kafka and backend, one Kafka replica and a short drain.
sed -e "s|kafka.kafka.svc:9092|$bootstrap|" \
    -e "s|http://echo.default.svc:8080|http://127.0.0.1:18080|" \
    -e "s|replicationFactor: 3|replicationFactor: 1|" \
    -e "s|partitions: 12|partitions: 3|" \
    -e "s|spreadWindow: 30s|spreadWindow: 5s|" \
    -e "s|hardDeadline: 60s|hardDeadline: 20s|" \
    config/samples/tcpgateway_v1alpha1_tcpgateway.yaml > bin/demo-tcpgateway.yaml
kubectl apply -f bin/demo-tcpgateway.yaml

log "waiting for the TCPGateway to be Ready"
if ! kubectl wait tcpgateway/chat --for=condition=Ready --timeout=180s >/dev/null; then
  kubectl get tcpgateway,statefulset,pods,svc -o wide || true
  die "the TCPGateway is not Ready after 180s; see bin/demo-operator.log and bin/demo-cluster.log"
fi
for _ in $(seq 1 60); do
  address=$(kubectl get tcpgateway chat -o jsonpath='{.status.address}')
  [ -n "$address" ] && break
  sleep 0.5
done
[ -n "${address:-}" ] || die "the TCPGateway has no address; see bin/demo-cluster.log"
port=$(kubectl get tcpgateway chat -o jsonpath='{.spec.port}')
downlink=$(kubectl get tcpgateway chat -o jsonpath='{.status.kafka.downlinkTopic}')
receipts=$(kubectl get tcpgateway chat -o jsonpath='{.status.kafka.receiptsTopic}')
token=$(bin/tcpgwctl token -secret-file bin/demo-hs256 -user alice -groups beta \
  -issuer https://auth.example.com -audience chat)

cat <<MSG

tcpgateway demo — running on loopback:
  TCPGateway       default/chat, Ready; load balancer $address:$port
  Kubernetes API   kubectl: $KUBEBUILDER_ASSETS/kubectl --kubeconfig bin/demo.kubeconfig
  Kafka            bootstrap $bootstrap, topics $downlink / $receipts
  example backend  http://127.0.0.1:18080 (route "echo")

$(kubectl get tcpgateway,pods -o wide)

In another terminal:
  export TCPGW_TOKEN=$token
  alias kubectl='$KUBEBUILDER_ASSETS/kubectl --kubeconfig bin/demo.kubeconfig'
  bin/tcpgwctl connect -addr $address:$port                 # type: echo chat/send hello | ping | quit
  bin/tcpgwctl request -addr $address:$port echo chat/send 'hello'
  bin/tcpgwctl push -brokers $bootstrap -topic $downlink -user alice 'hello from a backend'
  bin/tcpgwctl push -brokers $bootstrap -topic $downlink -receipts $receipts -user alice -ack 'ack me'
  kubectl delete pod chat-0                                 # drain one pod: clients resume elsewhere
  kubectl patch tcpgateway chat --type merge -p '{"spec":{"replicas":5}}'

Logs: bin/demo-operator.log, bin/demo-cluster.log (pods: bin/demo-cluster/), bin/demo-echobackend.log.
Press Ctrl-C to stop everything.
MSG
wait "$cluster_pid" "$operator_pid"
