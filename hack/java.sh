#!/usr/bin/env bash
# hack/java.sh test|lock|conformance|conformance-websocket|mvn ARGS... — builds and tests the Java
# SDKs (sdk/java) with a pinned Maven and a pinned dependency set.
#
#   test   build sdk/java (protoc generates the lite message classes from proto/), run its JUnit
#          tests, then check that every file Maven resolved (dependencies of every module,
#          plugins and their dependencies, protoc, the Android API signature) has the sha256 in
#          sdk/java/dependencies.lock (a changed or added artifact fails the run), then run the
#          conformance suite (test/conformance) against the Java driver (sdk/java/driver), over
#          TCP, then over WebSocket (TCPGW_CONFORMANCE_TRANSPORT=websocket: ws:// and wss:// URLs).
#   conformance, conformance-websocket
#          build the driver (no tests), then run only that conformance run.
#   lock   the same build without tests, then rewrite sdk/java/dependencies.lock (after a
#          deliberate version change; review the diff).
#   mvn    run the pinned Maven on sdk/java with the project's local repository.
#
# Maven itself is pinned (MAVEN_VERSION, its sha512 below): the machine's mvn only bootstraps
# it once, fetching the distribution from Maven Central as an artifact into $CACHE_DIR. Every
# artifact lives in $CACHE_DIR/m2 (never ~/.m2), shared by the clones of the machine.
#
# Environment: the tests that need them read TCPGW_KAFKA_BOOTSTRAP (a plaintext broker; the
# push SDK's Kafka tests are skipped without it, the conformance suite needs it) and build
# cmd/gateway with the go on PATH. JAVA_SDK_TESTS: a surefire -Dtest filter (default: all).
# JAVA_CONFORMANCE=0 skips the conformance suite.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

MAVEN_VERSION=3.9.16
MAVEN_SHA512=831a8591fe20c8243b1dbe7d71e3244f31d1665b0804b2e825e38cbbe5ce0cafb8338851f90780735568773e0a6cd07bbec107cda0b896b008b861075358b6f6
# The dependency plugin that fetches the distribution (the same version the poms pin).
BOOT_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

SDK="$REPO_ROOT/sdk/java"
LOCK="$SDK/dependencies.lock"
M2="$CACHE_DIR/m2"

# maven prints the path of the pinned mvn, fetching it first if needed.
maven() {
  local home="$CACHE_DIR/maven/apache-maven-$MAVEN_VERSION"
  if [ ! -x "$home/bin/mvn" ]; then
    command -v mvn >/dev/null || die "mvn not found on PATH (needed once to fetch Maven $MAVEN_VERSION)"
    local tmp
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/tcpgw-maven.XXXXXX")
    log "fetching Maven $MAVEN_VERSION into $CACHE_DIR/maven"
    mvn -q -B -Dstyle.color=never -Dmaven.repo.local="$M2" "$BOOT_PLUGIN:copy" \
      -Dartifact="org.apache.maven:apache-maven:$MAVEN_VERSION:tar.gz:bin" -DoutputDirectory="$tmp" >&2 \
      || { rm -rf "$tmp"; die "mvn failed to fetch Maven $MAVEN_VERSION"; }
    local tgz="$tmp/apache-maven-$MAVEN_VERSION-bin.tar.gz"
    echo "$MAVEN_SHA512  $tgz" | sha512sum -c --quiet - >&2 || { rm -rf "$tmp"; die "Maven $MAVEN_VERSION: sha512 mismatch"; }
    mkdir -p "$CACHE_DIR/maven"
    tar -xzf "$tgz" -C "$tmp"
    rm -rf "$home"
    mv "$tmp/apache-maven-$MAVEN_VERSION" "$home"
    rm -rf "$tmp"
  fi
  echo "$home/bin/mvn"
}

# run_mvn ARGS: the pinned Maven, quiet, in batch mode, on sdk/java.
run_mvn() {
  local mvn
  mvn=$(maven)
  # One build thread, a small heap: the machine's 2 cores are shared.
  MAVEN_OPTS="${MAVEN_OPTS:--Xmx512m -XX:TieredStopAtLevel=1}" \
    "$mvn" -B -q -Dstyle.color=never -Dmaven.repo.local="$M2" -f "$SDK/pom.xml" "$@"
}

