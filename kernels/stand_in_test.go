//go:build noasm

package kernels

import (
	"fmt"
	"testing"
)

// TestWideTilesWithGoKernels runs the convolution paths, Winograd included,
// with the AVX-512 level's 12×32 tiles on the plain-Go stand-ins of the
// micro-kernels (go test -tags noasm ./kernels): on a machine without
// AVX-512 it is the only run of the packing and prepacked-weight code with
// MR = 12, NR = 32. The devices are built directly because NewCPULevel
// caps the level at what the CPU has.
func TestWideTilesWithGoKernels(t *testing.T) {
	for _, wino := range []int{16, 1} {
		tune := DefaultTuning()
		tune.WinogradMinC, tune.FlipMinC = wino, 1
		if wino == 1 {
			tune.WinogradMinTiles, tune.WinogradMinTileChannels = 0, 0
		}
		for _, level := range []Level{AVX2, AVX512} {
			d := &Device{threads: 2, level: level, tune: tune}
			t.Run(fmt.Sprintf("%v/WinogradMinC=%d", level, wino), func(t *testing.T) { testConv(t, d) })
		}
	}
}

// TestEdgeRowsWithGoKernels runs TestSgemmEdgeRows on the plain-Go
// stand-ins of both levels' kernels, the edge kernels' among them.
func TestEdgeRowsWithGoKernels(t *testing.T) {
	testEdgeRows(t, []Level{AVX2, AVX512}, func(l Level, tune Tuning) *Device {
		return &Device{threads: 1, level: l, tune: tune, weights: newWeightCache(), recycled: newRecycler(tune.RecycleMinLen, tune.PoisonRecycled)}
	})
}
