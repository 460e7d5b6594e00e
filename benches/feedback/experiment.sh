#!/bin/sh
# Anomaly feedback on MNIST (digit 9 left out), reduced protocol for a 2-core CPU. See
# RESULTS-feedback.md. Usage: benches/feedback/experiment.sh OUT_DIR [SEED] [K]
set -e
OUT=${1:-runs/feedback}; SEED=${2:-0}; K=${3:-50}
B=${SSVAE:-target/release/ssvae}
D=${SSVAE_DATA:-data}/mnist
COMMON="--backend cpu --seed $SEED --quiet"
mkdir -p "$OUT"
# 1. baseline: SS_D, all labels, first 20000 training images (9s removed), 3 epochs
$B anomaly --model ss-dense --dataset mnist --anomaly-class 9 --labels all --max-train 20000 --hidden 256,256 --epochs 3 --out "$OUT/base" $COMMON > "$OUT/base.json"
# 2. feedback pool: training images 20000..29999, never trained on; score them
python3 benches/feedback/pool.py write "$D" 20000 30000 "$OUT/pool"
$B score --run "$OUT/base" --input "$OUT/pool-images.idx" --out "$OUT/pool-scores.csv" --backend cpu > /dev/null
python3 benches/feedback/pool.py select "$OUT/pool" "$OUT/pool-scores.csv" 9 "$K" "$OUT/marks"
# 3. control: the same run, 2 more epochs without feedback
cp -r "$OUT/base" "$OUT/control"
$B train --resume "$OUT/control" --epochs 2 --backend cpu --quiet > "$OUT/control.json"
# 4. feedback: K false positives + K false negatives from the pool, 2 more epochs
cp -r "$OUT/base" "$OUT/fb"
$B feedback --run "$OUT/fb" --false-positives "$OUT/marks-fp.idx" --false-negatives "$OUT/marks-fn.idx" --epochs 2 --backend cpu --quiet > "$OUT/fb.json"
# 5. false positives only
cp -r "$OUT/base" "$OUT/fp-only"
$B feedback --run "$OUT/fp-only" --false-positives "$OUT/marks-fp.idx" --epochs 2 --backend cpu --quiet > "$OUT/fp-only.json"
for r in base control fb fp-only; do
  python3 -c "import json,sys; j=json.load(open('$OUT/$r.json')); print('$r', 'epochs', j['epochs'], 'auc', j['auc'], 'auc_adjusted', j.get('auc_adjusted'), 'accuracy', j['accuracy'], 'seconds', round(j['seconds'],1))"
done
