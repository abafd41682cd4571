#!/usr/bin/env bash
# `make run`: local Kafka (unless KAFKA_BOOTSTRAP_SERVERS is set), topics, then the services.
# Ctrl-C or SIGTERM stops everything this script started, and nothing it did not start.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=${VENV:-.venv}/bin

started_kafka=0
pids=()
stop_all() {
  # Ignored, not reset: a stop by a process manager signals the whole group, and make passes its own
  # SIGTERM on to this script too. With the default action back, that second signal ended the
  # script in the middle of stopping, and the broker was left running.
  trap '' INT TERM
  trap - EXIT
  kill "$watchdog" 2>/dev/null || true
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$started_kafka" = 1 ]; then scripts/kafka.sh down || true; fi
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# `make run` is our parent, and make does not pass a SIGTERM on to its children: when the parent
# goes away, stop as if we had been signalled.
parent=$PPID
( while kill -0 "$parent" 2>/dev/null; do sleep 1; done; kill -TERM $$ 2>/dev/null ) &
watchdog=$!

if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  if ! scripts/kafka.sh status >/dev/null 2>&1; then
    # Set first: a stop that comes while the broker starts must stop it too (down is a no-op
    # when nothing was started).
    started_kafka=1
    scripts/kafka.sh up
  fi
  export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:${KAFKA_LOCAL_PORT:-9092}
fi

"$bin/ingest-topics" apply

# Without AUTH_FILE: a development principal with every permission and an upload signing key, made
# once under ./data/ (the secret printed when made); with AUTH_FILE set, nothing is made.
if [ -z "${AUTH_FILE:-}" ]; then
  "$bin/ingest-auth" dev data
  export AUTH_FILE=data/auth.yaml
  if [ -z "${UPLOAD_SIGNING_KEY:-}" ]; then UPLOAD_SIGNING_KEY=$(cat data/upload-signing-key); export UPLOAD_SIGNING_KEY; fi
fi

# Static group membership: a sink or importer restarted after a crash gets its partitions back at
# once instead of after the group's session timeout.
export SINK_INSTANCE_ID="${SINK_INSTANCE_ID:-sink-$(hostname)}"
export IMPORTER_INSTANCE_ID="${IMPORTER_INSTANCE_ID:-importer-$(hostname)}"

if [ -x "$bin/ingest-sink" ] && [ "${RUN_SINK:-1}" = 1 ]; then
  "$bin/ingest-sink" & pids+=($!)
fi
if [ -x "$bin/ingest-importer" ] && [ "${RUN_IMPORTER:-1}" = 1 ]; then
  "$bin/ingest-importer" & pids+=($!)
fi
"$bin/ingest-gateway" & pids+=($!)
echo "run.sh: gateway on http://${GATEWAY_HOST:-127.0.0.1}:${GATEWAY_PORT:-8080} (Ctrl-C stops everything)" >&2

# Whichever service exits first (or a signal) ends the run, and the trap stops the rest.
set +e
wait -n "${pids[@]}"
status=$?
echo "run.sh: a service stopped (status $status); stopping the rest" >&2
exit "$status"
