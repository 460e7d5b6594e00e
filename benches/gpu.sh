#!/usr/bin/env bash
# One-shot GPU benchmark: on a machine with a GPU, builds ssvae, lists the adapters, tunes the
# GEMM tiles, times GEMMs (up to 4096^3) and the SS_D / SS_CNN / SS_RNN training steps on the
# GPU with a per-kernel device-time profile of SS_D and SS_CNN (`--profile`: timestamp
# queries), runs the PyTorch CUDA reference on the same cases (skipped with a notice when torch
# or CUDA is missing), runs the GPU-vs-CPU parity tests on that adapter, and writes one markdown
# report naming the adapter. Needs no network.
#
#   bash benches/gpu.sh                      # full run, under 8 minutes on an H100
#   bash benches/gpu.sh --dry-run            # small sizes and short caps (lavapipe / CI check)
#   bash benches/gpu.sh --out report.md      # where the report goes (default: target/gpu-bench/report.md)
#
# Environment: WGPU_BACKEND / WGPU_ADAPTER_NAME pick the adapter as everywhere in ssvae (the
# best discrete GPU otherwise); PYTHON (default python3) runs benches/pytorch/bench.py;
# SSVAE_SKIP_BUILD=1 uses the binaries already in target/release.
#
# Every part runs under `timeout` with its own cap (seconds below), so a hung or slow part is
# reported as such and the rest still runs; the caps add up to under 8 minutes (build
# included: about 2.5 minutes for a from-scratch release build on 16 cores).
set -uo pipefail
cd "$(dirname "$0")/.."

dry=0
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1 ;;
    --out) out="$2"; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "gpu.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
dir=target/gpu-bench
mkdir -p "$dir"
out="${out:-$dir/report.md}"
log="$dir/log.txt"
: > "$log"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
PYTHON="${PYTHON:-python3}"
bin=./target/release/ssvae

if [ $dry = 1 ]; then
  # caps and sizes for a software adapter (lavapipe): checks that every part runs
  CAP_BUILD=900 CAP_TUNE=180 CAP_GEMM=90 CAP_TRAIN=150 CAP_PROFILE=150 CAP_TORCH=90 CAP_TEST=600
  GEMM_SIZES=256,512; TRAIN_SECONDS=1; TUNE_MODELS=ss-dense; TUNE_SECONDS=0.02; TUNE_BATCH=32; BATCH=32
else
  # 150 + 10 + 60 + 30 + 3 x 20 + 2 x 10 + 3 x 20 + 80 = 470 s of caps, under 8 minutes
  CAP_BUILD=150 CAP_TUNE=60 CAP_GEMM=30 CAP_TRAIN=20 CAP_PROFILE=10 CAP_TORCH=20 CAP_TEST=80
  GEMM_SIZES=1024,2048,4096; TRAIN_SECONDS=5; TUNE_MODELS=ss-dense,ss-cnn,ss-rnn; TUNE_SECONDS=0.02; TUNE_BATCH=128; BATCH=128
fi
# GPU-vs-CPU parity: every kernel family, and whole training steps of the three families
PARITY_TESTS=(kernels_gemm kernels_conv kernels_lstm kernels_elementwise kernels_loss kernels_reduce
  kernels_gather kernels_sample kernels_optim kernels_mixture dense_training cnn_training rnn_training)

status=()   # one "part: result" line per part, for the report
note() { echo "== $*" | tee -a "$log"; }
# part NAME CAP CMD...: runs CMD under a time cap, output to the log and to $dir/NAME.out
part() {
  local name=$1 cap=$2; shift 2
  note "$name (cap ${cap}s): $*"
  local t0=$SECONDS
  timeout --kill-after=10 "$cap" "$@" > "$dir/$name.out" 2>&1
  local rc=$?
  cat "$dir/$name.out" >> "$log"
  local how="ok"
  [ $rc = 124 ] || [ $rc = 137 ] && how="TIMED OUT at ${cap}s"
  [ $rc != 0 ] && [ "$how" = ok ] && how="FAILED (exit $rc)"
  status+=("| $name | $how | $((SECONDS - t0)) s |")
  note "$name: $how after $((SECONDS - t0)) s"
  return $rc
}

start=$SECONDS
if [ "${SSVAE_SKIP_BUILD:-0}" != 1 ]; then
  part build "$CAP_BUILD" bash -c "cargo build --release --locked && cargo test --release --locked --no-run $(printf -- '--test %s ' "${PARITY_TESTS[@]}")" \
    || { echo "gpu.sh: the build failed; see $log" >&2; exit 1; }
fi
part devices 10 "$bin" devices
part tune "$CAP_TUNE" "$bin" bench tune --backend gpu --models "$TUNE_MODELS" --batch-sizes "$TUNE_BATCH" \
  --min-seconds "$TUNE_SECONDS" --out "$dir/tuning.json"
export SSVAE_TUNING_FILE="$dir/tuning.json"
part gemm "$CAP_GEMM" "$bin" bench gemm --backend gpu --sizes "$GEMM_SIZES" --min-seconds 0.5
for m in ss-dense ss-cnn ss-rnn; do
  part "train-$m" "$CAP_TRAIN" "$bin" bench train --backend gpu --model "$m" --batch-sizes "$BATCH" --hidden-sizes 1024 \
    --min-seconds "$TRAIN_SECONDS" --warmup 3
