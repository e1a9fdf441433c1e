#!/usr/bin/env bash
# The test command: dependencies, contract lint, formatting, every test.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PWD/.tools/node_modules/.bin:$PATH"
scripts/deps.sh
echo "[test] buf lint"
(cd proto && buf lint)
echo "[test] cargo fmt --check"
cargo fmt --all -- --check
echo "[test] cargo test"
cargo test --workspace --locked 2>&1
