package kernels

import (
	"fmt"
	"os"
	"sync"

	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// Which path runs for a shape. Every choice among the CPU paths is made in
// this file, from the device's level (which micro-kernels exist) and its
// Tuning (the thresholds); the op entry points switch on the plan, and
// PlanConv2D, PlanConv3D and PlanGemm answer "what runs for this shape?"
// for anyone who asks. GODIFFUSE_TRACE_PLANS=1 prints the plan of every
// distinct convolution a process runs, once, to standard error (the plan
// listing of kernels/README.md was made so).
// ---------------------------------------------------------------------------

// tracePlans is read once, at start-up.
var tracePlans = os.Getenv("GODIFFUSE_TRACE_PLANS") != ""

var tracedPlans sync.Map

// trace prints a plan the first time its shape is seen (with tracing on).
func (d *Device) trace(shape string, plan fmt.Stringer) {
	if !tracePlans {
		return
	}
	key := d.level.String() + " " + shape
	if _, seen := tracedPlans.LoadOrStore(key, true); !seen {
		fmt.Fprintf(os.Stderr, "plan %s: %s\n", key, plan)
	}
}

// ConvPath names a way to compute one pass of a convolution.
type ConvPath int

// Convolution paths.
const (
	ConvIm2col          ConvPath = iota // im2col (vol2col) + GEMM; col2im for the input gradient: the reference
	ConvPointwise                       // 1×1, stride 1, no padding: one GEMM on the image itself
	ConvShifted                         // shifted rows: the GEMM reads windows of the padded input (conv.go)
	ConvWinograd                        // Winograd F(2×2, 3×3) (winograd.go; in 3-D by planes, conv3d_winograd.go)
	ConvFlippedShifted                  // input gradient as a shifted convolution of dy with flipped weights
	ConvFlippedWinograd                 // input gradient as a Winograd convolution of dy with flipped weights
	// ConvPhases: a strided 2-D convolution with symmetric padding as the
	// 3-D one of depth 1, whose shifted rows read the image's phases
	// (conv3d.go, volShift).
	ConvPhases
	ConvDirect // a direct 3×3 kernel, 16 output channels in a vector's lanes (direct.go)
	ConvTaps   // few output channels: each a sum of shifted rows, output pixels in the lanes (convtaps.go)
)

func (c ConvPath) String() string {
	return [...]string{"im2col", "pointwise", "shifted", "winograd", "flipped-shifted", "flipped-winograd", "phases", "direct", "taps"}[c]
}

// ConvPlan is the path of each pass of one convolution.
type ConvPlan struct {
	Forward, BackwardInput, BackwardWeight ConvPath
}

func (p ConvPlan) String() string {
	return fmt.Sprintf("forward %s, input gradient %s, weight gradient %s", p.Forward, p.BackwardInput, p.BackwardWeight)
}

// PlanConv2D returns the paths of a 2-D convolution.
func (d *Device) PlanConv2D(p tensor.ConvParams) ConvPlan {
	if q, ok := as3D(p); ok && (p.StrideH > 1 || p.StrideW > 1) && d.shifted3D(q) && p.N > 1 {
		// The input gradient keeps col2im: adding wᵀ·dy into the phases
		// measured slower in 2-D (cifar's downsampler 29–32 against 36–44
		// GFLOP/s), while the forward and weight passes gained. One image
		// takes im2col, by bands of rows on several threads (im2colBands):
		// ddpm-cifar10-32's 256-channel downsamplers at batch 1 ran 1.3–2×
		// faster so, the 32-channel 28×28 one as fast (Zen 5, frozen
		// weights, 2026-12-04 afternoon).
		pl := ConvPlan{ConvPhases, ConvIm2col, ConvPhases}
		d.traceConv2D(p, pl)
		return pl
	}
	point := isPointwise(p)
	var pl ConvPlan
	switch {
	case d.taps(p):
		pl.Forward = ConvTaps
	case d.direct(p):
		pl.Forward = ConvDirect
	case d.winograd2D(p):
		pl.Forward = ConvWinograd
	case d.shifted(p) && !d.narrowIm2col(p):
		pl.Forward = ConvShifted
	case point:
		pl.Forward = ConvPointwise
	}
	pl.BackwardInput = ConvIm2col
	if point {
		pl.BackwardInput = ConvPointwise
	}
	if q, ok := flippedConv(p); ok && !point && p.C >= d.tune.FlipMinC {
		mk, _ := d.microKernel()
		switch {
		case d.winograd2D(q):
			pl.BackwardInput = ConvFlippedWinograd
		// Without Winograd only with dy read unpacked does it beat col2im.
		case d.shifted(p) && d.shifted(q) && readsBUnpacked(mk, true, q.F, shiftN(q), 0):
			pl.BackwardInput = ConvFlippedShifted
		}
	}
	switch {
	case d.winograd2D(p):
		pl.BackwardWeight = ConvWinograd
	case d.shifted(p) && p.C*p.KH*p.KW >= p.F:
		pl.BackwardWeight = ConvShifted
	case point:
		pl.BackwardWeight = ConvPointwise
	}
	d.traceConv2D(p, pl)
	return pl
}

// traceConv2D traces a 2-D plan; the shape is only formatted when tracing
// (formatting it on every call was 2 % of a batch-1 forward).
func (d *Device) traceConv2D(p tensor.ConvParams, pl ConvPlan) {
	if tracePlans {
		d.trace(fmt.Sprintf("conv2d N=%d C=%d %dx%d F=%d k=%dx%d s=%d → %dx%d", p.N, p.C, p.H, p.W, p.F, p.KH, p.KW, p.StrideH, p.OH, p.OW), pl)
	}
}

// PlanConv3D returns the paths of a 3-D convolution (ConvIm2col is vol2col
// there, ConvWinograd the plane Winograd).
func (d *Device) PlanConv3D(p tensor.Conv3DParams) ConvPlan {
	var pl ConvPlan
	switch {
	case d.winograd3D(p):
		pl = ConvPlan{ConvWinograd, ConvWinograd, ConvWinograd}
	case d.shifted3D(p):
		// The input gradient as a convolution of dy where it is one (stride 1),
		// else wᵀ·dy added row by row into the phases (conv3DShiftedBackwardInput).
		pl = ConvPlan{ConvShifted, ConvShifted, ConvShifted}
		if q, ok := flippedConv3D(p); ok && d.shifted3D(q) {
			pl.BackwardInput = ConvFlippedShifted
		}
	}
	d.traceConv3D(p, pl)
	return pl
}

// traceConv3D is traceConv2D for a 3-D plan.
func (d *Device) traceConv3D(p tensor.Conv3DParams, pl ConvPlan) {
	if tracePlans {
		d.trace(fmt.Sprintf("conv3d N=%d C=%d %dx%dx%d F=%d k=%dx%dx%d s=%d → %dx%dx%d", p.N, p.C, p.D, p.H, p.W, p.F,
			p.KD, p.KH, p.KW, p.StrideD, p.OD, p.OH, p.OW), pl)
	}
}

// winograd reports whether a 2-D convolution takes Winograd F(2×2, 3×3):
// 3×3, stride 1, at least WinogradMinC channels in and out, on a level
// with micro-kernels.
func (d *Device) winograd(p tensor.ConvParams) bool {
	_, packed := d.microKernel()
	return packed && p.KH == 3 && p.KW == 3 && p.StrideH == 1 && p.StrideW == 1 &&
		p.C >= d.tune.WinogradMinC && p.F >= d.tune.WinogradMinC
}

// winograd2D is winograd for a 2-D convolution of its own (not a plane of a
// 3-D one): with few output tiles over the whole batch the transforms and
// the sixteen short GEMMs cost more than the multiplications they save.
func (d *Device) winograd2D(p tensor.ConvParams) bool {
	tiles := p.N * ((p.OH + 1) / 2) * ((p.OW + 1) / 2)
	return d.winograd(p) && tiles >= d.tune.WinogradMinTiles &&
		(tiles*p.C >= d.tune.WinogradMinTileChannels || tiles >= d.tune.WinogradEnoughTiles || p.N == 1 && d.narrowTiles(tiles))
}

// shifted reports whether a 2-D convolution takes the shifted rows:
// stride 1, not pointwise, outputs at least ShiftMinWidth wide.
func (d *Device) shifted(p tensor.ConvParams) bool {
	_, packed := d.microKernel()
	return packed && p.StrideH == 1 && p.StrideW == 1 && !isPointwise(p) && p.OW >= d.tune.ShiftMinWidth
}

// oneThread reports whether a forward convolution of macs multiply-adds
// (over the batch; for Winograd those of its GEMMs) runs on one thread:
// see Tuning.MinParallelMACs.
func (d *Device) oneThread(macs int) bool { return d.nThreads() <= 1 || macs < d.tune.MinParallelMACs }

// narrowTiles reports whether one image's Winograd tiles fill the narrow
// micro-kernel's columns exactly (16 tiles: a 7×7 or 8×8 image), where the
// shifted rows would compute two wide panels for 61 or 78 columns: one
// 48-channel 7×7 image 22 → 20 µs on one thread, 96 → 48 channels 45 → 32 µs
// (Zen 5, 2026-12-04 afternoon). Two such images stay on the shifted rows,
// one per thread (28 against 33 µs).
func (d *Device) narrowTiles(tiles int) bool {
	mk, ok := d.microKernel()
	return ok && mk.narrow != nil && tiles == mk.narrow.nr
}

// narrowIm2col reports whether an image's outputs fit the narrow
// micro-kernel's columns (a 4×4 image in 16): then im2col's GEMM has no
// wasted column, where shifted rows would compute 22 for 16 (one 256-channel
// 4×4 image, frozen weights, one thread: 192 against 325 µs; Zen 5,
// 2026-12-04 afternoon).
func (d *Device) narrowIm2col(p tensor.ConvParams) bool {
	mk, ok := d.microKernel()
	return ok && mk.narrow != nil && p.OH*p.OW <= mk.narrow.nr
}

// winogradTile is the output tile side of a 2-D Winograd convolution: 4
// (F(4×4, 3×3)) or 2 (F(2×2, 3×3)); see Tuning.Winograd4MinSide.
func (d *Device) winogradTile(p tensor.ConvParams) int {
	up := func(n, m int) int { return (n + m - 1) / m * m }
	switch {
	case d.tune.Winograd4MinSide == 0:
		return 4
	case min(p.OH, p.OW) < d.tune.Winograd4MinSide:
		return 2
	case 100*up(p.OH, 4)*up(p.OW, 4) > 115*up(p.OH, 2)*up(p.OW, 2):
		return 2 // 4×4 tiles past the edges compute too much
	case 36*p.C*p.F*4 <= d.tune.Winograd4WeightKiB<<10:
		return 4
	case p.N*up(p.OH, 4)*up(p.OW, 4)/16 >= d.tune.Winograd4MinTiles:
		return 4
	}
	return 2 // large weights for few tiles
}

// winograd3D reports whether a 3-D convolution takes the plane Winograd:
// 3×3×3, stride 1, padding 1, planes of at least Winograd3DMinPlane
// outputs, and a 2-D plane convolution that takes Winograd.
func (d *Device) winograd3D(p tensor.Conv3DParams) bool {
	return p.KD == 3 && p.StrideD == 1 && p.PadD == 1 && p.PadH == 1 && p.PadW == 1 &&
		p.OH*p.OW >= d.tune.Winograd3DMinPlane && d.winograd(planeConv(p))
}

// as3D is a 2-D convolution as the 3-D one of depth 1 (same buffers), if
// its padding is symmetric.
func as3D(p tensor.ConvParams) (tensor.Conv3DParams, bool) {
	q := tensor.Conv3DParams{N: p.N, C: p.C, D: 1, H: p.H, W: p.W, F: p.F, KD: 1, KH: p.KH, KW: p.KW,
		StrideD: 1, StrideH: p.StrideH, StrideW: p.StrideW, PadH: p.PadTop, PadW: p.PadLeft, OD: 1, OH: p.OH, OW: p.OW}
	return q, p.PadTop == p.PadBottom && p.PadLeft == p.PadRight
}

// shifted3D is shifted for volumes, at any stride: with stride 2 the padded
// volume is split into its even and odd phases (newVolShift), in which
// every tap is again a stride-1 read.
func (d *Device) shifted3D(p tensor.Conv3DParams) bool {
	_, packed := d.microKernel()
	pointwise := p.KD == 1 && p.KH == 1 && p.KW == 1 && p.PadD == 0 && p.PadH == 0 && p.PadW == 0
	return packed && !pointwise && p.OW >= d.tune.ShiftMinWidth
}

// GemmPath names a way to run C = α·op(A)·op(B) + β·C.
type GemmPath int

// GEMM paths.
const (
	GemmReference GemmPath = iota // the blocked plain-Go GEMM (generic level)
	GemmPacked                    // A and B packed into panels for the micro-kernel
	GemmUnpackedB                 // A packed, B's rows read where they are (rows kernels)
	GemmUnpackedA                 // A's rows read where they are, B packed (rows-A kernels)
)

func (g GemmPath) String() string {
	return [...]string{"reference", "packed", "unpacked-B", "unpacked-A"}[g]
}

// PlanGemm returns the path of an m×n×k product; prepacked says A is a
// shared, prepacked operand (a convolution's weights).
func (d *Device) PlanGemm(m, n, k int, transA, transB bool, alpha float32, prepacked bool) GemmPath {
	mk, ok := d.microKernel()
	if !ok {
		return GemmReference
	}
	return gemmPath(mk, m, n, k, transA, transB, alpha, prepacked)
}

func gemmPath(mk microKernel, m, n, k int, transA, transB bool, alpha float32, prepacked bool) GemmPath {
	switch {
	case !prepacked && mk.rowsAAdd != nil && !transA && alpha == 1 && n <= mk.tune.RowsAMaxN && k > 0:
		return GemmUnpackedA
	case !transB && readsBUnpacked(mk, prepacked, m, n, n):
		return GemmUnpackedB
	}
	return GemmPacked
}

// readsBUnpacked reports whether an m×n product (A prepacked or not) reads a
// non-transposed B through the unpacked-B kernels (see Tuning). ld is B's
// row stride in elements, 0 where its rows come by offsets: rows a multiple
// of 2 KiB apart are always packed, since the 128 rows of a pass then share
// one or two sets of L1 and a few of L2's, and most reads miss both (one
// thread on Zen 5, A prepacked, 128×N×1152, GFLOP/s in place / packed, each
// run after one untimed: N = 1,024 157 / 195–197, 2,048 151–153 / 188–190,
// 512 195–198 / 201–203, 1,536 189–192 / 194–198; 64×4096×288 143–147 /
// 182–185; N = 784 200–202 / 191–194 and 256 200–203 / 202–204, as before).
func readsBUnpacked(mk microKernel, prepacked bool, m, n, ld int) bool {
	if mk.rowsAdd == nil || (ld > 0 && ld%512 == 0) {
		return false
	}
	if prepacked {
		return m <= mk.tune.UnpackedMaxM || n >= mk.tune.UnpackedMinN
	}
	return m <= mk.tune.PlainUnpackedMaxM
}
