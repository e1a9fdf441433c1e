#!/usr/bin/env bash
# The main job on a demo (walked through in docs/demo.md): brings the stack
# up and shows events crossing the mesh exactly once; runs the verification
# mesh and civil affairs for the demo county 220581 through the gateway;
# the two rosters in sync; the roster comparison. Then it leaves the whole
# mesh running — every service, the eight adapters, the department simulator
# and the gateway with the officers' console — at a printed address, and
# prints the demo officers' logins. `scripts/stack.sh down` stops it all.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PWD/.tools/node_modules/.bin:$PATH"
scripts/stack.sh up
cargo build --quiet -p dibao-tests --bin pipeline-probe

STACK="$PWD/.stack"
PG="postgres://postgres@127.0.0.1:5432"
GRPC_PORT="${DIBAO_DEMO_GRPC_PORT:-50071}"
psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS dibao_demo WITH (FORCE)" -c "CREATE DATABASE dibao_demo"
RUN="demo$(date +%s)"
# A mesh left running by an earlier demo goes first (it holds the console's port).
scripts/stack.sh mesh-down
export PIPELINE_PROBE_ENV_FILE=/dev/null
export PIPELINE_PROBE__DATABASE__URL="$PG/dibao_demo"
export PIPELINE_PROBE__KAFKA__BROKERS="127.0.0.1:${DIBAO_BROKER_PORT:-19092}"
export PIPELINE_PROBE__KAFKA__TOPIC_PREFIX="$RUN"
export PIPELINE_PROBE__KAFKA__GROUP_ID="$RUN-applier"
export PIPELINE_PROBE__TELEMETRY__LOG_FORMAT=pretty

echo "== applier: inbox into schema demo_applier, gRPC on 127.0.0.1:$GRPC_PORT (mTLS)"
PIPELINE_PROBE__DATABASE__SCHEMA=demo_applier \
PIPELINE_PROBE__SERVER__LISTEN="127.0.0.1:$GRPC_PORT" \
PIPELINE_PROBE__TLS__CA_CERT="$STACK/certs/ca.pem" \
PIPELINE_PROBE__TLS__CERT="$STACK/certs/pipeline-probe.pem" \
PIPELINE_PROBE__TLS__KEY="$STACK/certs/pipeline-probe.key" \
  target/debug/pipeline-probe apply >"$STACK/logs/demo-applier.log" 2>&1 &
APPLIER=$!
trap 'kill $APPLIER 2>/dev/null || true' EXIT

echo "== writer: 2,000 changes over 20 households into schema demo_writer, each with its event in one transaction"
PIPELINE_PROBE__DATABASE__SCHEMA=demo_writer \
  target/debug/pipeline-probe write --events 2000 --keys 20 --tasks 4 >"$STACK/logs/demo-writer.log" 2>&1
tail -n1 "$STACK/logs/demo-writer.log"

for _ in $(seq 1 300); do
  n=$(psql -Atq "$PG/dibao_demo" -c "SELECT count(*) FROM demo_applier.probe_applied" 2>/dev/null || echo 0)
  [ "$n" -ge 2000 ] && break
  sleep 0.2
done
echo "== applied on the other side: $n of 2000"
psql -q "$PG/dibao_demo" -c "
  SELECT count(*) AS households,
         sum(n) AS events_applied,
         bool_and(in_order) AS every_household_in_order,
         round(percentile_cont(0.5) WITHIN GROUP (ORDER BY p50)::numeric, 1) AS median_lag_ms
  FROM (SELECT aggregate_key, count(*) AS n,
               (array_agg(sequence ORDER BY applied_order) = array_agg(sequence ORDER BY sequence)
                AND min(sequence) = 1 AND max(sequence) = count(*)) AS in_order,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM applied_at - written_at) * 1000) AS p50
        FROM demo_applier.probe_applied GROUP BY aggregate_key) k"

CURL=(buf curl --protocol grpc --cacert "$STACK/certs/ca.pem" --cert "$STACK/certs/ops.pem" --key "$STACK/certs/ops.key")
echo "== operator, through reflection: health"
"${CURL[@]}" -d '{}' "https://127.0.0.1:$GRPC_PORT/grpc.health.v1.Health/Check"
echo "== the pipeline's status is an operator's, proven by an officer assertion: a certificate alone is refused"
"${CURL[@]}" -d '{}' "https://127.0.0.1:$GRPC_PORT/dibao.ops.v1.OpsService/GetPipelineStatus" 2>&1 | head -n 3 || true

kill -TERM $APPLIER; wait $APPLIER || true
trap - EXIT

