#!/usr/bin/env bash
# Makes docs/report.png, the picture of docs/guide/report.md: the top of a migration report,
# rendered by headless Chromium (scripts/setup.sh installs it). Give it a report, e.g. the demo's:
#   bash scripts/demo.sh && bash scripts/report_screenshot.sh /tmp/esmigrate-demo-report.html
set -euo pipefail
cd "$(dirname "$0")/.."
report=${1:?usage: report_screenshot.sh REPORT.html [OUT.png]}
out=${2:-docs/report.png}
home=$(mktemp -d)
trap 'rm -rf "$home"' EXIT
# A throw-away profile (HOME); --no-sandbox because CI runs as root. The page is 820 px wide; a
# scale of 0.75 keeps the picture small and its text readable.
HOME="$home" chromium --headless --no-sandbox --disable-gpu --no-first-run --hide-scrollbars \
  --force-device-scale-factor=0.75 --window-size=820,1180 \
  --screenshot="$(realpath -m "$out")" "file://$(realpath "$report")" 2>/dev/null
echo "Wrote $out"
