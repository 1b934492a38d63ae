#!/usr/bin/env bash
# The whole check, from a fresh clone: set-up, lint, types, unit and integration tests.
# Integration tests start their own OpenSearch node unless ESMIGRATE_TEST_URL names a cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/lint-imports
.venv/bin/pytest "$@"
