#!/usr/bin/env bash
# The Vulkan checks on a real GPU, in two halves.
#
# Here (a machine with Go):   bash scripts/gpu_check.sh build
#   builds static, stripped test binaries (CGO_ENABLED=0) and packs them with
#   the test data they read into .devbin/bundle.tar.xz, and downloads
#   Debian's Vulkan loader into .gl/ (both ignored by git; see
#   .git/info/exclude). The device tool sends at most 64 MiB of working tree:
#   testdata/ travels inside the bundle, compressed, so move the checkout's
#   own testdata/ aside for the call (the build step prints how).
# There (the GPU machine, with .devbin and .gl carried):   bash scripts/gpu_check.sh run|profile
#   unpacks the loader and the bundle, then runs, each step under its own
#   time limit and logged into $OUT: the Vulkan package's tests (conformance,
#   cooperative-matrix GEMM), the SGEMM, U-Net and Stable Diffusion
#   benchmarks on both GEMM paths, and the parity tests of every model on the
#   GPU. profile: the U-Net and SD benchmarks with the per-dispatch profile.
set -uo pipefail
cd "$(dirname "$0")/.."
pkgs="kernels/vulkan bench nn nn/unet nn/vae nn/clip pipeline"
case "${1:-}" in
build)
	set -e
	mkdir -p .devbin/bin .gl
	grep -qx '/.devbin/' .git/info/exclude 2>/dev/null || echo /.devbin/ >>.git/info/exclude
	grep -qx '/.gl/' .git/info/exclude || echo /.gl/ >>.git/info/exclude
	for p in $pkgs; do
		CGO_ENABLED=0 go test -c -ldflags='-s -w' -o ".devbin/bin/$(echo $p | tr / _).test" "./$p"
	done
	tar c .devbin/bin testdata/fixtures testdata/sd testdata/configs testdata/sd-configs |
		xz -6 -T0 >.devbin/bundle.tar.xz
	rm -r .devbin/bin
	# The loader, and libglvnd: NVIDIA's Vulkan driver is libGLX_nvidia.so.0,
	# which the loader cannot open without libGLdispatch (vkCreateInstance
	# then says VK_ERROR_INCOMPATIBLE_DRIVER).
	if ! ls .gl/libglvnd0_*.deb >/dev/null 2>&1; then
		o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
		mkdir -p /tmp/amd64/partial
		apt-get $o update -qq && (cd .gl && apt-get $o download libvulkan1 libglvnd0 libglx0 libgl1 libegl1 libopengl0 libgles2)
	fi
	ls -la .devbin .gl
	echo "for the call: mv testdata /tmp/testdata.aside; (call, carry .devbin and .gl); mv /tmp/testdata.aside testdata"
	;;
run | profile)
	out=${OUT:-/tmp}
	for f in .gl/*.deb; do dpkg -x "$f" /; done
	ldconfig
	if ! ls /usr/share/vulkan/icd.d/*nvidia* /etc/vulkan/icd.d/*nvidia* >/dev/null 2>&1; then
		export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
	fi
	tar xJf .devbin/bundle.tar.xz
	bin=$PWD/.devbin/bin
	export GODIFFUSE_REQUIRE_VULKAN=1 GODIFFUSE_REQUIRE_COOP=1 GODIFFUSE_SD_FIXTURES=$PWD/testdata/sd
	{
		date -u
		nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
		nproc
	} >"$out/env.log" 2>&1
	cat "$out/env.log"
	step() { # step SECONDS LOG DIR BINARY ARGS...: one binary run under a limit, appended to LOG
		local limit=$1 log=$2 dir=$3 exe=$4
		shift 4
		echo "== $exe $*" >>"$out/$log"
		(cd "$dir" && timeout "$limit" "$bin/$exe" "$@" >>"$out/$log" 2>&1)
		echo "== rc=$? after ${SECONDS}s: $exe $*" | tee -a "$out/$log"
	}
	if [ "$1" = profile ]; then # where a step's time goes: per-shader tables (bench/vulkan_test.go, logGPUProfile)
		export GODIFFUSE_VULKAN_PROFILE=1
		step 150 profile.log bench bench.test -test.run XXX -test.bench 'UNetVulkan/config=ddpm-cifar10-32/mode=(forward|train)/batch=128/matmul=fp32' -test.benchtime 1x
		step 120 profile.log bench bench.test -test.run XXX -test.bench 'SDVulkan/matmul=fp32/part=(unet|vae)' -test.benchtime 1x
		grep -E "^Benchmark|^  [a-z]|FAIL|panic" "$out/profile.log" | head -80
		exit 0
	fi
	step 60 vulkan.log kernels/vulkan kernels_vulkan.test -test.v -test.count=1
	grep -E "^(--- |ok|FAIL|PASS)|chose|self-check|device" "$out/vulkan.log" | head -40
	step 90 bench.log bench bench.test -test.run XXX -test.bench 'SgemmVulkan/n=(1024|2048|4096|8192)$' -test.benchtime 10x
	step 60 bench.log bench bench.test -test.run XXX -test.bench 'SgemmVulkan/fp16coop/n=(2048|4096|8192)$' -test.benchtime 10x
	step 150 bench.log bench bench.test -test.run XXX -test.bench 'UNetVulkan/config=ddpm-cifar10-32/mode=(forward|train)/batch=(8|128)/' -test.benchtime 10x
	step 120 bench.log bench bench.test -test.run XXX -test.bench 'SDVulkan/' -test.benchtime 3x
	grep -E "^Benchmark|FAIL|panic" "$out/bench.log"
	# The parity tests side by side (each is short on a GPU; one limit for all).
	step 60 nn.log nn nn.test -test.run ParityVulkan -test.v &
	step 60 unet.log nn/unet nn_unet.test -test.run ParityVulkan -test.v &
	step 60 vae.log nn/vae nn_vae.test -test.run ParityVulkan -test.v &
	step 60 clip.log nn/clip nn_clip.test -test.run ParityVulkan -test.v &
	step 60 pipeline.log pipeline pipeline.test -test.run ParityVulkan -test.v &
	wait
	cat "$out"/{nn,unet,vae,clip,pipeline}.log >"$out/parity.log" && rm "$out"/{nn,unet,vae,clip,pipeline}.log
	grep -hE "^(--- |    --- |ok|FAIL|PASS)" "$out/parity.log"
	;;
*)
	echo "usage: bash scripts/gpu_check.sh build|run|profile" >&2
	exit 2
	;;
esac
