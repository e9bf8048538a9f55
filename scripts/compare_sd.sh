#!/usr/bin/env bash
# Same-run comparison of the Stable Diffusion targets with PyTorch on this
# machine (shared/reference/sd/bench_sd.py, random SD 1.5-size weights):
# ours → PyTorch → ours for the U-Net forward (batch 2, 64×64 latents: one
# guided step), the VAE decode to 512×512 and the text encoder; then the
# peak RSS of a whole 512×512 txt2img with 2 DDIM steps (PyTorch fp32; ours
# from a full-size random folder with F16 weights, as `diffuse generate`
# runs it). Needs ../shared/reference/sd and python3-torch
# (apt-get install -y python3-torch libopenblas0-pthread). Prints the CPU
# and its vector level first. OPENBLAS_CORETYPE=SkylakeX is set for PyTorch
# where the CPU has AVX-512 (shared/anchors/README.md).
#
#   bash scripts/compare_sd.sh [SD_FOLDER]    (default: made with pipeline/internal/mkrandom in a temp folder)
set -euo pipefail
cd "$(dirname "$0")/.."
ref=$(cd .. && pwd)/shared/reference/sd
tmp=$(mktemp -d)
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-) ($(nproc) cores)"
core=()
if grep -qm1 avx512f /proc/cpuinfo; then
	core=(env OPENBLAS_CORETYPE=SkylakeX)
	echo "vector level: avx512 (PyTorch runs with OPENBLAS_CORETYPE=SkylakeX)"
else
	echo "vector level: $(grep -qm1 avx2 /proc/cpuinfo && echo avx2 || echo generic)"
fi
go test -c -o "$tmp/bench.test" ./bench
go build -o "$tmp/diffuse" ./cmd/diffuse
ours() { # part
	(cd bench && "$tmp/bench.test" -test.run XXX -test.bench "SD/part=$1\$" -test.benchtime 2x -test.timeout 60m |
		awk -v p="$1" '/^Benchmark/ {for (i = 1; i <= NF; i++) if ($(i+1) == "s/run") print "ours", p, $i, "s"}')
}
torch() { # part
	(cd "$ref" && "${core[@]}" /usr/bin/python3 bench_sd.py --repeat 2 --only "$1" | grep median |
		awk -v p="$1" '{for (i = 1; i <= NF; i++) if ($i == "median") print "torch", p, $(i+1), "s"}')
}
for part in unet vae text; do
	ours $part
	torch $part
	ours $part
done
model=${1:-}
if [ -z "$model" ]; then
	model=$tmp/sd15-random
	go run ./pipeline/internal/mkrandom -out "$model" >/dev/null
fi
echo "# whole 512x512 txt2img, 2 DDIM steps, peak RSS"
(cd "$ref" && "${core[@]}" /usr/bin/time -f "torch txt2img peak %M KiB, wall %e s" /usr/bin/python3 bench_sd.py --only --txt2img 2 | grep txt2img)
/usr/bin/time -f "ours txt2img peak %M KiB, wall %e s (load included)" "$tmp/diffuse" generate -model "$model" \
	-prompt "a photograph of an astronaut riding a horse" -steps 2 -sampler ddim -out "$tmp/out.png" 2>&1 | grep -v '^step\|^device\|^wrote'
rm -rf "$tmp"
