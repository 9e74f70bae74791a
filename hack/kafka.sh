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
#   KAFKA_START_TIMEOUT  seconds to wait for the broker to answer (default 90).
#   KAFKA_STOP_TIMEOUT   seconds to wait after SIGTERM before SIGKILL (default 30).
#   KAFKA_HEAP_OPTS      JVM heap flags (default -Xms256m -Xmx512m: the machine has 2 cores
#                        and the broker shares them with the tests).
#   KAFKA_OWNER_PID      optional: when that process exits, a detached watcher stops the
#                        broker, so a test binary that dies (panic, -timeout, SIGKILL) does
#                        not leak a java process. test/kafkatest sets it.
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

START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"

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

# two_free_ports prints two distinct free ports (broker listener, controller listener).
two_free_ports() {
  local a b
  a="$(free_port)"
  b="$(free_port)"
  while [[ "$b" == "$a" ]]; do b="$(free_port)"; done
  echo "$a $b"
}

write_config() { # port controller_port data_dir
  local port=$1 cport=$2 data=$3
  cat >"$PROPS_FILE" <<EOF
# Generated by hack/kafka.sh: single-node KRaft test broker (combined broker+controller).
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
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
  rm -rf "$STATE_DIR"/data.* "$PID_FILE" "$BOOTSTRAP_FILE"
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
  local pid
  if pid="$(broker_pid)" && [[ -s "$BOOTSTRAP_FILE" ]]; then
    cat "$BOOTSTRAP_FILE"
    return 0
  fi
  if [[ -n "${pid:-}" ]]; then stop_pid "$pid"; fi   # running but no address: restart cleanly
  remove_data                                         # leftovers of a broker that died

  check_java
  fetch_jars
  set_jvm
  write_ready_check

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
  local port cport data cluster_id pid
  read -r port cport < <(two_free_ports)
  [[ -n "${cport:-}" ]] || die "could not find free ports (free_port needs python3)"
  data="$(mktemp -d "$STATE_DIR/data.XXXXXX")"
  write_config "$port" "$cport" "$data"
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
  log "formatting KRaft storage in $data (cluster $cluster_id)"
  if ! "${TOOL[@]}" -Dlog4j2.configurationFile="$LOG4J_FILE" kafka.tools.StorageTool format \
      -t "$cluster_id" -c "$PROPS_FILE" >>"$LOG_FILE" 2>&1 9>&-; then
    log "formatting KRaft storage failed"
    remove_data
    return 1
  fi

  log "starting Kafka $KAFKA_VERSION on 127.0.0.1:$port (controller :$cport), log $LOG_FILE"
  if run_broker "$port"; then return 0; fi
  remove_data
  if grep -q 'Address already in use' "$LOG_FILE"; then return 3; fi
  return 1
}

# run_broker starts the broker on its written config and data and waits until it answers on
# port. Returns 0 when ready (bootstrap file written); on failure nothing is left running.
run_broker() { # port
  local port=$1 pid
  # setsid: the broker leaves the caller's session and process group, so a Ctrl-C on the
  # caller does not hit it half-way; stop (or the owner watcher) ends it.
  setsid "${JVM[@]}" kafka.Kafka "$PROPS_FILE" </dev/null >>"$LOG_FILE" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$PID_FILE"
  # Watch the owner from now on, so that even a start cut short leaves no broker behind.
  if [[ -n "${KAFKA_OWNER_PID:-}" ]]; then watch_owner "$KAFKA_OWNER_PID" "$pid"; fi

  # The check's own output (its verdict, kafka-clients errors) goes to $READY_LOG. It does
  # not hold the state lock (fd 9), so if this script is killed, `stop` can still run.
  if "${TOOL[@]}" "$READY_SRC" "127.0.0.1:$port" "$pid" "$START_TIMEOUT" >"$READY_LOG" 2>&1 9>&-; then
    echo "127.0.0.1:$port" >"$BOOTSTRAP_FILE"
    return 0
  fi
  stop_pid "$pid" || true
  stop_watcher
  rm -f "$PID_FILE"
  return 1
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
  local addr
  addr="$(<"$BOOTSTRAP_FILE")"
  check_java
  set_jvm
  log "resuming Kafka on $addr"
  run_broker "${addr##*:}" || die "Kafka failed to resume; see $LOG_FILE"
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
