#!/usr/bin/env bash
# The test command: dependencies, contract lint, the deployment's validation, formatting, lints, every test.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PWD/.tools/node_modules/.bin:$PATH"
# Tansu's first build runs in the background while the workspace builds.
scripts/deps.sh start
echo "[test] buf lint"
(cd proto && buf lint)
echo "[test] the deployment: compose file, both Kubernetes overlays, policy linter"
.tools/venv/bin/python scripts/validate-deploy.py
echo "[test] cargo fmt --check"
cargo fmt --all -- --check
echo "[test] cargo clippy (the workspace lints decide)"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "[test] cargo build --workspace --bins (the tests start some services as processes)"
cargo build --workspace --bins --locked
scripts/deps.sh broker
echo "[test] cargo test"
log=$(mktemp)
status=0
cargo test --workspace --locked 2>&1 | tee "$log" || status=$?
# One closing line for the whole workspace (cargo's own last line is the
# last crate's doc-tests, which says little).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "workspace: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
exit "$status"
