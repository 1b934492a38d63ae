#!/usr/bin/env bash
# The full fault run, from a fresh clone: set-up, every test marked `faults` with
# ESMIGRATE_FAULTS=full (all kill seeds, every network fault...), then docs/reliability.md
# written from the figures the run recorded (scripts/faults_report.py). The page is written even
# when a scenario fails (it says which); the exit status is pytest's.
#
# Arguments go to pytest (e.g. `-k random_kills`); ESMIGRATE_FAULTS_SEEDS sets the seeds per kill
# scenario (default 6) and ESMIGRATE_FAULTS_KILLS the kills per run (default 3): 6 scenarios x 6
# seeds x 3 = 108 kill points; ESMIGRATE_FAULTS_RESULTS where the figures go (default
# build/faults, emptied first).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
results=${ESMIGRATE_FAULTS_RESULTS:-build/faults}
rm -rf "$results"
status=0
ESMIGRATE_FAULTS=full ESMIGRATE_FAULTS_RESULTS="$results" \
  .venv/bin/pytest -m faults -p no:cacheprovider "$@" || status=$?
mkdir -p "$results"
printf '{"commit": "%s", "finished": "%s"}\n' "$(git rev-parse --short HEAD)" \
  "$(date -u '+%Y-%m-%d %H:%M UTC')" > "$results/run.json"
.venv/bin/python scripts/faults_report.py "$results" > docs/reliability.md
echo "faults.sh: docs/reliability.md written from $results" >&2
exit "$status"
