#!/usr/bin/env bash
# The demo, from a fresh clone: set-up, start the embedded OpenSearch node, run the example
# migration project against it, stop the node.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PORT=${ESMIGRATE_DEMO_PORT:-9200}
export ESMIGRATE_URL="http://127.0.0.1:$PORT"
started_here=0
if ! .venv/bin/esmigrate dev-server status --port "$PORT" >/dev/null 2>&1; then
  .venv/bin/esmigrate dev-server start --port "$PORT"
  started_here=1
fi
cleanup() { if [ "$started_here" = 1 ]; then .venv/bin/esmigrate dev-server stop --port "$PORT"; fi; }
trap cleanup EXIT
.venv/bin/python examples/demo.py
