#!/usr/bin/env bash
# Same-run comparison of the CPU speed targets (issues 4 and 17) with the
# anchors in ../shared/anchors on this machine, printed as ratios at the end:
#
#   SGEMM, 2 threads, n = 512 … 2048      ours / OpenBLAS                target ≥ 1.0
#   SGEMM, 1 thread, n = 1024             ours / FMA ceiling of one core target ≥ 0.90
#   U-Net forward (b64/b8 and batch 1)    ours / ONNX Runtime, / PyTorch target ≥ 1.0 (ORT)
#   U-Net train step (b64/b8)             ours / PyTorch                 target ≥ 1.5
#   peak RSS, cifar train step b8         ours (GOGC=15) / PyTorch       target ≤ 1.0
#   (and both train steps at GOGC=15, diffuse train's setting, / PyTorch, and both batch-1
#   forwards at GOGC=10, diffuse generate's, / ONNX Runtime: for information)
#
# Every anchor runs between two runs of ours (ours → anchor → ours; the FMA
# ceiling in five pairs with five one-thread SGEMMs) and the ratio takes the
# mean of the two (at batch 1, ours → ONNX Runtime → PyTorch →
# ours → ONNX Runtime → ours: the means of three and two). Each runner's figure is its median call
# (torch_bench.py and ort_bench.js report the median; ours is BenchmarkUNet's
# median-img/s, its mean img/s counting garbage collections and slow spells). The CPU, its family/model and the vector
# level our kernels dispatch to come first. Where the CPU has AVX-512 and
# the environment sets no OPENBLAS_CORETYPE, the PyTorch and NumPy anchors
# run with OPENBLAS_CORETYPE=SkylakeX (Debian's OpenBLAS 0.3.21 misdetects
# newer Xeons and is then ~4× slow; see ../shared/anchors/README.md); the
# FMA ceiling is measured at the level our kernels run at (the widest the CPU has unless
# GODIFFUSE_CPU holds them lower).
#
# Needs ../shared/anchors, python3-torch, python3-numpy, libopenblas0-pthread,
# gcc, node and npm (ONNX Runtime is installed on first use with
# `npm install --ignore-scripts onnxruntime-node@1.30.0` into
# ~/.cache/godiffuse/ort; without npm the ONNX Runtime rows are skipped).
#
# GODIFFUSE_CPU=avx2 in the environment measures the AVX2 kernels on an
# AVX-512 CPU against OpenBLAS's AVX2 (Haswell) kernels and the AVX2 ceiling.
#
#   bash scripts/compare_torch.sh [ITERS]
set -euo pipefail
cd "$(dirname "$0")/.."
iters=${1:-5}
anchors=$(cd .. && pwd)/shared/anchors
# The anchors' Python side, checked first (a fresh machine lacks it, and the
# script would otherwise stop with a traceback after our own SGEMM rows).
if ! /usr/bin/python3 -c 'import numpy, torch' 2>/dev/null; then
	echo "compare_torch.sh: the anchors need NumPy and PyTorch: apt-get install -y python3-torch python3-numpy libopenblas0-pthread" >&2
	exit 1
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
bin=$scratch/bench.test
log=$scratch/log
go test -c -o "$bin" ./bench