echo
echo "== verification mesh: the department simulator (the departments' front ends, over HTTPS; the real-estate register's front-end database view), eight department adapters and the verification hub, each its own process over mTLS"
cargo build --quiet -p dibao-synthetic -p dibao-department-adapters -p dibao-verification-hub --bins
# Ports free right now (asked of the kernel), so nothing else on the machine collides.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
SIM_PORT=$(free_port); HUB_PORT=$(free_port); CIVIL_PORT=$(free_port); GATEWAY_PORT=$(free_port)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true' EXIT
# Started apart from this shell's session, so they outlive it when left running.
detach() { local log=$1; shift; setsid "$@" </dev/null >"$log" 2>&1 & PIDS+=($!); }
DEPARTMENT_SIMULATOR_ENV_FILE=/dev/null \
DEPARTMENT_SIMULATOR__LISTEN="127.0.0.1:$SIM_PORT" \
DEPARTMENT_SIMULATOR__DATABASE__URL="$PG/dibao_demo" \
DEPARTMENT_SIMULATOR__DATABASE__SCHEMA=department_simulator \
DEPARTMENT_SIMULATOR__GENERATE_HOUSEHOLDS=200 \
DEPARTMENT_SIMULATOR__CERT="$STACK/certs/department-frontend.pem" \
DEPARTMENT_SIMULATOR__KEY="$STACK/certs/department-frontend.key" \
  detach "$STACK/logs/demo-simulator.log" target/debug/department-simulator
HUB_ENV=(VERIFICATION_HUB_ENV_FILE=/dev/null
  VERIFICATION_HUB__SERVER__LISTEN="127.0.0.1:$HUB_PORT"
  VERIFICATION_HUB__DATABASE__URL="$PG/dibao_demo" VERIFICATION_HUB__DATABASE__SCHEMA=verification_hub
  VERIFICATION_HUB__KAFKA__BROKERS="127.0.0.1:${DIBAO_BROKER_PORT:-19092}"
  VERIFICATION_HUB__KAFKA__TOPIC_PREFIX="$RUN" VERIFICATION_HUB__KAFKA__GROUP_ID="$RUN-verification-hub"
  VERIFICATION_HUB__TLS__CA_CERT="$STACK/certs/ca.pem"
  VERIFICATION_HUB__TLS__CERT="$STACK/certs/verification-hub.pem" VERIFICATION_HUB__TLS__KEY="$STACK/certs/verification-hub.key"
  VERIFICATION_HUB__HUB__SIGNING_KEY="$STACK/certs/hub-assertion.pk8"
  VERIFICATION_HUB__HUB__CIVIL_AFFAIRS="127.0.0.1:$CIVIL_PORT"
  VERIFICATION_HUB__TRUST__OFFICER_ISSUERS="$STACK/certs/officer-issuers"
  VERIFICATION_HUB__DIVISIONS__DIR="$PWD/proto/data/divisions")
for dept in public_security human_resources housing commerce bank tax disability_federation medical_insurance; do
  port=$(free_port)
  ident="adapter-${dept//_/-}"
  if [ "$dept" = housing ]; then
    # The real-estate register shares by its front-end database view (前置库), not by an API.
    reach=(DEPARTMENT_ADAPTER__DEPARTMENT__VIEW_URL="$PG/dibao_demo")
  else
    reach=(DEPARTMENT_ADAPTER__DEPARTMENT__BASE_URL="https://127.0.0.1:$SIM_PORT"
           DEPARTMENT_ADAPTER__DEPARTMENT__CA="$STACK/certs/ca.pem")
  fi
  DEPARTMENT_ADAPTER_ENV_FILE=/dev/null \
  DEPARTMENT_ADAPTER__SERVER__LISTEN="127.0.0.1:$port" \
  DEPARTMENT_ADAPTER__DATABASE__URL="$PG/dibao_demo" \
  DEPARTMENT_ADAPTER__DATABASE__SCHEMA="adapter_$dept" \
  DEPARTMENT_ADAPTER__TLS__CA_CERT="$STACK/certs/ca.pem" \
  DEPARTMENT_ADAPTER__TLS__CERT="$STACK/certs/$ident.pem" \
  DEPARTMENT_ADAPTER__TLS__KEY="$STACK/certs/$ident.key" \
  DEPARTMENT_ADAPTER__DEPARTMENT__KIND="$dept" \
  DEPARTMENT_ADAPTER__ASSERTION__TRUSTED_KEYS="$STACK/certs/trusted-keys" \
  DEPARTMENT_ADAPTER__TRUST__OFFICER_ISSUERS="$STACK/certs/officer-issuers" \
  DEPARTMENT_ADAPTER__DIVISIONS__DIR="$PWD/proto/data/divisions" \
    detach "$STACK/logs/demo-adapter-$dept.log" env "${reach[@]}" target/debug/department-adapter
  upper=$(echo "$dept" | tr '[:lower:]' '[:upper:]')
  HUB_ENV+=("VERIFICATION_HUB__HUB__DEPARTMENTS__${upper}__ADDRESS=127.0.0.1:$port"
            "VERIFICATION_HUB__HUB__DEPARTMENTS__${upper}__SERVER_NAME=$ident")
