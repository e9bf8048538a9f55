package bench

import (
	"fmt"
	"os"
	"testing"

	"github.com/godiffuse/godiffuse/internal/vktest"
	"github.com/godiffuse/godiffuse/kernels/vulkan"
)

// gpu returns the Vulkan device for a benchmark. A CPU implementation such
// as lavapipe is skipped (timing an emulator says nothing, and a pattern
// like 'UNet/' would otherwise run these for minutes) unless
// GODIFFUSE_BENCH_CPU_VULKAN=1.
func gpu(b *testing.B) *vulkan.Device {
	dev := vktest.Device(b)
	if dev.Info().Type == "cpu" && os.Getenv("GODIFFUSE_BENCH_CPU_VULKAN") != "1" {
		b.Skipf("%s is a CPU implementation of Vulkan; set GODIFFUSE_BENCH_CPU_VULKAN=1 to time it anyway", dev.Name())
	}
	return dev
}

// BenchmarkSgemmVulkan times the fp32 GEMM shader on the Vulkan device
// (vktest's choice: a discrete GPU first). On a GPU run the large sizes:
//
//	go test ./bench -run XXX -bench 'SgemmVulkan/n=(2048|4096|8192)'
//
// On lavapipe (Vulkan on the CPU) it skips; see gpu.
func BenchmarkSgemmVulkan(b *testing.B) {
	dev := gpu(b)
	for _, n := range []int{256, 512, 1024, 2048, 4096, 8192} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) { sgemmOnDevice(b, dev, n) })
	}
	// The cooperative-matrix (tensor core) path: fp16 inputs, fp32 accumulation.
	for _, n := range []int{2048, 4096, 8192} {
		b.Run(fmt.Sprintf("fp16coop/n=%d", n), func(b *testing.B) {
			if err := dev.SetMatMulFP16(true); err != nil {
				b.Skip(err)
			}
			defer dev.SetMatMulFP16(false)
			sgemmOnDevice(b, dev, n)
		})
	}
}

// BenchmarkUNetVulkan is BenchmarkUNet on the Vulkan device, with the
// batch the GPU target is stated at (ddpm-cifar10-32, 128) and the CPU
// targets' batches for comparison; each GEMM path (matmul=fp32, the
// default, and matmul=fp16coop, the cooperative-matrix one that
// GODIFFUSE_VULKAN_MATMUL=fp16 takes) in turn.
func BenchmarkUNetVulkan(b *testing.B) {
	dev := gpu(b)
	for _, c := range []struct {
		config string
		batch  int
	}{{"tiny-mnist", 64}, {"ddpm-cifar10-32", 8}, {"ddpm-cifar10-32", 128}} {
		for _, mode := range []string{"forward", "train"} {
			for _, mm := range matMulPaths {
				b.Run(fmt.Sprintf("config=%s/mode=%s/batch=%d/matmul=%s", c.config, mode, c.batch, mm), func(b *testing.B) {
					defer useMatMul(b, dev, mm)()
					benchUNetOn(b, dev, c.config, mode, c.batch)
				})
			}
		}
	}
}

// matMulPaths names the Vulkan GEMM paths the GPU benchmarks run in turn.
var matMulPaths = []string{"fp32", "fp16coop"}

// useMatMul puts dev's GEMMs on path (skipping b where the device lacks
// it) and returns the function that puts them back on fp32.
func useMatMul(b *testing.B, dev *vulkan.Device, path string) func() {
	if err := dev.SetMatMulFP16(path == "fp16coop"); err != nil {
		b.Skip(err)
	}
	return func() { dev.SetMatMulFP16(false) }
}
