#!/usr/bin/env bash
# demo.sh — `make demo`: starts the local system and prints how to use it; Ctrl-C tears it down.
#
# What runs today, all on loopback: a real etcd + kube-apiserver (with the project's CRDs), a
# real Kafka broker with the demo's topics, an example backend, and a gateway process with
# downlink and drain. The operator, node agent and LB simulator join as their issues land;
# this script will then apply the sample TCPGateway instead of starting the gateway itself.
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
  for pid in ${gateway_pid:-} ${backend_pid:-} ${cluster_pid:-}; do
    kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  done
  hack/kafka.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bootstrap=$(hack/kafka.sh start)
go build -o bin/ ./hack/localcluster ./hack/kafkatopics ./test/echobackend ./cmd/gateway ./cmd/tcpgwctl
bin/kafkatopics -brokers "$bootstrap" -partitions 3 demo.downlink demo.receipts

# The gateway's key (a mounted Secret in a cluster) and config (the operator's ConfigMap).
head -c 32 /dev/urandom > bin/demo-hs256
cat > bin/demo-gateway.yaml <<YAML
serverID: demo-gw-0
listen: {clients: "127.0.0.1:17000", admin: "127.0.0.1:19090"}
auth: {jwt: {hs256SecretFile: $REPO_ROOT/bin/demo-hs256}}
routes: [{service: echo, url: "http://127.0.0.1:18080"}]
kafka: {brokers: ["$bootstrap"], downlinkTopic: demo.downlink, receiptsTopic: demo.receipts}
drain: {deregistrationDelay: 1s, spreadWindow: 3s, flushTimeout: 3s, hardDeadline: 15s}
logging: {format: text}
YAML
bin/echobackend -listen 127.0.0.1:18080 2>bin/demo-echobackend.log &
backend_pid=$!
bin/gateway -config bin/demo-gateway.yaml 2>bin/demo-gateway.log &
gateway_pid=$!
rm -f bin/demo.kubeconfig
bin/localcluster -write-kubeconfig bin/demo.kubeconfig &
cluster_pid=$!
for _ in $(seq 1 120); do
  [ -s bin/demo.kubeconfig ] && break
  kill -0 "$cluster_pid" 2>/dev/null || die "the control plane exited; see its log above"
  sleep 0.5
done
[ -s bin/demo.kubeconfig ] || die "the control plane did not come up within 60s"
for _ in $(seq 1 120); do
  curl -fsS 127.0.0.1:19090/readyz >/dev/null 2>&1 && break
  kill -0 "$gateway_pid" 2>/dev/null || die "the gateway exited; see bin/demo-gateway.log"
  sleep 0.5
done
curl -fsS 127.0.0.1:19090/readyz >/dev/null || die "the gateway is not ready; see bin/demo-gateway.log"
token=$(bin/tcpgwctl token -secret-file bin/demo-hs256 -user alice -groups beta)

cat <<MSG

tcpgateway demo — running on loopback:
  gateway          clients 127.0.0.1:17000, admin http://127.0.0.1:19090 (/readyz /status /metrics /drain)
  example backend  http://127.0.0.1:18080 (route "echo")
  Kafka            bootstrap $bootstrap, topics demo.downlink / demo.receipts
  Kubernetes API   $KUBEBUILDER_ASSETS/kubectl --kubeconfig bin/demo.kubeconfig get --raw /version

In another terminal:
  export TCPGW_TOKEN=$token
  bin/tcpgwctl connect -addr 127.0.0.1:17000            # type: echo chat/send hello | ping | quit
  bin/tcpgwctl request -addr 127.0.0.1:17000 echo chat/send 'hello'
  bin/tcpgwctl push -brokers $bootstrap -topic demo.downlink -user alice 'hello from a backend'
  bin/tcpgwctl push -brokers $bootstrap -topic demo.downlink -receipts demo.receipts -user alice -ack 'ack me'
  curl 127.0.0.1:19090/drain?wait=true                  # graceful drain: GOAWAY, resume elsewhere

Logs: bin/demo-gateway.log, bin/demo-echobackend.log. Press Ctrl-C to stop everything.
MSG
wait "$cluster_pid" "$gateway_pid"
