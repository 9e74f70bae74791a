#!/usr/bin/env bash
# ts.sh deps|generate|build|lint|test|conformance|conformance-websocket — the TypeScript SDK
# (sdk/ts) with the machine's Node.js.
#
# deps      npm ci from package-lock.json (exact versions), the npm cache in $CACHE_DIR/npm so
#           every clone shares the downloads; skipped while node_modules matches the lock.
# generate  protobuf code for proto/ into sdk/ts/src/gen (committed; make verify-generated).
# build     tsc into sdk/ts/dist.
# lint      tsc --noEmit (strict) and eslint with typescript-eslint's strict type-checked rules.
# test      build, then node:test; the end-to-end tests start real gateway processes built
#           here (TCPGW_TS_BIN_DIR: gateway, tcpgwctl, kafkatopics) and publish through the
#           Kafka broker at TCPGW_KAFKA_BOOTSTRAP (hack/test.sh starts one; unset: skipped).
# conformance  build, then the cross-language conformance suite (test/conformance) with the
#           SDK's driver (sdk/ts/dist/src/driver.js); it uses TCPGW_KAFKA_BOOTSTRAP when set.
# conformance-websocket  the same suite over WebSocket (TCPGW_CONFORMANCE_TRANSPORT=websocket:
#           the gateways' listen.websocket, ws:// and wss:// URLs, the driver on the ws package).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

SDK=sdk/ts
NODE_MAJOR_MIN=20

check_node() {
  command -v node >/dev/null || die "node not found (Node.js >= $NODE_MAJOR_MIN is needed for sdk/ts)"
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$major" -ge "$NODE_MAJOR_MIN" ] || die "node $(node --version) is too old: sdk/ts needs >= $NODE_MAJOR_MIN"
}

deps() {
  check_node
  local want stamp=$SDK/node_modules/.tcpgw-lock
  want=$(cat "$SDK/package-lock.json" <(node --version) | sha256sum | cut -c1-16)
  if [ -f "$stamp" ] && [ "$(<"$stamp")" = "$want" ]; then
    return
  fi
  log "npm ci in $SDK (cache $CACHE_DIR/npm)"
  (cd "$SDK" && npm ci --cache "$CACHE_DIR/npm" --prefer-offline --no-audit --no-fund --loglevel=warn >&2)
  echo "$want" >"$stamp"
}

generate() {
  deps
  rm -rf "$SDK/src/gen"
  "$(hack/tool.sh buf)" generate --template "$SDK/buf.gen.yaml"
}

build() {
  deps
  (cd "$SDK" && rm -rf dist && npx --no-install tsc -p tsconfig.json)
}

lint() {
  deps
  (cd "$SDK" && npx --no-install tsc -p tsconfig.json --noEmit && npx --no-install eslint --max-warnings 0 .)
}

test_sdk() {
  build
  if [ -z "${TCPGW_TS_BIN_DIR:-}" ]; then
    local dir
    dir=$(mktemp -d "${TMPDIR:-/tmp}/tcpgw-ts.XXXXXX")
    # Expanded now: at EXIT the function's local is gone (set -u would fail the script).
    # shellcheck disable=SC2064
    trap "rm -rf '$dir'" EXIT
    log "building gateway, tcpgwctl and kafkatopics for the end-to-end tests"
    CGO_ENABLED=0 go build -o "$dir/" ./cmd/gateway ./cmd/tcpgwctl ./hack/kafkatopics
    export TCPGW_TS_BIN_DIR=$dir
  fi
  (cd "$SDK" && node --test --test-concurrency=1 dist/test/*.test.js)
}

conformance() {
  build
  TCPGW_CONFORMANCE_DRIVER='node sdk/ts/dist/src/driver.js' TCPGW_CONFORMANCE_TRANSPORT=${1:-tcp} \
    go test -count=1 -timeout "${GO_TEST_TIMEOUT:-20m}" ./test/conformance/
}

case "${1:-}" in
  deps) deps ;;
  generate) generate ;;
  build) build ;;
  lint) lint ;;
  test) test_sdk ;;
  conformance) conformance tcp ;;
  conformance-websocket) conformance websocket ;;
  *) die "usage: ts.sh deps|generate|build|lint|test|conformance|conformance-websocket" ;;
esac
