#!/usr/bin/env bash
# hack/kafka.sh start|stop|status|logs — a real single-node Apache Kafka broker for tests.
#
#   start   fetch the broker jars if needed (Maven Central, via hack/kafka/pom.xml), format
#           fresh KRaft storage, start one combined broker+controller on 127.0.0.1 in the
#           background, wait until it answers metadata, then print ONLY its bootstrap
#           address (127.0.0.1:<port>) on stdout. If it already runs, just print the address.
#   stop    stop the broker (SIGTERM, bounded wait, SIGKILL) and remove its data dir.
#   status  print the address and exit 0 if the broker runs, exit 1 otherwise.
#   logs    print the path of the broker log.
#   pause   stop the broker but keep its data, ports and address (an outage, for tests).
#   resume  restart a paused broker on the same address with the same data.
#
# Everything but the address goes to stderr, so `addr=$(hack/kafka.sh start)` works.
#
# Environment:
#   KAFKA_STATE_DIR      pid file, bootstrap file, server.properties, kafka.log and the data
#                        dir (default $CACHE_DIR/kafka-run). One broker per state dir.
#   KAFKA_SECURITY       plaintext (default) or sasl_ssl; read by `start` only (the mode is
#                        recorded in $KAFKA_STATE_DIR/security, and `start` refuses to reuse a
#                        running broker of the other mode). See "sasl_ssl mode" below.
#   KAFKA_START_TIMEOUT  seconds to wait for the broker to answer (default 90).
#   KAFKA_STOP_TIMEOUT   seconds to wait after SIGTERM before SIGKILL (default 30).
#   KAFKA_HEAP_OPTS      JVM heap flags (default -Xms256m -Xmx512m: the machine has 2 cores
#                        and the broker shares them with the tests).
#   KAFKA_OWNER_PID      optional: when that process exits, a detached watcher stops the
#                        broker, so a test binary that dies (panic, -timeout, SIGKILL) does
#                        not leak a java process. test/kafkatest sets it.
#
# sasl_ssl mode (KAFKA_SECURITY=sasl_ssl): the same single broker, with security material
# generated afresh at every start into $KAFKA_STATE_DIR (nothing is committed or cached), and
# four client listeners on 127.0.0.1:
#   SASL_SSL   the address printed and written to `bootstrap`: TLS (server certificate signed
#              by ca.crt, SANs IP:127.0.0.1 and DNS:localhost) then SASL with SCRAM-SHA-256,
#              SCRAM-SHA-512 or PLAIN. No client certificate is asked for.
#   EXPIRED    `expired.bootstrap`: the same as SASL_SSL, but its server certificate (same CA,
#              same SANs) expired yesterday: clients must refuse the handshake.
#   MTLS       `mtls.bootstrap`: TLS only (security protocol SSL) and a client certificate
#              signed by ca.crt is required (client.crt, client.key); no SASL.
#   PLAINTEXT  `plaintext.bootstrap`: no security, for test set-up (topic creation, admin)
#              and inter-broker traffic. Like the CONTROLLER listener it is bound to
#              127.0.0.1 only: a test broker, never reachable from another host.
# Files in $KAFKA_STATE_DIR (PEM; the keys are unencrypted PKCS#8):
#   ca.crt                    the CA that signed every certificate below
#   other-ca.crt              an unrelated CA (certificate only), for "unknown CA" tests
#   client.crt, client.key    a client certificate (CN=tcpgw-client) for the MTLS listener
#   sasl.username             "tcpgw" (no trailing newline, like a Kubernetes Secret key)
#   sasl.password             its random password (hex, no trailing newline): the same user
#                             and password for SCRAM-SHA-256, SCRAM-SHA-512 (credentials
#                             written into the storage at format time) and PLAIN (the
#                             listeners' JAAS config)
#   tls/                      private material of the broker and the CAs (keys, CSRs)
# There is no authorizer: an authenticated user may do anything, so no super user or ACLs
# are configured. The stop command removes the *.bootstrap files; the rest stays for
# post-mortems until the next start regenerates it.
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "$0")/lib.sh"