# resolved prints "sha256  coordinates" for every artifact the last build resolved, sorted
# and without duplicates: each module's dependencies (target/resolved-dependencies.txt),
# every plugin with its dependencies (target/resolved-plugins.txt), protoc and the Android API
# signature.
resolved() {
  local f line coords path
  for f in "$SDK"/*/target/resolved-dependencies.txt "$SDK"/target/resolved-plugins.txt "$SDK"/*/target/resolved-plugins.txt; do
    [ -f "$f" ] || continue
    while IFS= read -r line; do
      # "   group:artifact:type[:classifier]:version[:scope]:/abs/path[ -- module ...]"
      line=${line%% -- *}
      line=$(sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' <<<"$line")
      case "$line" in *:/*) ;; *) continue ;; esac
      path=/${line#*:/}
      coords=${line%%:/*}
      # Drop the scope (it differs between modules; the file is what matters).
      coords=$(sed -E 's/:(compile|test|runtime|provided|system)$//' <<<"$coords")
      [ -f "$path" ] || die "resolved file missing: $path"
      printf '%s  %s\n' "$(sha256sum "$path" | cut -d' ' -f1)" "$coords"
    done <"$f"
  done
  # protoc is fetched by the protobuf plugin, not listed by the dependency plugin.
  local v protoc
  v=$(sed -n 's:.*<protobuf.version>\(.*\)</protobuf.version>.*:\1:p' "$SDK/pom.xml")
  protoc="$M2/com/google/protobuf/protoc/$v/protoc-$v-linux-x86_64.exe"
  [ -f "$protoc" ] || die "protoc $v missing from $M2"
  printf '%s  com.google.protobuf:protoc:exe:linux-x86_64:%s\n' "$(sha256sum "$protoc" | cut -d' ' -f1)" "$v"
  # The Android API signature animal-sniffer checks the client against, resolved by the plugin.
  local sig
  sig=$(sed -n '/<artifactId>android-api-level-26<\/artifactId>/{n;s:.*<version>\(.*\)</version>.*:\1:p}' "$SDK/client/pom.xml")
  sig="$M2/net/sf/androidscents/signature/android-api-level-26/$sig/android-api-level-26-$sig.signature"
  [ -f "$sig" ] || die "Android API signature missing: $sig"
  printf '%s  net.sf.androidscents.signature:android-api-level-26:signature:%s\n' "$(sha256sum "$sig" | cut -d' ' -f1)" "$(basename "$(dirname "$sig")")"
}

lock_header() {
  echo "# sdk/java/dependencies.lock — sha256 of every artifact the Java SDK build resolves"
  echo "# (module dependencies, plugins and their dependencies, protoc). Written by"
  echo "# 'hack/java.sh lock', checked by 'hack/java.sh test' (make test). Do not edit."
}

# conformance TRANSPORT: the conformance suite against the Java driver (built) over TRANSPORT.
conformance() {
  log "conformance suite against the Java driver over $1"
  TCPGW_CONFORMANCE_DRIVER='java -jar sdk/java/driver/target/driver.jar' TCPGW_CONFORMANCE_TRANSPORT=$1 \
    go test -count=1 -timeout 15m ./test/conformance/
}

mode=${1:-test}
case "$mode" in
  test)
    args=(verify)
    [ -n "${JAVA_SDK_TESTS:-}" ] && args+=("-Dtest=$JAVA_SDK_TESTS" -Dsurefire.failIfNoSpecifiedTests=false)
    rm -rf "$SDK"/*/target/surefire-reports # so that the summary below is this run's
    status=0
    run_mvn "${args[@]}" || status=$?
    # Surefire's per-class summary, so the output says what ran (mvn -q hides it).
    for r in "$SDK"/*/target/surefire-reports/*.txt; do
      [ -f "$r" ] && sed -n 's/^Tests run:/  &/p' "$r" | sed "s|^|$(basename "$r" .txt): |"
    done
    [ "$status" -eq 0 ] || die "the Java SDK build or its tests failed (reports: sdk/java/*/target/surefire-reports)"
    if ! diff -u <(grep -v '^#' "$LOCK") <(resolved | sort -u -k2) >&2; then
      die "the resolved Java artifacts differ from sdk/java/dependencies.lock (see the diff above; after a deliberate change run 'hack/java.sh lock')"
    fi
    if [ "${JAVA_CONFORMANCE:-1}" != 0 ]; then
      (cd "$REPO_ROOT" && conformance tcp && conformance websocket)
    fi
    ;;
  conformance | conformance-websocket)
    run_mvn -DskipTests verify
    transport=tcp
    [ "$mode" = conformance ] || transport=websocket
    (cd "$REPO_ROOT" && conformance "$transport")
    ;;
  lock)
    run_mvn -DskipTests verify
    { lock_header; resolved | sort -u -k2; } >"$LOCK"
    log "wrote $LOCK ($(grep -vc '^#' "$LOCK") artifacts)"
    ;;
  mvn)
    shift
    run_mvn "$@"
    ;;
  *)
    die "usage: java.sh test|lock|conformance|conformance-websocket|mvn ARGS..."
    ;;
esac
