#!/usr/bin/env bash
# test.sh all|e2e|fuzz — the project's test entry points (make test, make test-e2e, make fuzz).
#
# `all` runs the lint and generated-code checks, short fuzzing, then every Go test against real
# components: etcd + kube-apiserver (KUBEBUILDER_ASSETS), helm (TCPGW_HELM), Debian's chromium
# unpacked into the cache (TCPGW_CHROMIUM, hack/chromium.sh) and one Kafka broker
# shared by all test packages, stopped on exit. The broker runs in sasl_ssl mode (one JVM for
# both kinds of test): its plaintext listener is TCPGW_KAFKA_BOOTSTRAP, its state dir (the
# SASL_SSL listeners, CAs and user) TCPGW_KAFKA_SECURE_DIR (see test/kafkatest). The
# TypeScript SDK's tests (hack/ts.sh test: node:test against real gateway processes; hack/ts.sh
# conformance and conformance-websocket: test/conformance with its driver over TCP and over
# WebSocket; go test ./... runs it with the Go SDK's over TCP, and a run of its own over WebSocket
# follows them) and the
# Java SDKs' (hack/java.sh test: JUnit against real gateway processes and the same broker, then
# the conformance suite with the Java driver over TCP and over WebSocket) run
# before go test, which runs last so that its summary closes the output; go test gets the Java
# and TypeScript drivers they built (TCPGW_JAVA_DRIVER, TCPGW_TS_DRIVER) for test/drain's
# mixed-language drain.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

mode=${1:-all}
FUZZTIME=${FUZZTIME:-10s}
GO_TEST_TIMEOUT=${GO_TEST_TIMEOUT:-40m}

phase() { log "── $* ($(date -u +%H:%M:%S))"; }

run_fuzz() {
  # Every `func FuzzX(f *testing.F)`: a short coverage-guided run on top of the committed corpus,
  # from inside the target's module (go test cannot name a nested module's packages, sdk/go's).
  local file dir mod pkg name
  while IFS=: read -r file name; do
    dir=$(dirname "$file")
    mod=$dir
    while [ "$mod" != . ] && [ ! -f "$mod/go.mod" ]; do mod=$(dirname "$mod"); done
    pkg=./${dir#"$mod"/}
    [ "$dir" != "$mod" ] || pkg=.
    name=${name#func }; name=${name%%(*}
    phase "fuzz $dir $name for $FUZZTIME"
    (cd "$mod" && fuzz_one "$pkg" "$name")
  done < <(git ls-files --cached --others --exclude-standard '*_test.go' | xargs -r grep -H -o '^func Fuzz[A-Za-z0-9_]*(' | sed 's/($//')
}

# fuzz_one runs one target. Go before 1.27 can fail a -fuzztime run with a bare "context
# deadline exceeded" when the time runs out while a worker is busy (golang/go#75804; likelier
# for targets whose executions take a millisecond, like FuzzHandshake's loopback round trip).
# No input failed then, so such a failure that wrote no failing input counts as a pass.
fuzz_one() {
  local pkg=$1 name=$2 out status=0
  out=$(mktemp "${TMPDIR:-/tmp}/tcpgw-fuzz.XXXXXX")
  go test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" "$pkg" 2>&1 | tee "$out" || status=$?
  if [ "$status" -ne 0 ] && grep -q '^    context deadline exceeded$' "$out" && ! grep -q 'Failing input written' "$out"; then
    log "$name: Go's fuzztime deadline race (golang/go#75804), no failing input: counted as a pass"
    status=0
  fi
  rm -f "$out"
  return "$status"
}

# warm_builds compiles, before go test, the programs the tests build themselves (cmd/gateway,
# cmd/manager, cmd/tcpgwctl, test/echobackend, the Go conformance driver, as the tests do:
# CGO_ENABLED=0): on a cold build cache each test's own `go build` would otherwise compile the
# whole dependency tree again while go test runs other packages on every core, and run past
# its bound (a cold CI run killed cmd/manager's build after 5 minutes). Results are discarded;
# only the build cache keeps them.
warm_builds() {
  phase "build the programs the tests run (fills the build cache)"
  CGO_ENABLED=0 go build ./cmd/... ./test/echobackend ./test/conformance/godriver
}

start_components() {
  phase "components: control plane binaries, helm, Chromium, Kafka"
  KUBEBUILDER_ASSETS=$(hack/k8s.sh)
  TCPGW_HELM=$(hack/helm.sh)
  # Debian's chromium unpacked into the cache, for the browser tests (test/browser).
  TCPGW_CHROMIUM=$(hack/chromium.sh)
  export KUBEBUILDER_ASSETS TCPGW_HELM TCPGW_CHROMIUM
  # A broker of this run's own, so parallel runs and stale brokers never interfere.
  KAFKA_STATE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tcpgw-kafka.XXXXXX")
  export KAFKA_STATE_DIR
  trap 'hack/kafka.sh stop >/dev/null 2>&1 || true; rm -rf "$KAFKA_STATE_DIR"' EXIT
  KAFKA_SECURITY=sasl_ssl hack/kafka.sh start >/dev/null
  TCPGW_KAFKA_BOOTSTRAP=$(<"$KAFKA_STATE_DIR/plaintext.bootstrap")
  TCPGW_KAFKA_SECURE_DIR=$KAFKA_STATE_DIR
  export TCPGW_KAFKA_BOOTSTRAP TCPGW_KAFKA_SECURE_DIR
  log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS TCPGW_HELM=$TCPGW_HELM TCPGW_CHROMIUM=$TCPGW_CHROMIUM TCPGW_KAFKA_BOOTSTRAP=$TCPGW_KAFKA_BOOTSTRAP TCPGW_KAFKA_SECURE_DIR=$TCPGW_KAFKA_SECURE_DIR"
}

case "$mode" in
  all)
    phase "lint"
    make --no-print-directory lint
    phase "generated code is up to date"
    make --no-print-directory verify-generated
    run_fuzz
    start_components
    phase "TypeScript SDK (sdk/ts)"
    hack/ts.sh test
    phase "conformance suite against the TypeScript SDK's driver"
    hack/ts.sh conformance
    phase "conformance suite against the TypeScript SDK's driver over WebSocket"
    hack/ts.sh conformance-websocket
    phase "conformance suite against the Go SDK's driver over WebSocket"
    # About 40 s; over TCP the Go driver runs within go test ./... below.
    TCPGW_CONFORMANCE_TRANSPORT=websocket go test -count=1 -timeout "$GO_TEST_TIMEOUT" ./test/conformance/
    phase "Java SDKs (sdk/java)"
    hack/java.sh test
    warm_builds
    phase "go test"
    # The drivers built above, for test/drain's mixed-language drain (unset: it skips them).
    export TCPGW_JAVA_DRIVER='java -jar sdk/java/driver/target/driver.jar'
    export TCPGW_TS_DRIVER='node sdk/ts/dist/src/driver.js'
    status=0
    # ./... stops at nested modules: the Go SDK's (sdk/go) is tested from inside it.
    go test -race -count=1 -timeout "$GO_TEST_TIMEOUT" ./... || status=$?
    (cd sdk/go && go test -race -count=1 -timeout "$GO_TEST_TIMEOUT" ./...) || status=$?
    exit $status
    ;;
  e2e)
    start_components
    warm_builds
    go test -count=1 -timeout "$GO_TEST_TIMEOUT" -tags e2e ./test/cluster/... ./test/e2e/...
    ;;
  fuzz)
    run_fuzz
    ;;
  *)
    die "usage: test.sh all|e2e|fuzz"
    ;;
esac