done
detach "$STACK/logs/demo-hub.log" env "${HUB_ENV[@]}" target/debug/verification-hub
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$HUB_PORT") 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$SIM_PORT") 2>/dev/null && break
  sleep 0.2
done
grep -h "listening\|loaded" "$STACK"/logs/demo-simulator.log "$STACK"/logs/demo-adapter-*.log "$STACK"/logs/demo-hub.log || true

echo
echo "== civil affairs, demo county 220581, through the gateway: officers log in with a password and an authenticator code; policy, roster import, one application through every signed step, verified through the hub; an officer of the neighbouring county refused; the signed history and a citizen's access history"
cargo build --quiet -p dibao-demos --example demo_county
DEMO_SIMULATOR_SCHEMA=department_simulator \
GATEWAY_ENV_FILE=/dev/null \
GATEWAY__SERVER__LISTEN="127.0.0.1:$GATEWAY_PORT" \
GATEWAY__DATABASE__URL="$PG/dibao_demo" \
GATEWAY__DATABASE__SCHEMA=gateway \
GATEWAY__TLS__CA_CERT="$STACK/certs/ca.pem" \
GATEWAY__TLS__CERT="$STACK/certs/gateway.pem" \
GATEWAY__TLS__KEY="$STACK/certs/gateway.key" \
GATEWAY__TRUST__OFFICER_ISSUERS="$STACK/certs/officer-issuers" \
GATEWAY__DIVISIONS__DIR="$PWD/proto/data/divisions" \
GATEWAY__OFFICERS__SECRET_KEY="$STACK/certs/gateway-secret.key" \
GATEWAY__ASSERTIONS__SIGNING_KEY="$STACK/certs/officer-issuer.pk8" \
GATEWAY__PUBLIC__UPSTREAM_SERVER_NAME=localhost \
GATEWAY__UPSTREAM__CIVIL_AFFAIRS="127.0.0.1:$CIVIL_PORT" \
GATEWAY__UPSTREAM__VERIFICATION_HUB="127.0.0.1:$HUB_PORT" \
GATEWAY__TELEMETRY__LOG_FORMAT=pretty \
CIVIL_AFFAIRS_ENV_FILE=/dev/null \
CIVIL_AFFAIRS__SERVER__LISTEN="127.0.0.1:$CIVIL_PORT" \
CIVIL_AFFAIRS__DATABASE__URL="$PG/dibao_demo" \
CIVIL_AFFAIRS__DATABASE__SCHEMA=civil_affairs \
CIVIL_AFFAIRS__KAFKA__BROKERS="127.0.0.1:${DIBAO_BROKER_PORT:-19092}" \
CIVIL_AFFAIRS__KAFKA__TOPIC_PREFIX="$RUN" \
CIVIL_AFFAIRS__KAFKA__GROUP_ID="$RUN-civil-affairs" \
CIVIL_AFFAIRS__TLS__CA_CERT="$STACK/certs/ca.pem" \
CIVIL_AFFAIRS__TLS__CERT="$STACK/certs/civil-affairs.pem" \
CIVIL_AFFAIRS__TLS__KEY="$STACK/certs/civil-affairs.key" \
CIVIL_AFFAIRS__TRUST__OFFICER_ISSUERS="$STACK/certs/officer-issuers" \
CIVIL_AFFAIRS__DIVISIONS__DIR="$PWD/proto/data/divisions" \
CIVIL_AFFAIRS__VERIFICATION__HUB="127.0.0.1:$HUB_PORT" \
CIVIL_AFFAIRS__TELEMETRY__LOG_FORMAT=pretty \
RUST_LOG=warn \
  target/debug/examples/demo_county

