#!/usr/bin/env bash
# The Vulkan checks on a real GPU, in two halves.
#
# Here (a machine with Go):   bash scripts/gpu_check.sh build
#   builds static test binaries (CGO_ENABLED=0) into .devbin/ and downloads
#   Debian's Vulkan loader into .gl/ (both ignored by git; see .git/info/exclude).
# There (the GPU machine, with .devbin and .gl carried):   bash scripts/gpu_check.sh run
#   unpacks the loader, runs the conformance table and the UNet parity on the
#   GPU, then the benchmarks, and prints a short table.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
build)
	mkdir -p .devbin .gl
	grep -qx '/.devbin/' .git/info/exclude || echo /.devbin/ >>.git/info/exclude
	grep -qx '/.gl/' .git/info/exclude || echo /.gl/ >>.git/info/exclude
	for p in kernels/vulkan nn bench; do
		CGO_ENABLED=0 go test -c -o .devbin/$(basename $p).test ./$p
	done
	mkdir -p testdata && cp -r testdata .devbin/ 2>/dev/null || true
	if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
		o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
		mkdir -p /tmp/amd64/partial
		apt-get $o update -qq && (cd .gl && apt-get $o download libvulkan1)
	fi
	ls -la .devbin .gl
	;;
run)
	for f in .gl/*.deb; do dpkg -x "$f" /; done
	ldconfig
	if ! ls /usr/share/vulkan/icd.d/*nvidia* /etc/vulkan/icd.d/*nvidia* >/dev/null 2>&1; then
		export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
	fi
	export GODIFFUSE_REQUIRE_VULKAN=1
	out=${OUT:-/tmp}
	(cd kernels/vulkan && ../../.devbin/vulkan.test -test.run 'Devices|Conformance|Adam|Cooperative|ChooseMatMul' -test.v 2>&1) | tee "$out/conformance.log" | grep -E "device|chose|self-check|^\s+[a-z].*e[-+]|PASS|FAIL" || true
	(cd nn && ../.devbin/nn.test -test.run ParityVulkan -test.v 2>&1) | tee "$out/parity.log" | grep -E "^(---|    ---)|FAIL" || true
	# (go test splits -bench at '/' before matching, so fp32 and fp16coop need two patterns)
	for pat in 'SgemmVulkan/n=(2048|4096|8192)$' 'SgemmVulkan/fp16coop/n=(2048|4096|8192)$'; do
		(cd bench && ../.devbin/bench.test -test.run XXX -test.bench "$pat" -test.benchtime 10x 2>&1) | tee -a "$out/sgemm.log" | grep -E "Benchmark|FAIL" || true
	done
	(cd bench && ../.devbin/bench.test -test.run XXX -test.bench 'UNetVulkan/config=ddpm-cifar10-32/mode=(forward|train)/batch=128$' -test.benchtime 10x 2>&1) | tee "$out/unet.log" | grep -E "Benchmark|FAIL" || true
	;;
*)
	echo "usage: bash scripts/gpu_check.sh build|run" >&2
	exit 2
	;;
esac
