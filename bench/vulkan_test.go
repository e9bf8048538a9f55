package bench

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godiffuse/godiffuse/internal/vktest"
	"github.com/godiffuse/godiffuse/kernels/vulkan"
	"github.com/godiffuse/godiffuse/tensor"
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

// logGPUProfile runs step once more with the Vulkan device's per-dispatch
// profile on and prints its heaviest entries and the totals per shader, when
// GODIFFUSE_VULKAN_PROFILE=1 and dev is a Vulkan device. Each dispatch is
// then submitted and waited for alone (see vulkan.Device.SetProfile): the
// sum exceeds the step's time by that overhead.
func logGPUProfile(b *testing.B, dev tensor.Device, step func()) {
	vk, ok := dev.(*vulkan.Device)
	if !ok || os.Getenv("GODIFFUSE_VULKAN_PROFILE") != "1" {
		return
	}
	b.StopTimer()
	if err := vk.SetProfile(true); err != nil {
		b.Fatal(err)
	}
	step()
	entries := vk.Profile()
	if err := vk.SetProfile(false); err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	calls := 0
	byShader := map[string]*vulkan.ProfileEntry{}
	for _, e := range entries {
		total += e.Time
		calls += e.Calls
		s := byShader[e.Shader]
		if s == nil {
			s = &vulkan.ProfileEntry{Shader: e.Shader}
			byShader[e.Shader] = s
		}
		s.Calls += e.Calls
		s.Time += e.Time
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "  %d dispatches, %.1f ms (each submitted alone)\nper shader:\n", calls, ms(total))
	shaders := slices.SortedFunc(maps.Values(byShader), func(a, b *vulkan.ProfileEntry) int { return int(b.Time - a.Time) })
	for _, s := range shaders {
		fmt.Fprintf(&sb, "  %-28s %5d calls %8.2f ms %5.1f %%\n", s.Shader, s.Calls, ms(s.Time), 100*float64(s.Time)/float64(total))
	}
	sb.WriteString("heaviest dispatches (shader, grid):\n")
	for _, e := range entries[:min(25, len(entries))] {
		fmt.Fprintf(&sb, "  %-28s %4d×%4d×%4d %5d calls %8.2f ms %7.1f µs/call\n", e.Shader, e.Grid[0], e.Grid[1], e.Grid[2],
			e.Calls, ms(e.Time), float64(e.Time.Microseconds())/float64(e.Calls))
	}
	// Printed, not logged: go test cuts a benchmark's log to ten lines.
	fmt.Printf("%s profile:\n%s", b.Name(), sb.String())
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