done
# where the step's device time goes, kernel by kernel (each kernel between two timestamps; the
# adapter must support timestamp queries, or the part says so and the rest runs)
for m in ss-dense ss-cnn; do
  part "profile-$m" "$CAP_PROFILE" "$bin" bench train --backend gpu --model "$m" --batch-sizes "$BATCH" --hidden-sizes 1024 \
    --min-seconds 1 --warmup 1 --profile
done
torch_dev=""
if "$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; then
  torch_dev=cuda
elif [ $dry = 1 ] && "$PYTHON" -c 'import torch' >/dev/null 2>&1; then
  torch_dev=cpu   # the dry run checks the reference's path on the CPU
fi
if [ -n "$torch_dev" ]; then
  for m in ss-dense ss-cnn ss-rnn; do
    part "torch-$m" "$CAP_TORCH" "$PYTHON" benches/pytorch/bench.py --device "$torch_dev" --model "$m" --batch-sizes "$BATCH" \
      --hidden-sizes 1024 --min-seconds "$TRAIN_SECONDS" --warmup 3
  done
else
  note "PyTorch reference SKIPPED: $PYTHON has no torch with CUDA"
  status+=("| torch | SKIPPED: no torch with CUDA in $PYTHON | 0 s |")
fi
# shellcheck disable=SC2046
part parity "$CAP_TEST" env SSVAE_REQUIRE_GPU=1 cargo test --release --locked $(printf -- '--test %s ' "${PARITY_TESTS[@]}")

# ---- the report ----
# json FIELD < lines: the value of FIELD in each JSON line (flat objects, as ssvae and bench.py print)
json() { sed -n -e "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" -e t -e "s/.*\"$1\": *\([^,}\"]*\).*/\1/p"; }
# the adapter the benchmarks ran on (the GPU backend's choice), as the training bench names it
adapter=$(grep -h -m1 '^{' "$dir"/train-*.out 2>/dev/null | head -1 | json adapter)
{
  echo "# GPU benchmark: ${adapter:-no adapter (see the parts below)}"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), \`bash benches/gpu.sh$([ $dry = 1 ] && echo ' --dry-run')\`, $(nproc) CPU cores; git $(git rev-parse --short HEAD 2>/dev/null)."
  echo "Adapters (\`ssvae devices\`):"
  echo '```'
  cat "$dir/devices.out" 2>/dev/null
  echo '```'
  echo
  echo "## Training step, batch $BATCH (whole loop, \`ssvae bench train\` / \`benches/pytorch/bench.py\`)"
  echo
  echo "| model | ssvae GPU samples/s | ms/step | device MiB | PyTorch ($torch_dev) samples/s | ms/step | peak MiB | ssvae / PyTorch |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  for m in ss-dense ss-cnn ss-rnn; do
    s=$(grep '^{' "$dir/train-$m.out" 2>/dev/null | head -1)
    p=$(grep '^{' "$dir/torch-$m.out" 2>/dev/null | head -1)
    ss=$(echo "$s" | json samples_per_s); sm=$(echo "$s" | json ms_per_step)
    ps=$(echo "$p" | json samples_per_s); pm=$(echo "$p" | json ms_per_step)
    # memory next to each throughput: what ssvae allocates for the step; PyTorch's
    # torch.cuda.max_memory_allocated (its process's peak RSS when it ran on the CPU)
    sb=$(echo "$s" | json device_bytes); pk=$(echo "$p" | json peak_mib)
    ratio=$(awk -v a="$ss" -v b="$ps" 'BEGIN { if (a > 0 && b > 0) printf "%.2fx", a / b; else print "-" }')
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$m" "$(printf '%.0f' "${ss:-0}")" "$(printf '%.2f' "${sm:-0}")" \
      "$(awk -v b="${sb:-0}" 'BEGIN { printf "%.0f", b / 1048576 }')" \
      "$(printf '%.0f' "${ps:-0}")" "$(printf '%.2f' "${pm:-0}")" "$(printf '%.0f' "${pk:-0}")" "$ratio"
  done
  echo
  echo "## GEMM (\`ssvae bench gemm --backend gpu --sizes $GEMM_SIZES\`, tuned tiles)"
  echo
  sed -n '/^|/p' "$dir/gemm.out" 2>/dev/null
  echo
  echo "## Tuning (\`ssvae bench tune --models $TUNE_MODELS --batch-sizes $TUNE_BATCH\`)"
  echo
  sed -n '/^|/p' "$dir/tune.out" 2>/dev/null
  echo
  for m in ss-dense ss-cnn; do
    echo "## Device time by kernel, $m (\`ssvae bench train --profile\`, batch $BATCH)"
    echo
    sed -n '/^| kernel/,$p' "$dir/profile-$m.out" 2>/dev/null | head -22
    echo
  done
  echo "## GPU-vs-CPU parity tests on this adapter"
  echo
  grep -h '^test result:' "$dir/parity.out" 2>/dev/null | awk '{ p += $4; f += $6 } END { printf "%d passed, %d failed (%d test binaries)\n", p, f, NR }'
  grep -h -m1 'GPU tests run on adapter' "$dir/parity.out" 2>/dev/null
  echo
  echo "## Parts"
  echo
  echo "| part | result | seconds |"
  echo "|---|---|---:|"
  printf '%s\n' "${status[@]}"
  echo
  echo "Total: $((SECONDS - start)) s. Full log: $log"
} > "$out"
cat "$out"