POM="$REPO_ROOT/hack/kafka/pom.xml"
KAFKA_VERSION="$(sed -n 's:.*<kafka\.version>\(.*\)</kafka\.version>.*:\1:p' "$POM" | head -n 1)"
[[ -n "$KAFKA_VERSION" ]] || die "no <kafka.version> in $POM"
VERSION_DIR="$CACHE_DIR/kafka/$KAFKA_VERSION"
LIBS_DIR="$VERSION_DIR/libs"

STATE_DIR="${KAFKA_STATE_DIR:-$CACHE_DIR/kafka-run}"
PID_FILE="$STATE_DIR/kafka.pid"
BOOTSTRAP_FILE="$STATE_DIR/bootstrap"
PROPS_FILE="$STATE_DIR/server.properties"
LOG4J_FILE="$STATE_DIR/log4j2.properties"
LOG_FILE="$STATE_DIR/kafka.log"
READY_SRC="$STATE_DIR/KafkaReady.java"
READY_LOG="$STATE_DIR/ready.log"
WATCH_PID_FILE="$STATE_DIR/watch.pid"
SECURITY_FILE="$STATE_DIR/security"
TLS_DIR="$STATE_DIR/tls"

START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
SECURITY="${KAFKA_SECURITY:-plaintext}"
case "$SECURITY" in
  plaintext | sasl_ssl) ;;
  *) die "KAFKA_SECURITY=$SECURITY: want plaintext or sasl_ssl" ;;
esac
SASL_USER=tcpgw

usage() { echo "usage: $0 start|stop|status|logs|pause|resume" >&2; exit 2; }

# lock_state serialises start/stop on one state dir (fd 9; must not leak into the broker).
lock_state() {
  mkdir -p "$STATE_DIR"
  exec 9>"$STATE_DIR/.lock"
  flock 9
}

# broker_pid prints the pid of the running broker of this state dir, or fails. The command
# line is checked too, so a recycled pid of an unrelated process is never mistaken for it.
broker_pid() {
  local pid cmdline
  [[ -f "$PID_FILE" ]] || return 1
  pid="$(<"$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmdline" == *"kafka.Kafka $PROPS_FILE"* ]] || return 1
  echo "$pid"
}

