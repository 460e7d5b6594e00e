#!/usr/bin/env bash
# Builds three small runs (dense on a table, CNN on images, RNN on a sensor log), exports each
# to ONNX and PyTorch and checks both against `ssvae predict` (benches/export/check.py).
#   benches/export/run_check.sh [WORKDIR] [PYTHON]
# PYTHON needs numpy, onnxruntime, safetensors and torch (without torch, drop --torch below):
#   python3 -m venv /tmp/venv && /tmp/venv/bin/pip install numpy onnxruntime safetensors torch
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${1:-/tmp/ssvae-export-check}
py=${2:-/tmp/venv/bin/python}
(cd "$root" && cargo build --release)
B="$root/target/release/ssvae"
rm -rf "$work" && mkdir -p "$work" && cd "$work"
T="--epochs 2 --backend cpu --quiet"

$B generate table --out tab --unlabeled 300 --test-per-class 20 >/dev/null
$B train --data tab/train.csv --test-data tab/test.csv --hidden 32,16 $T --out runs/dense >/dev/null 2>&1

$B generate images --out img --unlabeled 100 --test-per-class 10 >/dev/null
$B train --model ss-cnn --data img/train --test-data img/test --conv 8:3:2 --hidden 16 $T --out runs/cnn >/dev/null 2>&1

$B generate sensor-log --out log --window 32 --unlabeled 100 --test-per-class 10 >/dev/null
$B train --model ss-rnn --data log/train.csv --test-data log/test.csv --window 32 --sequence-column recording \
  --label-column label --hidden 8,8,8 $T --out runs/rnn >/dev/null 2>&1

status=0
for r in "dense tab/new.csv" "cnn img/new" "rnn log/test.csv"; do
  set -- $r
  $B export --run runs/$1 --to onnx --out export/$1-onnx >/dev/null
  $B export --run runs/$1 --to torch --out export/$1-torch >/dev/null
  "$py" "$here/check.py" --ssvae "$B" --run runs/$1 --onnx export/$1-onnx --torch export/$1-torch --data "$2" || status=1
done
exit $status
