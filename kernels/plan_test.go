package kernels

import (
	"testing"

	"github.com/godiffuse/godiffuse/kernels/asm"
	"github.com/godiffuse/godiffuse/tensor"
)

// The planner routes shapes as its rules say, and a device's own Tuning
// reaches it (the path tests force each path through NewCPUTuned).
func TestPlans(t *testing.T) {
	conv := func(c, side, f, k, stride int) tensor.ConvParams {
		pad := k / 2
		o := (side+2*pad-k)/stride + 1
		return tensor.ConvParams{N: 2, C: c, H: side, W: side, F: f, KH: k, KW: k, StrideH: stride, StrideW: stride,
			PadTop: pad, PadBottom: pad, PadLeft: pad, PadRight: pad, OH: o, OW: o}
	}
	for _, level := range Levels() {
		d := NewCPULevel(1, level)
		cases := []struct {
			p    tensor.ConvParams
			want ConvPlan
		}{
			{conv(64, 16, 64, 3, 1), ConvPlan{ConvWinograd, ConvFlippedWinograd, ConvWinograd}},
			{conv(3, 32, 32, 3, 1), ConvPlan{ConvShifted, ConvIm2col, ConvIm2col}}, // an RGB conv_in: no flipped gradient; C·9 < F
			{conv(64, 16, 64, 1, 1), ConvPlan{ConvPointwise, ConvPointwise, ConvPointwise}},
			{conv(64, 16, 64, 3, 2), ConvPlan{ConvPhases, ConvIm2col, ConvPhases}},              // a downsampler: over the phases
			{conv(64, 10, 64, 3, 1), ConvPlan{ConvWinograd, ConvFlippedWinograd, ConvWinograd}}, // 50 tiles of 64 channels
			{conv(64, 4, 64, 3, 1), ConvPlan{ConvShifted, ConvFlippedShifted, ConvShifted}},     // 8 tiles: too few for Winograd; 4 wide shifts (forward: see below)
			{conv(8, 4, 8, 3, 1), ConvPlan{ConvShifted, ConvIm2col, ConvShifted}},               // too few channels for Winograd or a flipped gradient
			{conv(64, 3, 64, 3, 1), ConvPlan{ConvIm2col, ConvIm2col, ConvIm2col}},               // too few tiles for Winograd, too narrow to shift
		}
		for _, c := range cases {
			want := c.want
			if d.narrowIm2col(c.p) && want.Forward == ConvShifted { // 16 outputs fit the narrow AVX-512 tile
				want.Forward = ConvIm2col
			}
			if _, ok := directKernels[c.p.OW]; ok && level == AVX512 && c.p.KH == 3 && c.p.StrideH == 1 && asm.Available { // two 4×4 images: the direct kernel
				want.Forward = ConvDirect
			}
			if level == Generic { // no micro-kernels: the reference paths only
				want = ConvPlan{ConvIm2col, ConvIm2col, ConvIm2col}
				if isPointwise(c.p) {
					want = ConvPlan{ConvPointwise, ConvPointwise, ConvPointwise}
				}
			}
			if got := d.PlanConv2D(c.p); got != want {
				t.Errorf("%v: C=%d %dx%d k=%d s=%d: %v, want %v", level, c.p.C, c.p.H, c.p.W, c.p.KH, c.p.StrideH, got, want)
			}
		}
		// Two 7×7 images of 48 channels (32 tiles, 1,536 tile-channels): shifted rows, not Winograd;
		// the direct kernel at AVX-512; never for three such images.
		want := ConvShifted
		if level == AVX512 && asm.Available {
			want = ConvDirect
		}
		if got := d.PlanConv2D(conv(48, 7, 48, 3, 1)).Forward; level != Generic && got != want {
			t.Errorf("%v: C=48 7x7 batch 2: forward %v, want %v", level, got, want)
		}
		three := conv(48, 7, 48, 3, 1)
		three.N = 3
		if got := d.PlanConv2D(three).Forward; got == ConvDirect {
			t.Errorf("%v: C=48 7x7 batch 3: forward %v", level, got)
		}
		if got := d.PlanGemm(64, 64, 64, false, false, 1, false); (level == Generic) != (got == GemmReference) {
			t.Errorf("%v: a GEMM plans %v", level, got)
		}
	}
	for _, level := range Levels()[1:] {
		tune := DefaultTuning()
		tune.WinogradMinC, tune.ShiftMinWidth, tune.WinogradMinTiles, tune.WinogradMinTileChannels = 1, 1, 0, 0
		tune.DirectMaxPixels, tune.TapsMaxF = 0, 0
		d := NewCPUTuned(1, level, tune)
		if got := d.PlanConv2D(conv(8, 4, 8, 3, 1)).Forward; got != ConvWinograd {
			t.Errorf("%v with WinogradMinC 1: %v, want winograd", level, got)
		}
		tune.WinogradMinC = 1 << 30
		d = NewCPUTuned(1, level, tune)
		if got := d.PlanConv2D(conv(8, 5, 8, 3, 1)).Forward; got != ConvShifted {
			t.Errorf("%v with ShiftMinWidth 1: %v, want shifted", level, got)
		}
		tune.PlainUnpackedMaxM, tune.RowsAMaxN = -1, -1
		d = NewCPUTuned(1, level, tune)
		if got := d.PlanGemm(64, 64, 64, false, false, 1, false); got != GemmPacked {
			t.Errorf("%v with nothing unpacked: a GEMM plans %v", level, got)
		}
		tune.Winograd3DMinPlane, tune.WinogradMinC = 1, 16
		d = NewCPUTuned(1, level, tune)
		p3 := tensor.Conv3DParams{N: 1, C: 16, D: 4, H: 4, W: 4, F: 16, KD: 3, KH: 3, KW: 3, StrideD: 1, StrideH: 1, StrideW: 1,
			PadD: 1, PadH: 1, PadW: 1, OD: 4, OH: 4, OW: 4}
		if got := d.PlanConv3D(p3); got != (ConvPlan{ConvWinograd, ConvWinograd, ConvWinograd}) {
			t.Errorf("%v with Winograd3DMinPlane 1: %v", level, got)
		}
	}
}