# --- the machine ---------------------------------------------------------
cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
fam=$(grep -m1 '^cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')
mod=$(grep -m1 '^model\s*:' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')
level=$(cd bench && "$bin" -test.run '^TestKernelLevel$' -test.v | awk '/kernel level/ {print $NF}')
echo "# CPU: $cpu (family $fam, model $mod), $(nproc) cores; our kernels: ${level:-?}"
# The anchors' BLAS core type: SkylakeX on an AVX-512 CPU, Haswell (its AVX2
# kernels) when GODIFFUSE_CPU holds ours at avx2 there; one set in the
# environment is kept. ONNX Runtime cannot be held back and keeps AVX-512.
anchor_env=()
if grep -q -m1 avx512f /proc/cpuinfo; then
	want=SkylakeX
	[ "$level" = avx512 ] || want=Haswell
	if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
		anchor_env=(OPENBLAS_CORETYPE=$want)
		echo "# AVX-512 CPU, our kernels at ${level:-?}: PyTorch and NumPy anchors run with OPENBLAS_CORETYPE=$want"
	else
		# Some machines set it for every process (Haswell, i.e. AVX2 kernels,
		# was seen on an AVX-512 Zen 5): say so, since it halves OpenBLAS there.
		echo "# AVX-512 CPU: OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE from the environment is kept (unset it for $want)"
	fi
	[ "$level" = avx512 ] || echo "# ONNX Runtime still runs at AVX-512"
fi
# The FMA ceiling at the level our kernels run at.
if [ "$level" = avx512 ]; then
	gcc -O2 -mavx512f -mfma -o "$scratch/fma" "$anchors/fma_peak.c"
else
	gcc -O2 -mavx2 -mfma -o "$scratch/fma" bench/anchors/fma_peak_avx2.c
fi
echo "# ITERS=$iters; $(date -u +%Y-%m-%dT%H:%MZ)"

ort_dir=$HOME/.cache/godiffuse/ort
if [ ! -d "$ort_dir/node_modules/onnxruntime-node" ] && command -v npm >/dev/null; then
	mkdir -p "$ort_dir"
	(cd "$ort_dir" && npm install --silent --ignore-scripts onnxruntime-node@1.30.0 >/dev/null 2>&1) || echo "# npm install onnxruntime-node failed: no ONNX Runtime rows"
fi
have_ort=false
[ -d "$ort_dir/node_modules/onnxruntime-node" ] && command -v node >/dev/null && have_ort=true

# --- the runners: each prints "WHO CASE VALUE UNIT" ------------------------
# Batch 1 runs twenty times the iterations (100 calls at ITERS=5, on every
# side): this machine's speed moves in spells of ~40 calls (tiny-mnist b1
# per call 3.0 ↔ 4.5 ms, 2026-12-05), so the median of 20 calls of 3 ms
# landed in one spell or the other and the same minutes gave 0.77–0.93×
# ONNX Runtime, where 400 calls a side alternated gave parity. Train
# steps run four times too, on both sides, so that their median is a step of
# the steady state a real run spends its thousands of steps in: Go's heap grows
# to its working size over the first ~10 steps (6 of the first 10 cifar b8
# steps were 1.5–2× slower at the default GOGC, 2026-12-05), PyTorch's caching
# allocator is there after its 2 warm-up steps.
b1_calls=$((iters * 20))
n_iters() {
	if [ "$1" = 1 ]; then
		echo "$b1_calls"
	elif [ "$2" = train ]; then
		echo $((iters * 4))
	else
		echo "$iters"
	fi
}
ours() { # config mode batch [env...]
	(cd bench && env "${@:4}" "$bin" -test.run XXX -test.bench "UNet\$/config=$1/mode=$2/batch=$3\$" -test.benchtime "$(n_iters "$3" "$2")x" |
		awk -v c="$1/$2/b$3" '/^Benchmark/ {for (i = 1; i <= NF; i++) if ($(i+1) == "median-img/s") s = $i; else if ($(i+1) == "peak-RSS-MiB") r = $i
			print "ours", c, s, "img/s"; if (r) print "ours-rss", c, r, "MiB"}')
}
torch() { # config mode batch
	env "${anchor_env[@]}" /usr/bin/time -f "%M" -o "$scratch/torch_rss" /usr/bin/python3 "$anchors/torch_bench.py" "$1" "$2" "$3" "$(n_iters "$3" "$2")" |
		awk -v c="$1/$2/b$3" '{split($NF, a, "="); print "torch", c, a[2], "img/s"}'
	[ "$2" = train ] && echo "torch-rss $1/$2/b$3 $(($(cat "$scratch/torch_rss") / 1024)) MiB"
	return 0
}
ort() { # config batch
	$have_ort || return 0
	local model=$scratch/$1-b$2.onnx
	[ -f "$model" ] || /usr/bin/python3 "$anchors/export_onnx.py" "$1" "$2" "$model" >/dev/null 2>&1
	NODE_PATH=$ort_dir/node_modules node "$anchors/ort_bench.js" "$model" "../shared/reference/$1.json" "$2" "$([ "$2" = 1 ] && echo "$b1_calls" || echo $((iters * 4)))" "$(nproc)" |
		awk -v c="$1/forward/b$2" '{split($NF, a, "="); print "ort", c, a[2], "img/s"}'
}
sgemm() { # threads benchtime
	# The one-thread case is its own subtree (threads=1/n=1024): no
	# two-thread product runs before it. Its row keeps the name n=1024/threads=1.
	local only=(-test.bench 'Sgemm$/n=(512|1024|2048)$')
	[ "$1" = 1 ] && only=(-test.bench 'Sgemm$/threads=1/n=1024$')
	(cd bench && "$bin" -test.run XXX "${only[@]}" -test.benchtime "$2" |
		awk '/^Benchmark/ {n = $1; sub(/^BenchmarkSgemm\//, "", n); sub(/-[0-9]+$/, "", n); if (n == "threads=1/n=1024") n = "n=1024/threads=1"
			print "ours", "sgemm/" n, $(NF-1), "GFLOP/s"}')
}

ceiling() { # the FMA ceiling of one core (fma_peak.c and fma_peak_avx2.c word it differently)
	"$scratch/fma" | awk '{for (i = 1; i < NF; i++) if ($(i+1) == "GFLOP/s") v = $i; print "ceiling", "sgemm/n=1024/threads=1", v, "GFLOP/s"}'
}

{
	# Two threads: four readings of ours (1 s a size) around three of
	# OpenBLAS's (~0.5 s a size), the ratio the means': with one reading of
	# OpenBLAS between two of ours, a slow spell on both of ours had read
	# 0.96× at 2,048² where the other runs read 1.07–1.13× (2026-12-06).
	for _ in 1 2 3; do
		sgemm 2 1s
		env "${anchor_env[@]}" /usr/bin/python3 "$anchors/gemm_anchor.py" 2 | awk '/^numpy/ {sub(/:$/, "", $3); print "openblas", "sgemm/" $3, $4, "GFLOP/s"}'
	done
	sgemm 2 1s
	env "${anchor_env[@]}" OPENBLAS_NUM_THREADS=1 /usr/bin/python3 "$anchors/gemm_anchor.py" 1 |
		awk '/^numpy sgemm n=1024/ {print "openblas", "sgemm/n=1024/threads=1", $4, "GFLOP/s"}'
	# One thread against the FMA ceiling: five pairs, each reading of ours
	# (1 s) right after one of the ceiling (0.35 s), the ratio the means': this
	# machine's speed moves in spells of a minute or so, and two readings a
	# side 20 s apart had put one side in a spell the other missed (0.82–0.90
	# in three runs of the same code, 2026-12-06).
	for _ in 1 2 3 4 5; do
		ceiling
		sgemm 1 1s
	done
	for c in "tiny-mnist forward 64" "tiny-mnist forward 1" "ddpm-cifar10-32 forward 8" "ddpm-cifar10-32 forward 1"; do
		set -- $c
		ours "$@"
		ort "$1" "$3"
		torch "$@"
		ours "$@"
		if [ "$3" = 1 ]; then
			# batch 1 once more a side: the machine's spells move a 100-call
			# median by a third within a minute (ONNX Runtime's own tiny-mnist b1
			# read 266–529 img/s in three runs, 2026-12-06); the rows are means
			ort "$1" "$3"
			ours "$@"
		fi
	done
	for c in "tiny-mnist train 64" "ddpm-cifar10-32 train 8"; do
		set -- $c
		ours "$@"
		torch "$@"
		ours "$@"
	done
	# batch 1 as diffuse generate runs it (GOGC=10, its default): at GOGC=100 the
	# heap doubles before the first collection and a fresh process's first ~150
	# calls fault in fresh pages (bench/RESULTS.md, 2026-12-05 afternoon)
	for c in "tiny-mnist forward 1" "ddpm-cifar10-32 forward 1"; do
		set -- $c
		ours "$@" GOGC=10 | sed 's/^ours /ours-gogc10 /'
	done
	# the train steps as diffuse train runs them (GOGC=15, its default), each alone in its
	# process: their speed against the same PyTorch figures, and the cifar step's peak RSS
	for c in "tiny-mnist train 64" "ddpm-cifar10-32 train 8"; do
		set -- $c
		ours "$@" GOGC=15 | sed 's/^ours-rss/ours-rss-gogc15/; s/^ours /ours-gogc15 /'
	done
} | tee "$log"

echo
echo "| case | ours | anchor | ratio | target |"
echo "| --- | --- | --- | --- | --- |"
awk '
	{ key = $1 SUBSEP $2; sum[key] += $3; cnt[key]++; if ($1 !~ /rss/) unit[$2] = $4; if (!($2 in seen)) { seen[$2] = 1; order[++n] = $2 } }
	function mean(w, c) { return cnt[w, c] ? sum[w, c] / cnt[w, c] : 0 }
	function row(c, a, label, target) { rowOf("ours", c, c, a, label, target) }
	function rowOf(who, c, name, a, label, target,   o, v) {
		o = mean(who, c); v = mean(a, c)
		if (o > 0 && v > 0) printf "| %s | %.1f %s | %s %.1f | %.2f× | %s |\n", name, o, unit[c], label, v, o / v, target
	}
	END {
		for (i = 1; i <= n; i++) {
			c = order[i]
			if (c ~ /^sgemm\/n=(512|1024|2048)$/) row(c, "openblas", "OpenBLAS", "≥ 1.0")
			else if (c ~ /threads=1/) { row(c, "ceiling", "FMA ceiling", "≥ 0.90"); row(c, "openblas", "OpenBLAS 1 thread", "") }
			else if (c ~ /forward/) {
				row(c, "ort", "ONNX Runtime", "≥ 1.0")
				if (cnt["ours-gogc10", c]) rowOf("ours-gogc10", c, c " (GOGC=10, as diffuse generate)", "ort", "ONNX Runtime", "")
				row(c, "torch", "PyTorch", "")
			}
			else if (c ~ /train/) { row(c, "torch", "PyTorch", "≥ 1.5"); rowOf("ours-gogc15", c, c " (GOGC=15, as diffuse train)", "torch", "PyTorch", "") }
		}
		o = mean("ours-rss-gogc15", "ddpm-cifar10-32/train/b8"); v = mean("torch-rss", "ddpm-cifar10-32/train/b8")
		if (o > 0 && v > 0) printf "| peak RSS, cifar train b8 (MiB) | %.0f | PyTorch %.0f | %.2f× | ≤ 1.0 |\n", o, v, o / v
	}' "$log"
