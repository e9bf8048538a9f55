#!/usr/bin/env bash
# Evaluates a checkpoint of the reference run (issue 6) with the judge against the Fashion-MNIST test set:
# the main setting on N samples, the guidance sweep and the DDIM-paper-style sampler table on NS samples
# each, then prints the markdown table. Needs Debian's dataset-fashion-mnist.
#
#   bash scripts/eval_reference.sh CHECKPOINT OUTDIR [N] [NS]
#
# Reports already in OUTDIR are kept (the script resumes). SKIP_DDPM=1 leaves out DDPM with 1000 steps,
# which costs as much as all the rest together.
set -euo pipefail
ckpt=$1 out=$2 n=${3:-10000} ns=${4:-1000}
D=/usr/share/datasets/fashion-mnist
real="idx:$D/t10k-images-idx3-ubyte.gz,$D/t10k-labels-idx1-ubyte.gz"
mkdir -p "$out"
bin=$(mktemp -d)/diffuse
go build -o "$bin" ./cmd/diffuse
run() { # name, flags…
	local name=$1; shift
	[ -f "$out/$name.json" ] || "$bin" eval -checkpoint "$ckpt" -real "$real" -json "$out/$name.json" "$@" >/dev/null
}
run main -n "$n" -sampler dpm++2m -steps 20 -guidance 2 -noise-baseline
for g in 0 1 2 3 5; do run "guidance_$g" -n "$ns" -sampler dpm++2m -steps 20 -guidance "$g"; done
for s in 10 20 50 100; do run "ddim_$s" -n "$ns" -sampler ddim -steps "$s" -guidance 2; done
for s in 10 20; do run "dpmpp_$s" -n "$ns" -sampler dpm++2m -steps "$s" -guidance 2; done
[ "${SKIP_DDPM:-0}" = 1 ] || run ddpm_1000 -n "$ns" -sampler ddpm -steps 1000 -guidance 2
"$bin" sample -checkpoint "$ckpt" -n 100 -guidance 2 -out "$out/grid.png"  # ten per class, one column each
reports=()
for g in main guidance_ ddim_ dpmpp_ ddpm_; do reports+=($(ls -v "$out"/$g*.json 2>/dev/null || true)); done
go run ./bench/internal/evaltable "${reports[@]}"
