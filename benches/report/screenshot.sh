#!/bin/sh
# Renders a run folder's report.html (written by `ssvae plot`) in headless Chromium and saves a
# screenshot, to check by eye that the self-contained page shows its figures in a real browser.
#   apt-get install chromium      # Debian's package
#   benches/report/screenshot.sh runs/parts report.png [width] [height]
set -eu
run=$1
out=${2:-report.png}
w=${3:-1100}
h=${4:-3000}
[ -f "$run/report.html" ] || { echo "no $run/report.html: run 'ssvae plot --run $run' first" >&2; exit 1; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --hide-scrollbars --window-size="$w,$h" \
    --screenshot="$(realpath -m "$out")" "file://$(realpath "$run/report.html")" 2>/dev/null
echo "$out"
