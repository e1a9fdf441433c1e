#!/usr/bin/env bash
# Installs and starts what the stack and the tests need on a fresh Debian
# machine of this kind: PostgreSQL (Debian's packages), OpenSSL's headers
# (librdkafka's TLS), the Tansu broker (crates.io, 0.6.0, reused when
# present), the buf CLI (npm), Chromium and the deployment's validators,
# then checks each one answers. Fails loudly, naming what could not start.
#
#   scripts/deps.sh          everything, waiting for Tansu's build
#   scripts/deps.sh start    everything, Tansu's first build left running in
#                            the background (its log in .tools/tansu-install.log),
#                            so the workspace builds alongside it
#   scripts/deps.sh broker   waits for that build (or builds Tansu now), checks it
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="$PWD/.tools"
mkdir -p "$TOOLS"
export PATH="$HOME/.cargo/bin:$TOOLS/node_modules/.bin:$PATH"
MODE="${1:-all}"

say() { printf '[deps] %s\n' "$*"; }
die() { printf '[deps] FAILED: %s\n' "$*" >&2; exit 1; }

pg_ok() { psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; }

# --- Tansu 0.6.0 --------------------------------------------------------------
# Only the SQLite storage the stack and the tests use (feature libsql): the
# PostgreSQL and object-store engines, which earlier runs built too, are
# left out. `cargo install` puts it in ~/.cargo/bin, once per machine.
tansu_ok() { tansu --version 2>/dev/null | grep -q '0\.6\.0'; }
TANSU_LOG="$TOOLS/tansu-install.log"
TANSU_PID="$TOOLS/tansu-install.pid"
tansu_install() {
  cargo install tansu --version 0.6.0 --locked --features libsql --quiet
}
tansu_running() { [ -f "$TANSU_PID" ] && kill -0 "$(cat "$TANSU_PID")" 2>/dev/null; }
tansu_wait() {
  if ! tansu_ok; then
    if tansu_running; then
      say "waiting for Tansu's build (started by 'scripts/deps.sh start'; log: $TANSU_LOG)"
      while tansu_running; do sleep 5; done
    fi
    rm -f "$TANSU_PID"
    if ! tansu_ok; then
      say "installing tansu 0.6.0 (about 13 minutes on 2 cores, once per machine)"
      tansu_install || { [ -f "$TANSU_LOG" ] && tail -n 30 "$TANSU_LOG" >&2; die "cargo install tansu 0.6.0"; }
    fi
  fi
  tansu_ok || die "tansu 0.6.0 is not on PATH after install"
  say "tansu $(tansu --version | awk '{print $NF}') at $(command -v tansu)"
}
if [ "$MODE" = broker ]; then
  tansu_wait
  exit 0
fi
if ! tansu_ok && ! tansu_running; then
  say "building tansu 0.6.0 in the background (log: $TANSU_LOG)"
  (tansu_install >"$TANSU_LOG" 2>&1) &
  echo $! >"$TANSU_PID"
fi

# --- PostgreSQL -------------------------------------------------------------
if ! pg_ok; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    say "installing PostgreSQL from Debian's packages"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null \
      || die "apt-get install postgresql"
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  [ -n "$version" ] || die "no PostgreSQL cluster under /etc/postgresql"
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  # Development and CI only: trust on loopback, as the dev machines have it.
  if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  say "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null \
    || pg_ctlcluster --skip-systemctl-redirect "$version" main reload 2>/dev/null || true
  for _ in $(seq 1 50); do pg_ok && break; sleep 0.2; done
  pg_ok || die "PostgreSQL does not answer on 127.0.0.1:5432 as user postgres"
fi
# Room for the tests' meshes: a test starts a dozen services, each with its
# own pool, and two tests run at once (Debian's default is 100 connections).
connections=$(psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'show max_connections' 2>/dev/null || echo 0)
if [ "${connections:-0}" -lt 300 ]; then
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
  [ -n "$version" ] || die "PostgreSQL allows $connections connections and no Debian cluster is here to raise it"
  say "raising PostgreSQL's max_connections from $connections to 300 (restarts the cluster)"
  psql -h 127.0.0.1 -U postgres -d postgres -qc 'ALTER SYSTEM SET max_connections = 300' >/dev/null \
    || die "ALTER SYSTEM SET max_connections"
  pg_ctlcluster --skip-systemctl-redirect "$version" main restart || die "pg_ctlcluster $version main restart"
  for _ in $(seq 1 50); do pg_ok && break; sleep 0.2; done
  pg_ok || die "PostgreSQL does not answer after its restart"
fi
say "PostgreSQL answers on 127.0.0.1:5432 ($(psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'show max_connections') connections)"

# --- OpenSSL's headers (librdkafka's TLS to the brokers) -----------------------
if ! [ -e /usr/include/openssl/ssl.h ] || ! command -v pkg-config >/dev/null 2>&1; then
  say "installing libssl-dev and pkg-config from Debian's packages"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libssl-dev pkg-config >/dev/null \
    || die "apt-get install libssl-dev pkg-config"
fi

# --- buf CLI (lints the contracts) -----------------------------------------------
if ! [ -x "$TOOLS/node_modules/.bin/buf" ]; then
  command -v npm >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq npm >/dev/null; } || die "npm"
  say "installing the buf CLI from npm"
  (cd "$TOOLS" && npm install --silent --no-audit --no-fund @bufbuild/buf@1 >/dev/null) || die "npm install @bufbuild/buf"
fi
say "buf $("$TOOLS/node_modules/.bin/buf" --version)"

# --- Chromium and its WebDriver (the console's browser tests) -------------------
# Debian's packages only: nothing downloads a browser build of its own. A
# Chinese font, so the screenshots show the console as officers read it.
if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1 \
   || ! [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; then
  say "installing chromium, chromium-driver and fonts-wqy-microhei from Debian's packages"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-wqy-microhei \
    >/dev/null || die "apt-get install chromium chromium-driver fonts-wqy-microhei"
fi
chromium --headless=new --no-sandbox --disable-gpu --dump-dom about:blank >/dev/null 2>&1 \
  || die "chromium does not start headless"
say "$(chromium --version 2>/dev/null | head -n1), $(chromedriver --version | awk '{print $1, $2}')"

# --- The deployment's validators (scripts/validate-deploy.py) -------------------
# kubectl's built-in kustomize; check-jsonschema (with the compose
# specification's schema), kubernetes-validate (Kubernetes' schemas) and the
# policy linter checkov, from PyPI into .tools/venv.
if ! command -v kubectl >/dev/null 2>&1; then
  say "installing kubectl (kubernetes-client) from Debian's packages"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubernetes-client >/dev/null \
    || die "apt-get install kubernetes-client"
fi
if ! [ -x "$TOOLS/venv/bin/checkov" ] || ! [ -x "$TOOLS/venv/bin/check-jsonschema" ] || ! [ -x "$TOOLS/venv/bin/kubernetes-validate" ]; then
  say "installing check-jsonschema, kubernetes-validate and checkov from PyPI"
  python3 -m venv "$TOOLS/venv" && "$TOOLS/venv/bin/pip" install -q check-jsonschema==0.* kubernetes-validate==1.* checkov==3.* \
    || die "pip install check-jsonschema kubernetes-validate checkov"
fi
say "kubectl $(kubectl version --client 2>/dev/null | awk '/Kustomize/ {print "with kustomize", $3}'), checkov $("$TOOLS/venv/bin/checkov" --version)"

[ "$MODE" = start ] || tansu_wait
