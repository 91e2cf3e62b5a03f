#!/usr/bin/env bash
# Run every test: installs what the tests need, then the whole workspace's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
cargo test --workspace --all-targets "$@"
