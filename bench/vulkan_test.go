package bench

import (
	"fmt"
	"testing"

	"github.com/godiffuse/godiffuse/internal/vktest"
)

// BenchmarkSgemmVulkan times the fp32 GEMM shader on the Vulkan device
// (vktest's choice: a discrete GPU first). On a GPU run the large sizes:
//
//	go test ./bench -run XXX -bench 'SgemmVulkan/n=(2048|4096|8192)'
//
// On lavapipe (Vulkan on the CPU) only the small ones finish in reasonable time.
func BenchmarkSgemmVulkan(b *testing.B) {
	dev := vktest.Device(b)
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
// targets' batches for comparison.
func BenchmarkUNetVulkan(b *testing.B) {
	dev := vktest.Device(b)
	for _, c := range []struct {
		config string
		batch  int
	}{{"tiny-mnist", 64}, {"ddpm-cifar10-32", 8}, {"ddpm-cifar10-32", 128}} {
		for _, mode := range []string{"forward", "train"} {
			b.Run(fmt.Sprintf("config=%s/mode=%s/batch=%d", c.config, mode, c.batch), func(b *testing.B) {
				benchUNetOn(b, dev, c.config, mode, c.batch)
			})
		}
	}
}