# fetch_jars resolves the broker jars into $LIBS_DIR once. Maven downloads into a temp dir
# that is renamed into place only when complete, so an interrupted fetch never looks like a
# finished one; a lock makes concurrent starts (parallel test packages) fetch only once.
fetch_jars() {
  [[ -d "$LIBS_DIR" ]] && return 0
  command -v mvn >/dev/null || die "mvn not found on PATH (needed once to fetch Kafka $KAFKA_VERSION)"
  mkdir -p "$VERSION_DIR"
  exec 8>"$VERSION_DIR/.fetch.lock"
  flock 8
  if [[ -d "$LIBS_DIR" ]]; then exec 8>&-; return 0; fi
  rm -rf "$VERSION_DIR"/.libs.tmp.*   # left by interrupted fetches; we hold the lock
  local tmp start
  tmp="$(mktemp -d "$VERSION_DIR/.libs.tmp.XXXXXX")"
  start=$SECONDS
  log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $LIBS_DIR"
  # mvn's output goes to stderr (stdout is for the address only), minus the colour escapes
  # Debian's mvn prints even in batch mode.
  if ! mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
      -DoutputDirectory="$tmp" -DincludeScope=runtime 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2; then
    rm -rf "$tmp"
    die "mvn failed to fetch Kafka $KAFKA_VERSION"
  fi
  [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || { rm -rf "$tmp"; die "fetch incomplete: no kafka_2.13-$KAFKA_VERSION.jar"; }
  mv -T "$tmp" "$LIBS_DIR"
  exec 8>&-
  log "fetched $(ls "$LIBS_DIR" | wc -l) jars in $((SECONDS - start))s"
}

check_java() {
  command -v java >/dev/null || die "java not found on PATH (Kafka $KAFKA_VERSION needs Java 17+)"
  local v
  v="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p')"
  [[ "${v%%.*}" -ge 17 ]] 2>/dev/null || die "Kafka $KAFKA_VERSION needs Java 17+, found java.specification.version=$v"
}

# free_ports N prints N distinct ports that are free now.
free_ports() {
  local n=$1 p ports=() tries
  for ((tries = 0; ${#ports[@]} < n; tries++)); do
    ((tries < n * 10)) || return 1
    p="$(free_port)"
    [[ -n "$p" ]] || return 1
    [[ " ${ports[*]} " == *" $p "* ]] || ports+=("$p")
  done
  echo "${ports[*]}"
}

# write_config writes server.properties for the state's security mode; the sasl_ssl ports
# are ignored in plaintext mode.
write_config() { # port controller_port data_dir [sasl_ssl_port expired_port mtls_port]
  local port=$1 cport=$2 data=$3 sport=${4:-} eport=${5:-} mport=${6:-}
  local listeners="PLAINTEXT://127.0.0.1:$port"
  local protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  if [[ "$SECURITY" == sasl_ssl ]]; then
    listeners="SASL_SSL://127.0.0.1:$sport,EXPIRED://127.0.0.1:$eport,MTLS://127.0.0.1:$mport,$listeners"
    protocols="SASL_SSL:SASL_SSL,EXPIRED:SASL_SSL,MTLS:SSL,$protocols"
  fi
  cat >"$PROPS_FILE" <<EOF
# Generated by hack/kafka.sh: single-node KRaft test broker (combined broker+controller).
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
controller.listener.names=CONTROLLER
listeners=$listeners,CONTROLLER://127.0.0.1:$cport
advertised.listeners=$listeners
# Inter-broker and controller traffic stay in clear, on 127.0.0.1 only (a single test broker).
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocols
log.dirs=$data

# One broker: every internal topic must live with replication factor 1.
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Fewer partitions for internal topics than the default 50: __consumer_offsets is created
# on the first group request, and 50 partitions make that first request slow here.
offsets.topic.num.partitions=5
transaction.state.log.num.partitions=5
# Consumer groups form at once instead of waiting 3 s for more members.
group.initial.rebalance.delay.ms=0

# Tests create their topics explicitly (test/kafkatest.CreateTopic, unique names). With
# auto-creation off, a typo or a producer racing topic creation fails loudly instead of
# silently creating a 1-partition topic.
auto.create.topics.enable=false
num.partitions=1
delete.topic.enable=true

# Small thread pools: 2 cores shared with the tests.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4
log.cleaner.threads=1
EOF
  if [[ "$SECURITY" == sasl_ssl ]]; then write_security_config; fi
  cat >"$LOG4J_FILE" <<'EOF'
# Generated by hack/kafka.sh: broker log to stdout (redirected to kafka.log).
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
}

# write_security_config appends the sasl_ssl listeners' settings to server.properties.
write_security_config() {
  local l pw scram plain
  pw="$(<"$STATE_DIR/sasl.password")"
  scram='org.apache.kafka.common.security.scram.ScramLoginModule required;'
  plain="org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER=\"$pw\";"
  {
    echo
    echo "# sasl_ssl mode (see the header of hack/kafka.sh). SCRAM credentials live in the metadata"
    echo "# (written by the format tool); PLAIN checks the user_<name> entries of its JAAS config."
    for l in sasl_ssl expired; do
      local pem="$TLS_DIR/server.pem"
      [[ $l == expired ]] && pem="$TLS_DIR/expired.pem"
      echo "listener.name.$l.ssl.keystore.type=PEM"
      echo "listener.name.$l.ssl.keystore.location=$pem"
      echo "listener.name.$l.sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN"
      echo "listener.name.$l.scram-sha-256.sasl.jaas.config=$scram"
      echo "listener.name.$l.scram-sha-512.sasl.jaas.config=$scram"
      echo "listener.name.$l.plain.sasl.jaas.config=$plain"
    done
    echo "listener.name.mtls.ssl.keystore.type=PEM"
    echo "listener.name.mtls.ssl.keystore.location=$TLS_DIR/server.pem"
    echo "listener.name.mtls.ssl.truststore.type=PEM"
    echo "listener.name.mtls.ssl.truststore.location=$STATE_DIR/ca.crt"
    echo "listener.name.mtls.ssl.client.auth=required"
  } >>"$PROPS_FILE"
}

# gen_security_material writes the sasl_ssl mode's CAs, certificates and SASL password into
# the state dir (file list in the header). EC P-256 keys: generated in milliseconds.
gen_security_material() {
  command -v openssl >/dev/null || die "openssl not found on PATH (needed for KAFKA_SECURITY=sasl_ssl)"
  rm -rf "$TLS_DIR" "$STATE_DIR"/{ca.crt,other-ca.crt,client.crt,client.key,sasl.username,sasl.password}
  mkdir -p "$TLS_DIR/issued"
  : >"$TLS_DIR/index.txt"
  local cnf="$TLS_DIR/openssl.cnf" out="$TLS_DIR/openssl.log"
  # `openssl ca` rather than `openssl x509 -req`: only it takes explicit validity dates in
  # OpenSSL 3.0, which the expired certificate needs.
  cat >"$cnf" <<EOF
[ req ]
distinguished_name = dn
[ dn ]
[ ca ]
default_ca = test_ca
[ test_ca ]
database = $TLS_DIR/index.txt
new_certs_dir = $TLS_DIR/issued
rand_serial = yes
default_md = sha256
policy = any_cn
unique_subject = no
copy_extensions = none
[ any_cn ]
commonName = supplied
[ ca_ext ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ server_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
authorityKeyIdentifier = keyid
[ client_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
EOF
  local newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
  # leaf NAME CN EXTENSIONS START END: a key and a certificate signed by ca.crt.
  leaf() {
    openssl req -new -config "$cnf" "${newkey[@]}" -keyout "$TLS_DIR/$1.key" \
      -out "$TLS_DIR/$1.csr" -subj "/CN=$2" &&
      openssl ca -batch -notext -config "$cnf" -cert "$STATE_DIR/ca.crt" -keyfile "$TLS_DIR/ca.key" \
        -extensions "$3" -startdate "$4" -enddate "$5" -in "$TLS_DIR/$1.csr" -out "$TLS_DIR/$1.crt"
  }
  local hour_ago two_days_ago yesterday in_30_days
  hour_ago="$(date -u -d '1 hour ago' +%Y%m%d%H%M%SZ)"
  two_days_ago="$(date -u -d '2 days ago' +%Y%m%d%H%M%SZ)"
  yesterday="$(date -u -d '1 day ago' +%Y%m%d%H%M%SZ)"
  in_30_days="$(date -u -d '30 days' +%Y%m%d%H%M%SZ)"
  if ! {
    openssl req -x509 -new -config "$cnf" -extensions ca_ext "${newkey[@]}" -days 30 \
      -subj "/CN=tcpgw test CA" -keyout "$TLS_DIR/ca.key" -out "$STATE_DIR/ca.crt" &&
      openssl req -x509 -new -config "$cnf" -extensions ca_ext "${newkey[@]}" -days 30 \
        -subj "/CN=tcpgw unrelated test CA" -keyout "$TLS_DIR/other-ca.key" -out "$STATE_DIR/other-ca.crt" &&
      leaf server localhost server_ext "$hour_ago" "$in_30_days" &&
      leaf expired localhost server_ext "$two_days_ago" "$yesterday" &&
      leaf client tcpgw-client client_ext "$hour_ago" "$in_30_days"
  } >"$out" 2>&1; then
    cat "$out" >&2
    die "generating the test certificates failed (openssl output above)"
  fi
  # Kafka's PEM key store: the private key and the certificate chain in one file.
  cat "$TLS_DIR/server.key" "$TLS_DIR/server.crt" >"$TLS_DIR/server.pem"
  cat "$TLS_DIR/expired.key" "$TLS_DIR/expired.crt" >"$TLS_DIR/expired.pem"
  cp "$TLS_DIR/client.crt" "$STATE_DIR/client.crt"
  cp "$TLS_DIR/client.key" "$STATE_DIR/client.key"
  printf '%s' "$SASL_USER" >"$STATE_DIR/sasl.username"
  printf '%s' "$(openssl rand -hex 16)" >"$STATE_DIR/sasl.password"
}

# scram_args prints the format tool's options that store the SASL user's SCRAM credentials.
scram_args() {
  local pw m
  [[ "$SECURITY" == sasl_ssl ]] || return 0
  pw="$(<"$STATE_DIR/sasl.password")"
  for m in SCRAM-SHA-256 SCRAM-SHA-512; do
    printf '%s\n' --add-scram "$m=[name=$SASL_USER,password=$pw]"
  done
}

# listener_addr prints the host:port of listener NAME from the written config.
listener_addr() { # NAME
  sed -n 's/^advertised\.listeners=//p' "$PROPS_FILE" | tr ',' '\n' | sed -n "s|^$1://||p"
}

# write_ready_check writes a tiny Java program run with the JDK's source launcher (no build
# step): it asks the broker for cluster metadata with kafka-clients' Admin API until the
# broker lists itself as a node, answers ListTopics and has a group coordinator (offsets
# topic created), or the deadline passes, or the broker process dies. (kafka-tools, which has BrokerApiVersionsCommand, is not published for every
# Kafka version, so the check relies only on kafka-clients.)
write_ready_check() {
  cat >"$READY_SRC" <<'EOF'
import java.util.Collection;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.Node;

public class KafkaReady {
  static long deadline;

  // get waits for f, at most 3 s and never past the deadline.
  static <T> T get(KafkaFuture<T> f) throws Exception {
    long left = Math.min(deadline - System.nanoTime(), TimeUnit.SECONDS.toNanos(3));
    return f.get(Math.max(left, 1), TimeUnit.NANOSECONDS);
  }

  public static void main(String[] args) throws Exception {
    String bootstrap = args[0];
    long pid = Long.parseLong(args[1]);
    deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Long.parseLong(args[2]));
    Properties p = new Properties();
    p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "2000");
    p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "3000");
    p.put(AdminClientConfig.RECONNECT_BACKOFF_MS_CONFIG, "100");
    p.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "500");
    String last = "no answer yet";
    try (Admin admin = Admin.create(p)) {
      while (System.nanoTime() < deadline) {
        if (!ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) {
          System.err.println("KafkaReady: broker process " + pid + " exited");
          System.exit(2);
        }
        try {
          DescribeClusterResult c = admin.describeCluster();
          Collection<Node> nodes = get(c.nodes());
          if (nodes.isEmpty()) {
            throw new IllegalStateException("no broker in the cluster metadata yet");
          }
          Node controller = get(c.controller());
          get(admin.listTopics().names());
          // A group lookup makes the broker create __consumer_offsets now rather than on
          // the first test's group request (clients then see "coordinator not available"
          // and back off for seconds).
          get(admin.listConsumerGroupOffsets("tcpgw-kafka-ready").partitionsToOffsetAndMetadata());
          System.err.println("KafkaReady: cluster " + get(c.clusterId()) + " nodes=" + nodes
              + " controller=" + controller + ", group coordinator ready");
          System.exit(0);
        } catch (Exception e) {
          last = e.toString();
        }
        Thread.sleep(200);
      }
    }
    System.err.println("KafkaReady: broker at " + bootstrap + " did not answer in time: " + last);
    System.exit(1);
  }
}
EOF
}

# watch_owner stops the broker once KAFKA_OWNER_PID exits (or ends by itself once the broker
# is gone). Fully detached from the caller's stdio so `$(kafka.sh start)` returns at once.
watch_owner() { # owner_pid broker_pid
  local owner=$1 pid=$2 self
  self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
  KAFKA_STATE_DIR="$STATE_DIR" setsid bash -c '
    while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done
    if kill -0 "$2" 2>/dev/null; then exec bash "$3" stop; fi
  ' kafka-owner-watch "$owner" "$pid" "$self" </dev/null >>"$LOG_FILE" 2>&1 9>&- &
  echo $! >"$WATCH_PID_FILE"
}

# stop_watcher ends the owner watcher, unless this is the watcher (it execs `stop`).
stop_watcher() {
  local pid cmdline
  [[ -f "$WATCH_PID_FILE" ]] || return 0
  pid="$(<"$WATCH_PID_FILE")"
  rm -f "$WATCH_PID_FILE"
  [[ "$pid" =~ ^[0-9]+$ && "$pid" != "$$" ]] || return 0
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 0
  if [[ "$cmdline" == *kafka-owner-watch* ]]; then kill "$pid" 2>/dev/null || true; fi
}

stop_pid() { # pid
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "broker $pid still running ${STOP_TIMEOUT}s after SIGTERM; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  die "broker $pid survived SIGKILL"
}

# remove_data removes the broker's data dir(s) (always $STATE_DIR/data.XXXXXX) and the files
# that describe a running broker; the config and logs stay for post-mortems.
remove_data() {
  rm -rf "$STATE_DIR"/data.* "$PID_FILE" "$BOOTSTRAP_FILE" "$STATE_DIR"/*.bootstrap
}

# set_jvm defines the java command lines of the broker (JVM) and of the tools (TOOL).
set_jvm() {
  # Broker JVM: C1 only (TieredStopAtLevel=1) starts ~1.5 s faster here and leaves the two
  # cores to the tests; a test broker never needs C2's peak throughput.
  # shellcheck disable=SC2206 # HEAP_OPTS is meant to split into several flags
  JVM=(java $HEAP_OPTS -XX:TieredStopAtLevel=1 -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true -Dlog4j2.shutdownHookEnabled=false
    -Dlog4j2.configurationFile="$LOG4J_FILE" -cp "$LIBS_DIR/*")
  # The format tool and the readiness check are short-lived JVMs: C1 only and the serial GC
  # start them about a second faster each.
  TOOL=(java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xmx256m -Djava.awt.headless=true
    -cp "$LIBS_DIR/*")
}

cmd_start() {
  lock_state
  local pid running_mode
  if pid="$(broker_pid)" && [[ -s "$BOOTSTRAP_FILE" ]]; then
    running_mode="$(cat "$SECURITY_FILE" 2>/dev/null || echo plaintext)"
    [[ "$running_mode" == "$SECURITY" ]] ||
      die "a $running_mode broker already runs in $STATE_DIR; stop it or use another KAFKA_STATE_DIR for $SECURITY"
    cat "$BOOTSTRAP_FILE"
    return 0
  fi
  if [[ -n "${pid:-}" ]]; then stop_pid "$pid"; fi   # running but no address: restart cleanly
  remove_data                                         # leftovers of a broker that died

  check_java
  fetch_jars
  set_jvm
  write_ready_check
  echo "$SECURITY" >"$SECURITY_FILE"
  if [[ "$SECURITY" == sasl_ssl ]]; then gen_security_material; fi

  local t0=$SECONDS attempt rc
  # free_port only finds ports free *now*; another process may take one before the broker
  # binds it. That is the one failure worth retrying, with new ports.
  for attempt in 1 2 3; do
    rc=0
    launch_once || rc=$?
    case $rc in
      0)
        log "Kafka ready at $(<"$BOOTSTRAP_FILE") in $((SECONDS - t0))s (pid $(<"$PID_FILE"))"
        cat "$BOOTSTRAP_FILE"
        return 0
        ;;
      3) log "port taken before the broker could bind it (attempt $attempt); retrying with new ports" ;;
      *) break ;;
    esac
  done
  log "Kafka failed to start; last 50 lines of $LOG_FILE:"
  tail -n 50 "$LOG_FILE" >&2
  log "readiness check ($READY_LOG):"
  tail -n 20 "$READY_LOG" >&2 2>/dev/null || true
  die "Kafka $KAFKA_VERSION failed to start (state dir $STATE_DIR)"
}

# launch_once formats fresh storage and starts the broker on new ports, then waits until it
# answers. Returns 0 when ready (bootstrap file written), 3 when the broker died because a
# port was taken, 1 otherwise; on failure nothing is left running.
launch_once() {
  local port cport sport eport mport data cluster_id n=2
  [[ "$SECURITY" == sasl_ssl ]] && n=5
  read -r port cport sport eport mport < <(free_ports "$n")
  [[ -n "${cport:-}" ]] || die "could not find free ports (free_port needs python3)"
  data="$(mktemp -d "$STATE_DIR/data.XXXXXX")"
  write_config "$port" "$cport" "$data" "$sport" "$eport" "$mport"
  if [[ -f "$LOG_FILE" ]]; then mv -f "$LOG_FILE" "$LOG_FILE.prev"; fi
  : >"$LOG_FILE"

  # Kafka's random-uuid format (16 random bytes, URL-safe base64 without padding), without
  # paying a JVM start for `StorageTool random-uuid`.
  # An id starting with "-" would be read as an option by the format tool's parser (1 in 64).
  cluster_id="$(python3 -c '
import base64, uuid
while True:
    s = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not s.startswith("-"):
        print(s)
        break
')"
  local scram=()
  mapfile -t scram < <(scram_args)
  log "formatting KRaft storage in $data (cluster $cluster_id)"
  if ! "${TOOL[@]}" -Dlog4j2.configurationFile="$LOG4J_FILE" kafka.tools.StorageTool format \
      -t "$cluster_id" -c "$PROPS_FILE" "${scram[@]}" >>"$LOG_FILE" 2>&1 9>&-; then
    log "formatting KRaft storage failed"
    remove_data
    return 1
  fi

  log "starting Kafka $KAFKA_VERSION ($SECURITY) on 127.0.0.1:$port (controller :$cport${sport:+, SASL_SSL :$sport, expired :$eport, mTLS :$mport}), log $LOG_FILE"
  if run_broker; then return 0; fi
  remove_data
  if grep -q 'Address already in use' "$LOG_FILE"; then return 3; fi
  return 1
}

# run_broker starts the broker on its written config and data and waits until it answers on
# its PLAINTEXT listener. Returns 0 when ready (bootstrap files written); on failure nothing
# is left running.
run_broker() {
  local plain pid
  plain="$(listener_addr PLAINTEXT)"
  # setsid: the broker leaves the caller's session and process group, so a Ctrl-C on the
  # caller does not hit it half-way; stop (or the owner watcher) ends it.
  setsid "${JVM[@]}" kafka.Kafka "$PROPS_FILE" </dev/null >>"$LOG_FILE" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$PID_FILE"
  # Watch the owner from now on, so that even a start cut short leaves no broker behind.
  if [[ -n "${KAFKA_OWNER_PID:-}" ]]; then watch_owner "$KAFKA_OWNER_PID" "$pid"; fi

  # The check's own output (its verdict, kafka-clients errors) goes to $READY_LOG. It does
  # not hold the state lock (fd 9), so if this script is killed, `stop` can still run.
  if "${TOOL[@]}" "$READY_SRC" "$plain" "$pid" "$START_TIMEOUT" >"$READY_LOG" 2>&1 9>&-; then
    write_bootstraps
    return 0
  fi
  stop_pid "$pid" || true
  stop_watcher
  rm -f "$PID_FILE"
  return 1
}

# write_bootstraps writes the address files of a ready broker: `bootstrap` is the PLAINTEXT
# listener, or in sasl_ssl mode the SASL_SSL one with the others beside it.
write_bootstraps() {
  local sasl
  sasl="$(listener_addr SASL_SSL)"
  if [[ -z "$sasl" ]]; then
    listener_addr PLAINTEXT >"$BOOTSTRAP_FILE"
    return 0
  fi
  listener_addr PLAINTEXT >"$STATE_DIR/plaintext.bootstrap"
  listener_addr EXPIRED >"$STATE_DIR/expired.bootstrap"
  listener_addr MTLS >"$STATE_DIR/mtls.bootstrap"
  echo "$sasl" >"$BOOTSTRAP_FILE"
}

# cmd_pause stops the broker but keeps its data, ports and address: `resume` brings the same
# broker back, as when a real broker restarts. For tests of outages.
cmd_pause() {
  lock_state
  local pid
  pid="$(broker_pid)" || die "no broker running in $STATE_DIR"
  log "pausing Kafka (pid $pid); data kept"
  stop_pid "$pid"
  stop_watcher
  rm -f "$PID_FILE"
}

# cmd_resume restarts a paused broker on the same address and data.
cmd_resume() {
  lock_state
  if broker_pid >/dev/null; then cat "$BOOTSTRAP_FILE"; return 0; fi
  [[ -s "$BOOTSTRAP_FILE" && -f "$PROPS_FILE" ]] || die "no paused broker in $STATE_DIR"
  check_java
  set_jvm
  log "resuming Kafka on $(<"$BOOTSTRAP_FILE")"
  run_broker || die "Kafka failed to resume; see $LOG_FILE"
  cat "$BOOTSTRAP_FILE"
}

cmd_stop() {
  [[ -d "$STATE_DIR" ]] || return 0
  lock_state
  local pid
  if pid="$(broker_pid)"; then
    log "stopping Kafka (pid $pid)"
    stop_pid "$pid"
  fi
  stop_watcher
  remove_data
}

cmd_status() {
  if broker_pid >/dev/null && [[ -s "$BOOTSTRAP_FILE" ]]; then
    cat "$BOOTSTRAP_FILE"
    return 0
  fi
  return 1
}

case "${1:-}" in
  start) cmd_start ;;
  pause) cmd_pause ;;
  resume) cmd_resume ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  logs) echo "$LOG_FILE" ;;
  *) usage ;;
esac
