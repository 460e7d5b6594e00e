#!/usr/bin/env bash
# ssvae vs Burn, side by side: SS_D and SS_CNN training throughput on the CPU (ssvae's CPU
# backend vs Burn's ndarray and flex backends) and on lavapipe (ssvae's wgpu/Vulkan backend vs
# Burn's wgpu backend on the same adapter). Every case runs ssvae then Burn, and the whole set
# runs twice (interleaved), each command in its own process under /usr/bin/time for its peak RSS.
#
#   benches/burn/run.sh                      # results under benches/burn/results/<date>/
#   ROUNDS=1 MIN_SECONDS=3 benches/burn/run.sh
#   TUNING=/path/tuning.json benches/burn/run.sh   # reuse an `ssvae bench tune` file for lavapipe
#
# Quiet protocol (the machine is shared): /tmp/QUIET exists while this runs (other jobs hold new
# runs back), and measuring starts once the 1-minute load average is below $LOAD_MAX (polled
# every 20 s, for at most $LOAD_WAIT_S seconds; then it measures anyway and the load is recorded
# with every case).
set -euo pipefail
cd "$(dirname "$0")/../.."

SSVAE_SRC=${SSVAE:-target/release/ssvae}
BURN=${BURN:-${CARGO_TARGET_DIR:-/work/target-burn}/release/ssvae-burn-bench}
ROUNDS=${ROUNDS:-2}
MIN_SECONDS=${MIN_SECONDS:-6}
WARMUP=${WARMUP:-3}
CNN_GPU_BATCH=${CNN_GPU_BATCH:-8}  # lavapipe runs SS_CNN at ~2-3 GFLOP/s: batch 128 is ~15-20 s a step
# Burn's ndarray SS_CNN step at batch 128 takes tens of seconds (its transposed convolution is a
# direct loop): one warm-up step for that case, and the timed loop then runs one or two steps
WARMUP_NDARRAY_CNN=${WARMUP_NDARRAY_CNN:-1}
BURN_CPU_BACKENDS=${BURN_CPU_BACKENDS:-ndarray flex}  # e.g. "flex" for a build with --features x86-v4
LOAD_MAX=${LOAD_MAX:-1.3}
LOAD_WAIT_S=${LOAD_WAIT_S:-720}
OUT=${OUT:-benches/burn/results/$(date +%Y%m%d-%H%M%S)}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg}
export WGPU_BACKEND=vulkan
mkdir -p "$XDG_RUNTIME_DIR" "$OUT"
for b in "$SSVAE_SRC" "$BURN"; do [ -x "$b" ] || { echo "missing $b (build it first)" >&2; exit 1; }; done
# a private copy: the binary under target/ may be rebuilt while this runs
SSVAE=$(mktemp /tmp/ssvae-bench-bin.XXXXXX)
trap 'rm -f "$SSVAE"' EXIT
cp "$SSVAE_SRC" "$SSVAE"
chmod +x "$SSVAE"
{
	echo "ssvae: $SSVAE_SRC, built $(stat -c %y "$SSVAE_SRC"), $("$SSVAE" --version)"
	echo "ssvae checkout: $(git -C "$(dirname "$SSVAE_SRC")/../.." log -1 --format='%h %cd' 2>/dev/null || echo unknown)"
	echo "burn bench: $BURN, built $(stat -c %y "$BURN"), this checkout $(git log -1 --format=%h)"
	echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cpus, avx512 lines in /proc/cpuinfo: $(grep -c avx512 /proc/cpuinfo)"
} | tee "$OUT/machine.txt" >&2

load1() { cut -d' ' -f1 /proc/loadavg; }
RAW="$OUT/raw.jsonl"
: > "$RAW"

# one measurement: $1 round, $2 label, rest the command. Appends its JSON line(s) to raw.jsonl
# with the round, the load average before it and the process's peak RSS (KiB, /usr/bin/time).
case_run() {
	local round=$1 label=$2 variant=$3; shift 3
	[[ "$label" =~ ${ONLY:-.} ]] || return 0
	local load; load=$(load1)
	echo "== round $round, $label ($variant), load $load: $*" >&2
	/usr/bin/time -f '%M' -o "$OUT/time.txt" "$@" > "$OUT/stdout.txt" 2> "$OUT/stderr.txt" || {
		echo "FAILED: $*" >&2; cat "$OUT/stderr.txt" >&2; return 1; }
	grep -h 'adapter' "$OUT/stderr.txt" | head -2 >&2 || true
	python3 - "$round" "$label" "$variant" "$load" "$(tail -1 "$OUT/time.txt")" "$OUT/stdout.txt" >> "$RAW" <<-'EOF'
		import json, sys
		rnd, label, variant, load, rss_kib, path = sys.argv[1:]
		for line in open(path):
		    if line.startswith("{"):
		        r = json.loads(line)
		        r.update(round=int(rnd), label=label, variant=variant, load1_before=float(load), max_rss_mib=int(rss_kib) / 1024)
		        print(json.dumps(r))
	EOF
	tail -1 "$RAW" >&2
}

