#!/usr/bin/env bash
# Same-run comparison of issue 4's targets with the anchors on this machine:
# SGEMM ours → OpenBLAS (2 threads, 1 thread) and the AVX2 FMA ceiling → ours;
# for each U-Net case ours → PyTorch → ours; then the peak RSS of the
# ddpm-cifar10-32 train step at batch 8 (ours with GOGC=15, as `diffuse train`
# sets it). Needs ../shared/anchors, python3-torch and python3-numpy
# (apt-get install -y python3-torch python3-numpy libopenblas0-pthread), gcc.
#
#   bash scripts/compare_torch.sh [ITERS]
set -euo pipefail
cd "$(dirname "$0")/.."
iters=${1:-5}
anchors=$(cd .. && pwd)/shared/anchors
bin=$(mktemp -d)/bench.test
go test -c -o "$bin" ./bench
ours() { # config mode batch [env...]
	(cd bench && env "${@:4}" "$bin" -test.run XXX -test.bench "UNet\$/config=$1/mode=$2/batch=$3\$" -test.benchtime "${iters}x" |
		awk -v c="$1 $2 $3" '/^Benchmark/ {for (i = 1; i <= NF; i++) if ($(i+1) == "img/s") s = $i; else if ($(i+1) == "peak-RSS-MiB") r = $i; print "ours", c, s, "img/s", r ? r " MiB" : ""}')
}
torch() { # config mode batch
	/usr/bin/time -f "%M" -o /tmp/torch_rss /usr/bin/python3 "$anchors/torch_bench.py" "$1" "$2" "$3" "$iters" |
		awk -v c="$1 $2 $3" '{split($NF, a, "="); print "torch", c, a[2], "img/s"}'
	echo "torch $1 $2 $3 peak $(($(cat /tmp/torch_rss) / 1024)) MiB"
}
sgemm() {
	(cd bench && "$bin" -test.run XXX -test.bench 'Sgemm$' -test.benchtime 2s | awk '/^Benchmark/ {print "ours", $1, $(NF-1), "GFLOP/s"}')
}
sgemm
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 "$anchors/gemm_anchor.py" 2 | sed 's/^/openblas 2 threads /'
OPENBLAS_NUM_THREADS=1 /usr/bin/python3 "$anchors/gemm_anchor.py" 1 | grep n=1024 | sed 's/^/openblas 1 thread /'
if command -v gcc >/dev/null; then
	gcc -O2 -mavx2 -mfma -o "$(dirname "$bin")/fma" bench/anchors/fma_peak_avx2.c && "$(dirname "$bin")/fma"
fi
sgemm
for c in "tiny-mnist forward 64" "tiny-mnist train 64" "ddpm-cifar10-32 forward 8" "ddpm-cifar10-32 train 8"; do
	ours $c
	torch $c
	ours $c
done
echo "# peak RSS of the cifar train step, ours with GOGC=15 (diffuse train's default), alone in its process"
ours ddpm-cifar10-32 train 8 GOGC=15
