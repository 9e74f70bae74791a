#!/usr/bin/env bash
# demo-usage.sh — prints the instructions `make demo` ends with. Pure: reads only the variables
# below, writes only to stdout, so that test/packaging can run the printed commands as printed.
#
#   DEMO_ROOT  absolute path of the repository (bin/ holds tcpgwctl and the demo's files)
#   KUBECTL    absolute path of kubectl
#   ADDRESS    the TCPGateway's load balancer address, host:port
#   BOOTSTRAP  Kafka bootstrap address
#   DOWNLINK, RECEIPTS  the TCPGateway's Kafka topics
#   TOKEN      a token for user alice
#
# Every path printed is absolute: the commands work from any directory.
set -euo pipefail

for v in DEMO_ROOT KUBECTL ADDRESS BOOTSTRAP DOWNLINK RECEIPTS TOKEN; do
  [ -n "${!v:-}" ] || { echo "demo-usage.sh: $v is not set" >&2; exit 2; }
done
for v in DEMO_ROOT KUBECTL; do
  [[ ${!v} == /* ]] || { echo "demo-usage.sh: $v is not an absolute path: ${!v}" >&2; exit 2; }
done

# q quotes a word for the shell when it needs it (paths with spaces, quotes).
q() {
  if [[ $1 =~ ^[A-Za-z0-9_./:@=,+-]+$ ]]; then printf '%s' "$1"
  else printf "'%s'" "${1//\'/\'\\\'\'}"; fi
}

ctl=$(q "$DEMO_ROOT/bin/tcpgwctl")
kubeconfig="$DEMO_ROOT/bin/demo.kubeconfig"
watch_log="$DEMO_ROOT/bin/demo-watch.log"

cat <<MSG
tcpgateway demo — running on loopback:
  operator         helm release tcpgateway in namespace tcpgateway-system
  TCPGateway       default/chat, Ready; load balancer $ADDRESS
  Kubernetes API   $KUBECTL --kubeconfig $kubeconfig
  Kafka            bootstrap $BOOTSTRAP, topics $DOWNLINK / $RECEIPTS
  example backend  http://127.0.0.1:18080 (route "echo")
  watching client  user alice, started by the demo: prints each push and acks it ($watch_log)

In another terminal (from any directory):
  export TCPGW_TOKEN=$TOKEN
  alias kubectl=$(q "$(q "$KUBECTL") --kubeconfig $(q "$kubeconfig")")
  $ctl request -addr $ADDRESS echo chat/send 'hello'
  $ctl push -brokers $BOOTSTRAP -topic $DOWNLINK -user alice 'hello from a backend'
  $ctl push -brokers $BOOTSTRAP -topic $DOWNLINK -receipts $RECEIPTS -user alice -ack 'ack me'   # the watching client acks it
  tail -n 3 $(q "$watch_log")
  kubectl get tcpgateway chat
  $ctl connect -addr $ADDRESS   # interactive: echo chat/send hello | ping | quit
  kubectl delete pod chat-0     # drain one pod: clients resume elsewhere
  kubectl patch tcpgateway chat --type merge -p '{"spec":{"replicas":5}}'

Logs: $(q "$DEMO_ROOT/bin/demo-cluster.log"), pods' logs under $(q "$DEMO_ROOT/bin/demo-cluster/nodes")/*/pods/
(the operator's in tcpgateway-system_*), $(q "$DEMO_ROOT/bin/demo-echobackend.log"), $(q "$watch_log").
MSG