// TestWinogradTile pins where F(4×4, 3×3) replaces F(2×2, 3×3) (see
// Tuning.Winograd4MinSide for the measurements behind each case).
func TestWinogradTile(t *testing.T) {
	d := NewCPUTuned(2, MaxLevel(), DefaultTuning())
	conv := func(n, c, f, side int) tensor.ConvParams {
		return tensor.ConvParams{N: n, C: c, F: f, H: side, W: side, OH: side, OW: side, KH: 3, KW: 3, StrideH: 1, StrideW: 1,
			PadTop: 1, PadBottom: 1, PadLeft: 1, PadRight: 1}
	}
	for _, c := range []struct {
		name string
		p    tensor.ConvParams
		want int
	}{
		{"tiny 32→32 at 28², batch 64", conv(64, 32, 32, 28), 4},
		{"tiny 80→32 at 28², batch 1", conv(1, 80, 32, 28), 4},
		{"tiny 48→48 at 14²: 16² of 4×4 tiles", conv(64, 48, 48, 14), 2},
		{"8×8: blocks of 8 tiles mostly empty", conv(64, 48, 48, 8), 2},
		{"cifar 128 at 32², batch 8 (512 tiles)", conv(8, 128, 128, 32), 4},
		{"cifar 256 at 16², batch 8 (128 tiles)", conv(8, 256, 256, 16), 4},
		{"cifar 128 at 32², batch 1 (64 tiles)", conv(1, 128, 128, 32), 2},
	} {
		if got := d.winogradTile(c.p); got != c.want {
			t.Errorf("%s: tile %d, want %d", c.name, got, c.want)
		}
	}
}

// TestWinogradStridesNeverPacked: no chunk geometry gives V and M a row
// stride that is a multiple of 2 KiB, which would make the GEMMs pack V
// for that chunk size only (readsBUnpacked), so that the grouping of the
// sums, and the bits, would follow the thread count.
func TestWinogradStridesNeverPacked(t *testing.T) {
	for side := 1; side <= 96; side++ {
		for _, n := range []int{1, 2, 7, 64} {
			for _, workers := range []int{1, 2, 3, 8} {
				for _, m := range []int{2, 4} {
					p := tensor.ConvParams{N: n, C: 16, H: side, W: side, F: 16, KH: 3, KW: 3, StrideH: 1, StrideW: 1,
						PadTop: 1, PadBottom: 1, PadLeft: 1, PadRight: 1, OH: side, OW: side}
					for _, tiles := range []int{1, 128, 4096} {
						if g := newWinoGeom(p, workers, tiles, m); g.ld%512 == 0 {
							t.Fatalf("side %d, %d images, %d workers, F(%d×%d): row stride %d", side, n, workers, m, m, g.ld)
						}
					}
				}
			}
		}
	}
}
