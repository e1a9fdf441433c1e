#!/usr/bin/env bash
# Brings the local stack up (no Docker): PostgreSQL, the Tansu broker with
# SQLite storage under .stack/ (restarts lose nothing), the development CA
# and per-service certificates. Idempotent: what already runs is reused.
#   scripts/stack.sh up      start (default)
#   scripts/stack.sh down    stop the mesh the demo left running, and the broker
#   scripts/stack.sh mesh-down   stop only the demo's mesh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PWD/.tools/node_modules/.bin:$PATH"
STACK="$PWD/.stack"
BROKER_PORT="${DIBAO_BROKER_PORT:-19092}"
IDENTITIES="civil-affairs poverty-alleviation verification-hub roster-comparison gateway ops pipeline-probe
  adapter-public-security adapter-human-resources adapter-housing adapter-commerce adapter-bank adapter-tax
  adapter-disability-federation adapter-medical-insurance
  department-frontend"

# The mesh the demo leaves running (scripts/demo.sh), by the pids it wrote.
mesh_down() {
  if [ -f "$STACK/mesh.pids" ]; then
    # shellcheck disable=SC2046
    kill $(cat "$STACK/mesh.pids") 2>/dev/null && echo "[stack] the demo's mesh stopped" || true
    rm -f "$STACK/mesh.pids"
  fi
}

case "${1:-up}" in
  mesh-down) mesh_down; exit 0 ;;
  down)
    mesh_down
    if [ -f "$STACK/tansu.pid" ] && kill -0 "$(cat "$STACK/tansu.pid")" 2>/dev/null; then
      kill "$(cat "$STACK/tansu.pid")" && echo "[stack] broker stopped"
    fi
    exit 0 ;;
  up) ;;
  *) echo "usage: scripts/stack.sh up|down|mesh-down" >&2; exit 2 ;;
esac

# On a first run Tansu builds in the background while the workspace does:
# every binary and the examples the demo runs.
scripts/deps.sh start
echo "[stack] building the workspace"
cargo build --quiet --workspace --bins \
  --example demo_county --example demo_sync --example demo_comparison --example demo_console
scripts/deps.sh broker
mkdir -p "$STACK/tansu" "$STACK/logs"

if ! (exec 3<>"/dev/tcp/127.0.0.1/$BROKER_PORT") 2>/dev/null; then
  echo "[stack] starting Tansu on 127.0.0.1:$BROKER_PORT (data in .stack/tansu)"
  # Detached from our stdio, so a caller piping our output is not held open.
  (cd "$STACK/tansu" && exec setsid tansu broker \
      --listener-url "tcp://127.0.0.1:$BROKER_PORT" \
      --advertised-listener-url "tcp://127.0.0.1:$BROKER_PORT" \
      --storage-engine sqlite://tansu.db) </dev/null >"$STACK/logs/tansu.log" 2>&1 &
  echo $! >"$STACK/tansu.pid"
  for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$BROKER_PORT") 2>/dev/null && break; sleep 0.1; done
  (exec 3<>"/dev/tcp/127.0.0.1/$BROKER_PORT") 2>/dev/null \
    || { echo "[stack] FAILED: Tansu did not listen; see .stack/logs/tansu.log" >&2; exit 1; }
fi
echo "[stack] broker at 127.0.0.1:$BROKER_PORT"

cargo build --quiet -p dibao-ops-tools --bin dibao-devcerts --bin dibao-assertion-key
# shellcheck disable=SC2086
target/debug/dibao-devcerts "$STACK/certs" $IDENTITIES
target/debug/dibao-assertion-key "$STACK/certs"