ssvae=("$SSVAE" bench train --warmup "$WARMUP" --min-seconds "$MIN_SECONDS")
burn=("$BURN" --warmup "$WARMUP" --min-seconds "$MIN_SECONDS")
burn_w1=("$BURN" --warmup "$WARMUP_NDARRAY_CNN" --min-seconds "$MIN_SECONDS")
# ssvae on the GPU twice: with its built-in GEMM tiles (--no-tuning, what a fresh machine runs)
# and with a GEMM tuning file for these shapes (`ssvae bench tune`, the counterpart of Burn's
# autotune), written to a private file ($TUNING, or made here) so no other run reads it
ssvae_untuned=("${ssvae[@]}" --no-tuning)
ssvae_tuned=(env SSVAE_TUNING_FILE="$OUT/ssvae-gemm-tuning.json" "${ssvae[@]}")

# CPU only, Burn built with its AVX-512 matmul:
#   ONLY=cpu BURN_CPU_BACKENDS=flex BURN=/work/target-burn/ssvae-burn-bench.x86v4 benches/burn/run.sh
# Smoke test: NO_QUIET=1 LOAD_WAIT_S=0 PREWARM=0 ONLY='cpu ss-dense' ROUNDS=1 MIN_SECONDS=1 benches/burn/run.sh

if [ -n "${TUNING:-}" ]; then
	cp "$TUNING" "$OUT/ssvae-gemm-tuning.json"
elif [[ "lavapipe" =~ ${ONLY:-.} ]]; then
	echo "== ssvae bench tune (private tuning file)" >&2
	"$SSVAE" bench tune --backend vulkan --models ss-dense --batch-sizes 128 --hidden-sizes 1024 --out "$OUT/ssvae-gemm-tuning.json" > "$OUT/tune.txt"
	"$SSVAE" bench tune --backend vulkan --models ss-cnn --batch-sizes "$CNN_GPU_BATCH" --out "$OUT/ssvae-gemm-tuning.json" >> "$OUT/tune.txt"
fi
# Burn persists its autotune results (cubecl's cache): fill it for these shapes before measuring,
# as `ssvae bench tune` would be run once per adapter; nothing of this run is recorded.
if [ "${PREWARM:-1}" = 1 ]; then
echo "== untimed pre-run of Burn's wgpu cases (autotune cache, shader compilation)" >&2
"$BURN" --backend wgpu --model ss-dense --batch-sizes 128 --hidden-sizes 1024 --warmup 1 --min-seconds 0 > /dev/null
"$BURN" --backend wgpu --model ss-cnn --batch-sizes "$CNN_GPU_BATCH" --warmup 1 --min-seconds 0 > /dev/null
fi

[ -n "${NO_QUIET:-}" ] || { touch /tmp/QUIET; trap 'rm -f /tmp/QUIET "$SSVAE"' EXIT; }
waited=0
while awk -v l="$(load1)" -v m="$LOAD_MAX" 'BEGIN { exit !(l >= m) }' && [ "$waited" -lt "$LOAD_WAIT_S" ]; do
	echo "load $(load1) >= $LOAD_MAX, waiting ($waited s)" >&2
	sleep 20
	waited=$((waited + 20))
done
echo "start: load $(cat /proc/loadavg) after waiting $waited s" | tee "$OUT/load.txt" >&2

for r in $(seq 1 "$ROUNDS"); do
	case_run "$r" "cpu ss-dense" default "${ssvae[@]}" --model ss-dense --backend cpu --batch-sizes 128 --hidden-sizes 1024
	for be in $BURN_CPU_BACKENDS; do
		case_run "$r" "cpu ss-dense" default "${burn[@]}" --model ss-dense --backend "$be" --batch-sizes 128 --hidden-sizes 1024
	done
	case_run "$r" "cpu ss-cnn" default "${ssvae[@]}" --model ss-cnn --backend cpu --batch-sizes 128
	for be in $BURN_CPU_BACKENDS; do
		if [ "$be" = ndarray ]; then
			case_run "$r" "cpu ss-cnn" "warmup $WARMUP_NDARRAY_CNN" "${burn_w1[@]}" --model ss-cnn --backend ndarray --batch-sizes 128
		else
			case_run "$r" "cpu ss-cnn" default "${burn[@]}" --model ss-cnn --backend "$be" --batch-sizes 128
		fi
	done
	case_run "$r" "lavapipe ss-dense" untuned "${ssvae_untuned[@]}" --model ss-dense --backend vulkan --batch-sizes 128 --hidden-sizes 1024
	case_run "$r" "lavapipe ss-dense" tuned "${ssvae_tuned[@]}" --model ss-dense --backend vulkan --batch-sizes 128 --hidden-sizes 1024
	case_run "$r" "lavapipe ss-dense" autotuned "${burn[@]}" --model ss-dense --backend wgpu --batch-sizes 128 --hidden-sizes 1024
	case_run "$r" "lavapipe ss-cnn" untuned "${ssvae_untuned[@]}" --model ss-cnn --backend vulkan --batch-sizes "$CNN_GPU_BATCH"
	case_run "$r" "lavapipe ss-cnn" tuned "${ssvae_tuned[@]}" --model ss-cnn --backend vulkan --batch-sizes "$CNN_GPU_BATCH"
	case_run "$r" "lavapipe ss-cnn" autotuned "${burn[@]}" --model ss-cnn --backend wgpu --batch-sizes "$CNN_GPU_BATCH"
done
echo "end: load $(cat /proc/loadavg)" | tee -a "$OUT/load.txt" >&2
rm -f "$OUT/stdout.txt" "$OUT/stderr.txt" "$OUT/time.txt"
python3 benches/burn/table.py "$RAW" | tee "$OUT/table.md"
