#!/usr/bin/env bash
# demo.sh — `make demo`: starts the whole system on loopback, applies the sample TCPGateway,
# waits for it to be Ready and prints how to use it; Ctrl-C tears everything down.
#
# Runs: Kafka (hack/kafka.sh), a local cluster (hack/localcluster: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, two node agents running pods as processes on
# 127.0.10.x, the LoadBalancer simulator on 127.0.20.x) and an example backend; installs the
# operator with the Helm chart (the node agents run its pod, cmd/manager, as a process) and
# applies config/samples' TCPGateway with the addresses of this machine.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

mkdir -p bin
KUBEBUILDER_ASSETS=$(hack/k8s.sh)
export KUBEBUILDER_ASSETS
HELM=$(hack/helm.sh)
KAFKA_STATE_DIR="$REPO_ROOT/bin/demo-kafka"
export KAFKA_STATE_DIR
kubectl() { "$KUBEBUILDER_ASSETS/kubectl" --kubeconfig "$REPO_ROOT/bin/demo.kubeconfig" "$@"; }

cleanup() {
  log "tearing down"
  # The watching client, then the cluster: its node agents drain and stop the gateway and
  # operator pods as a kubelet does at a graceful node shutdown (preStop, SIGTERM, SIGKILL when
  # the grace period runs out; see -shutdown-grace-period).
  for pid in ${watch_pid:-} ${cluster_pid:-} ${backend_pid:-}; do
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
# The pods run /usr/local/bin/{manager,gateway} (the image's); the node agents run these builds.
bin/localcluster -write-kubeconfig bin/demo.kubeconfig -dir "$REPO_ROOT/bin/demo-cluster" \
  -binaries "/usr/local/bin/gateway=$REPO_ROOT/bin/gateway,/usr/local/bin/manager=$REPO_ROOT/bin/manager" \
  2>bin/demo-cluster.log &
cluster_pid=$!
for _ in $(seq 1 240); do
  [ -s bin/demo.kubeconfig ] && break
  kill -0 "$cluster_pid" 2>/dev/null || die "the local cluster exited; see bin/demo-cluster.log"
  sleep 0.5
done
[ -s bin/demo.kubeconfig ] || die "the local cluster did not come up within 120s; see bin/demo-cluster.log"

log "installing the operator with helm"
# One replica: the pods share this machine's network and the chart's probe port is fixed.
# --take-ownership: the local cluster starts with the CRD installed; the chart adopts it.
"$HELM" install tcpgateway charts/tcpgateway --kubeconfig bin/demo.kubeconfig \
  --namespace tcpgateway-system --create-namespace --take-ownership --set replicaCount=1 \
  --set image.repository=example.test/tcpgateway --set image.tag=demo --wait --timeout 3m >/dev/null \
  || die "helm install failed; see bin/demo-cluster.log"

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
  die "the TCPGateway is not Ready after 180s; see bin/demo-cluster.log and the pod logs in bin/demo-cluster/"
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

# A client of alice, so that a push with -ack has someone to ack it (a push reaches only the
# sessions connected when it is delivered): started before the instructions are printed, which
# wait for its handshake.
TCPGW_TOKEN=$token bin/tcpgwctl watch -addr "$address:$port" >bin/demo-watch.log 2>&1 &
watch_pid=$!
for _ in $(seq 1 60); do
  grep -q '^connected: ' bin/demo-watch.log && break
  kill -0 "$watch_pid" 2>/dev/null || die "the watching client exited; see bin/demo-watch.log"
  sleep 0.5
done
grep -q '^connected: ' bin/demo-watch.log || die "the watching client did not connect within 30s; see bin/demo-watch.log"

cat <<MSG

$(kubectl get tcpgateway,pods -o wide)
$(kubectl get pods -n tcpgateway-system)

MSG
DEMO_ROOT=$REPO_ROOT KUBECTL=$KUBEBUILDER_ASSETS/kubectl ADDRESS=$address:$port BOOTSTRAP=$bootstrap \
  DOWNLINK=$downlink RECEIPTS=$receipts TOKEN=$token hack/demo-usage.sh
echo
echo "Press Ctrl-C to stop everything."
wait "$cluster_pid"