echo
echo "== the two rosters in sync: civil affairs and the poverty office, each with its own schema, through the broker"
cargo build --quiet -p dibao-demos --example demo_sync
CIVIL_AFFAIRS_ENV_FILE=/dev/null \
CIVIL_AFFAIRS__SERVER__LISTEN=127.0.0.1:0 \
CIVIL_AFFAIRS__DATABASE__URL="$PG/dibao_demo" \
CIVIL_AFFAIRS__DATABASE__SCHEMA=civil_affairs \
CIVIL_AFFAIRS__KAFKA__BROKERS="127.0.0.1:${DIBAO_BROKER_PORT:-19092}" \
CIVIL_AFFAIRS__KAFKA__TOPIC_PREFIX="$RUN" \
CIVIL_AFFAIRS__KAFKA__GROUP_ID="$RUN-civil-affairs" \
CIVIL_AFFAIRS__TLS__CA_CERT="$STACK/certs/ca.pem" \
CIVIL_AFFAIRS__TLS__CERT="$STACK/certs/civil-affairs.pem" \
CIVIL_AFFAIRS__TLS__KEY="$STACK/certs/civil-affairs.key" \
CIVIL_AFFAIRS__TRUST__OFFICER_ISSUERS="$STACK/certs/officer-issuers" \
CIVIL_AFFAIRS__DIVISIONS__DIR="$PWD/proto/data/divisions" \
POVERTY_ALLEVIATION_ENV_FILE=/dev/null \
POVERTY_ALLEVIATION__SERVER__LISTEN=127.0.0.1:0 \
POVERTY_ALLEVIATION__DATABASE__URL="$PG/dibao_demo" \
POVERTY_ALLEVIATION__DATABASE__SCHEMA=poverty_alleviation \
POVERTY_ALLEVIATION__KAFKA__BROKERS="127.0.0.1:${DIBAO_BROKER_PORT:-19092}" \
POVERTY_ALLEVIATION__KAFKA__TOPIC_PREFIX="$RUN" \
POVERTY_ALLEVIATION__KAFKA__GROUP_ID="$RUN-poverty-alleviation" \
POVERTY_ALLEVIATION__TLS__CA_CERT="$STACK/certs/ca.pem" \
POVERTY_ALLEVIATION__TLS__CERT="$STACK/certs/poverty-alleviation.pem" \
POVERTY_ALLEVIATION__TLS__KEY="$STACK/certs/poverty-alleviation.key" \
POVERTY_ALLEVIATION__TRUST__OFFICER_ISSUERS="$STACK/certs/officer-issuers" \
POVERTY_ALLEVIATION__DIVISIONS__DIR="$PWD/proto/data/divisions" \
RUST_LOG=warn \
  target/debug/examples/demo_sync

echo
echo "== roster comparison (台账比对) of the demo county: its view of both rosters from their events, lists (a)-(g), xlsx per township in .stack/exports"
cargo build --quiet -p dibao-demos --example demo_comparison
for svc in CIVIL_AFFAIRS:civil-affairs:civil_affairs POVERTY_ALLEVIATION:poverty-alleviation:poverty_alleviation \
           ROSTER_COMPARISON:roster-comparison:roster_comparison; do
  IFS=: read -r env ident schema <<<"$svc"
  export "${env}_ENV_FILE=/dev/null" "${env}__SERVER__LISTEN=127.0.0.1:0" \
    "${env}__DATABASE__URL=$PG/dibao_demo" "${env}__DATABASE__SCHEMA=$schema" \
    "${env}__KAFKA__BROKERS=127.0.0.1:${DIBAO_BROKER_PORT:-19092}" "${env}__KAFKA__TOPIC_PREFIX=$RUN" \
    "${env}__KAFKA__GROUP_ID=$RUN-$ident" "${env}__TLS__CA_CERT=$STACK/certs/ca.pem" \
    "${env}__TLS__CERT=$STACK/certs/$ident.pem" "${env}__TLS__KEY=$STACK/certs/$ident.key" \
    "${env}__TRUST__OFFICER_ISSUERS=$STACK/certs/officer-issuers" \
    "${env}__DIVISIONS__DIR=$PWD/proto/data/divisions"
done
rm -rf "$STACK/exports"
ROSTER_COMPARISON__COMPARISON__MONTHLY_RUN_DAY=0 DEMO_EXPORTS="$STACK/exports" RUST_LOG=warn \
  target/debug/examples/demo_comparison

echo
echo "== the mesh left running: civil affairs, the poverty office and the roster comparison join the hub, the adapters and the simulator; the gateway serves the officers' console"
cargo build --quiet -p dibao-civil-affairs -p dibao-poverty-alleviation -p dibao-roster-comparison -p dibao-gateway --bins
cargo build --quiet -p dibao-demos --example demo_console
CONSOLE_PORT="${DIBAO_CONSOLE_PORT:-8443}"
POVERTY_PORT=$(free_port); COMPARISON_PORT=$(free_port)
export CIVIL_AFFAIRS__SERVER__LISTEN="127.0.0.1:$CIVIL_PORT" POVERTY_ALLEVIATION__SERVER__LISTEN="127.0.0.1:$POVERTY_PORT" \
  ROSTER_COMPARISON__SERVER__LISTEN="127.0.0.1:$COMPARISON_PORT" \
  ROSTER_COMPARISON__COMPARISON__CIVIL_AFFAIRS="127.0.0.1:$CIVIL_PORT" ROSTER_COMPARISON__COMPARISON__CIVIL_AFFAIRS_SERVER_NAME=localhost \
  ROSTER_COMPARISON__COMPARISON__POVERTY_ALLEVIATION="127.0.0.1:$POVERTY_PORT" \
  ROSTER_COMPARISON__COMPARISON__POVERTY_ALLEVIATION_SERVER_NAME=localhost
detach "$STACK/logs/mesh-civil-affairs.log" target/debug/civil-affairs
detach "$STACK/logs/mesh-poverty-alleviation.log" target/debug/poverty-alleviation
detach "$STACK/logs/mesh-roster-comparison.log" target/debug/roster-comparison
GATEWAY=(GATEWAY_ENV_FILE=/dev/null GATEWAY__SERVER__LISTEN="127.0.0.1:$CONSOLE_PORT"
  GATEWAY__DATABASE__URL="$PG/dibao_demo" GATEWAY__DATABASE__SCHEMA=gateway
  GATEWAY__TLS__CA_CERT="$STACK/certs/ca.pem" GATEWAY__TLS__CERT="$STACK/certs/gateway.pem" GATEWAY__TLS__KEY="$STACK/certs/gateway.key"
  GATEWAY__TRUST__OFFICER_ISSUERS="$STACK/certs/officer-issuers"
  GATEWAY__DIVISIONS__DIR="$PWD/proto/data/divisions"
  GATEWAY__OFFICERS__SECRET_KEY="$STACK/certs/gateway-secret.key"
  GATEWAY__ASSERTIONS__SIGNING_KEY="$STACK/certs/officer-issuer.pk8"
  GATEWAY__PUBLIC__UPSTREAM_SERVER_NAME=localhost
  GATEWAY__UPSTREAM__CIVIL_AFFAIRS="127.0.0.1:$CIVIL_PORT" GATEWAY__UPSTREAM__VERIFICATION_HUB="127.0.0.1:$HUB_PORT"
  GATEWAY__UPSTREAM__POVERTY_ALLEVIATION="127.0.0.1:$POVERTY_PORT" GATEWAY__UPSTREAM__ROSTER_COMPARISON="127.0.0.1:$COMPARISON_PORT")
# The demo county's division names, shown beside their codes on the console (demo names below the county).
env "${GATEWAY[@]}" RUST_LOG=warn target/debug/dibao-officers divisions demos/data/divisions-220581.csv
detach "$STACK/logs/mesh-gateway.log" env "${GATEWAY[@]}" target/debug/gateway
for _ in $(seq 1 150); do (exec 3<>"/dev/tcp/127.0.0.1/$CONSOLE_PORT") 2>/dev/null && break; sleep 0.2; done
(exec 3<>"/dev/tcp/127.0.0.1/$CONSOLE_PORT") 2>/dev/null \
  || { echo "the gateway did not listen on $CONSOLE_PORT; see .stack/logs/mesh-gateway.log" >&2; exit 1; }
printf '%s\n' "${PIDS[@]}" >"$STACK/mesh.pids"
trap - EXIT
env "${GATEWAY[@]}" DEMO_CONSOLE_ADDR="127.0.0.1:$CONSOLE_PORT" DEMO_LOGINS="$STACK/demo-logins.tsv" RUST_LOG=warn \
  target/debug/examples/demo_console

cat <<EOF

== 办公台 (the officers' console): https://localhost:$CONSOLE_PORT/
   The certificate is the local stack's: trust .stack/certs/ca.pem in the browser, or accept its warning.
   Log in with an officer's 经办人编号 and 口令 above; the 动态口令 is what an authenticator app shows for
   the secret, or: scripts/totp.sh <动态口令密钥>   (a code is accepted once: 30 s between logins of one officer)
   Logs in .stack/logs; it all keeps running until: scripts/stack.sh down
EOF
