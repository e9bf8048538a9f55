package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/godiffuse/godiffuse/kernels/asm"
	"github.com/godiffuse/godiffuse/tensor"
)

// Forward checks of the blocked/parallel kernels against the plainest
// possible loops, on awkward shapes, with guard cells after every output.

func randSlice(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = 2*r.Float32() - 1
	}
	return v
}

const guard = 7

// withGuard returns a buffer of n+guard floats whose tail is a sentinel.
func withGuard(d *Device, n int) *Buffer {
	b, _ := d.Alloc(tensor.F32, n+guard)
	for i := range n {
		b.(*Buffer).F[i] = float32(math.NaN())
	}
	for i := n; i < n+guard; i++ {
		b.(*Buffer).F[i] = 12345
	}
	return b.(*Buffer)
}

func checkGuard(t *testing.T, name string, b *Buffer, n int) {
	t.Helper()
	for i := n; i < n+guard; i++ {
		if b.F[i] != 12345 {
			t.Fatalf("%s: write past the end at %d", name, i)
		}
	}
}

func closeTo(t *testing.T, name string, got, want []float32, tol float64) {
	t.Helper()
	scale := 0.0
	for _, w := range want {
		scale = max(scale, math.Abs(float64(w)))
	}
	for i := range want {
		if d := math.Abs(float64(got[i] - want[i])); d > tol*(1+scale) {
			t.Fatalf("%s: element %d = %g, want %g", name, i, got[i], want[i])
		}
	}
}

// TestSgemmAgainstNaive checks every GEMM level (the reference and each SIMD
// micro-kernel with its packing) against a float64 triple loop, on sizes
// around every tile and block edge, with guard cells after C.
func TestSgemmAgainstNaive(t *testing.T) {
	// Each way the packed GEMM can read its operands: the default choice,
	// both packed, B unpacked (rows kernels), A unpacked (rows-A kernels).
	def := DefaultTuning()
	for _, mode := range []struct {
		name   string
		pm, an int
	}{{"default", def.PlainUnpackedMaxM, def.RowsAMaxN}, {"packed", -1, -1}, {"unpackedB", 1 << 30, -1}, {"unpackedA", -1, 1 << 30}} {
		tune := def
		tune.PlainUnpackedMaxM, tune.RowsAMaxN = mode.pm, mode.an
		t.Run(mode.name, func(t *testing.T) { t.Parallel(); testSgemm(t, tune) })
	}
}

// TestSgemmEdgeRows checks the edge kernels (a last panel of fewer rows
// than the micro-kernel's, computed by a kernel of fewer rows) at every
// remainder of M, adding, storing and storing with a bias, with B packed
// and read in place, A as stored and transposed, against a float64 triple
// loop.
func TestSgemmEdgeRows(t *testing.T) {
	var levels []Level
	for _, l := range Levels() {
		if l != Generic {
			levels = append(levels, l)
		}
	}
	testEdgeRows(t, levels, func(l Level, tune Tuning) *Device { return NewCPUTuned(1, l, tune) })
}

// testEdgeRows is TestSgemmEdgeRows at the given levels on devices made by
// newDevice (the plain-Go stand-ins of the kernels too: stand_in_test.go).
func testEdgeRows(t *testing.T, levels []Level, newDevice func(Level, Tuning) *Device) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, level := range levels {
		for _, unpackedB := range []bool{false, true} {
			tune := DefaultTuning()
			tune.PlainUnpackedMaxM, tune.RowsAMaxN = -1, -1
			if unpackedB {
				tune.PlainUnpackedMaxM = 1 << 30
			}
			d := newDevice(level, tune)
			for m := 1; m <= 26; m++ {
				for _, sh := range []struct{ n, k int }{{32, 7}, {71, 300}, {16, 40}} {
					n, k := sh.n, sh.k
					a, b, c0 := randSlice(r, m*k), randSlice(r, k*n), randSlice(r, m*n)
					tA := m%2 == 1 // A stored transposed (K×M) for odd M: packed by PackATAVX512
					for variant, beta := range []float32{0, 0, 1} {
						var bias []float32
						if variant == 1 {
							bias = randSlice(r, m)
						}
						want := gemmFloat64(m, n, k, tA, false, 1, a, b, beta, c0, bias)
						c := append(append([]float32(nil), c0...), make([]float32, guard)...)
						lda := k
						if tA {
							lda = m
						}
						d.sgemm(1, gemm{M: m, N: n, K: k, Alpha: 1, TransA: tA, A: a, LdA: lda, B: operandB{b: b, ld: n}, Beta: beta, Bias: bias, C: c, LdC: n})
						name := fmt.Sprintf("%s unpackedB=%v %dx%dx%d tA=%v beta=%g bias=%v", level, unpackedB, m, n, k, tA, beta, bias != nil)
						closeTo(t, name, c[:m*n], want, 1e-5*float64(k+1))
						for _, v := range c[m*n:] {
							if v != 0 {
								t.Fatalf("%s wrote past C", name)
							}
						}
					}
				}
			}
		}
	}
}

// gemmFloat64 is the definition in float64: α·(op(A)·op(B) + bias/α) +
// β·C0, A stored K×M when tA, B stored N×K when tB, bias (nil: none) one
// value per row of C.
func gemmFloat64(m, n, k int, tA, tB bool, alpha float32, a, b []float32, beta float32, c0, bias []float32) []float32 {
	want := make([]float32, m*n)
	for i := range m {
		for j := range n {
			var s float64
			if bias != nil {
				s = float64(bias[i]) / float64(alpha)
			}
			for p := range k {
				av, bv := a[i*k+p], b[p*n+j]
				if tA {
					av = a[p*m+i]
				}
				if tB {
					bv = b[j*k+p]
				}
				s += float64(av) * float64(bv)
			}
			want[i*n+j] = float32(float64(alpha)*s + float64(beta)*float64(c0[i*n+j]))
		}
	}
	return want
}

func testSgemm(t *testing.T, tune Tuning) {
	r := rand.New(rand.NewPCG(3, 4))
	sizes := []int{0, 1, 2, 3, 5, 6, 7, 11, 12, 13, 15, 16, 17, 31, 32, 33, 64, 65, 143, 144, 145, 255, 256, 257, 287, 288, 289, 300, 513}
	type shape struct{ m, n, k int }
	// past packNC, several KC and MC blocks; past the AVX-512 products' own
	// depth (two and three blocks of uneven depth, B blocks of 1,024 columns)
	shapes := []shape{{1, 3100, 3}, {3, 3073, 300}, {145, 97, 600}, {289, 40, 300}, {20, 45, 1025}, {149, 1057, 2100}}
	for range 60 {
		shapes = append(shapes, shape{sizes[r.IntN(len(sizes))], sizes[r.IntN(len(sizes))], sizes[r.IntN(len(sizes))]})
	}
	for trial, sh := range shapes {
		m, n, k := sh.m, sh.n, sh.k
		tA, tB := trial%2 == 1, trial%4 >= 2
		a, b := randSlice(r, m*k), randSlice(r, k*n)
		c0 := randSlice(r, m*n)
		alpha, beta := float32(0.5+r.Float32()), []float32{0, 1, -0.5}[trial%3]
		if trial%5 < 2 {
			alpha = 1 // the unpacked-A path needs α = 1
		}
		var bias []float32 // a bias per row (only with β = 0) on every other such trial
		if beta == 0 && trial%6 == 0 {
			bias = randSlice(r, m)
		}
		want := gemmFloat64(m, n, k, tA, tB, alpha, a, b, beta, c0, bias)
		lda, ldb := k, n
		if tA {
			lda = m
		}
		if tB {
			ldb = k
		}
		for _, level := range Levels() {
			for _, threads := range []int{1, 2, 3} {
				d := NewCPUTuned(threads, level, tune)
				c := append(append([]float32(nil), c0...), make([]float32, guard)...)
				for i := m * n; i < len(c); i++ {
					c[i] = 12345
				}
				d.sgemm(threads, gemm{M: m, N: n, K: k, Alpha: alpha, TransA: tA, A: a, LdA: lda, B: operandB{b: b, ld: ldb, trans: tB}, Beta: beta, Bias: bias, C: c, LdC: n})
				name := fmt.Sprintf("sgemm/%s %dx%dx%d tA=%v tB=%v threads=%d bias=%v", level, m, n, k, tA, tB, threads, bias != nil)
				closeTo(t, name, c[:m*n], want, 1e-5*float64(k+1))
				for i := m * n; i < len(c); i++ {
					if c[i] != 12345 {
						t.Fatalf("%s wrote past C", name)
					}
				}
			}
		}
	}
}

// naiveConv is the definition of conv2d: seven nested loops.
func naiveConv(x, w, b []float32, p tensor.ConvParams) []float32 {
	y := make([]float32, p.N*p.F*p.OH*p.OW)
	for n := range p.N {
		for f := range p.F {
			for oy := range p.OH {
				for ox := range p.OW {
					var s float64
					if b != nil {
						s = float64(b[f])
					}
					for c := range p.C {
						for ky := range p.KH {
							for kx := range p.KW {
								iy, ix := oy*p.StrideH+ky-p.PadTop, ox*p.StrideW+kx-p.PadLeft
								if iy < 0 || iy >= p.H || ix < 0 || ix >= p.W {
									continue
								}
								s += float64(x[((n*p.C+c)*p.H+iy)*p.W+ix]) * float64(w[((f*p.C+c)*p.KH+ky)*p.KW+kx])
							}
						}
					}
					y[((n*p.F+f)*p.OH+oy)*p.OW+ox] = float32(s)
				}
			}
		}
	}
	return y
}

func TestConvAgainstNaive(t *testing.T) {
	for _, level := range Levels() {
		t.Run(level.String(), func(t *testing.T) { testConv(t, NewCPULevel(2, level)) })
	}
	// The same shapes again with every stride-1 convolution on the
	// shifted-rows path (normally only outputs ≥ ShiftMinWidth wide; the
	// input gradient then as a flipped convolution), and with B always
	// packed and never (the rows kernels).
	// Every 3×3 stride-1 convolution by Winograd, in chunks of one tile row
	// (chunks then end inside images and at image edges) and of many.
	// The plain-Go transforms once too.
	// Every stride-1 convolution by shifted rows in the lanes (convTaps),
	// whatever its output channels.
	taps := DefaultTuning()
	taps.TapsMaxF = 1 << 30
	for _, level := range Levels()[1:] {
		d := NewCPUTuned(2, level, taps)
		t.Run(fmt.Sprintf("%s/taps", level), func(t *testing.T) { t.Parallel(); testConv(t, d) })
	}
	wino := DefaultTuning()
	wino.WinogradMinC, wino.FlipMinC, wino.WinogradMinTiles, wino.WinogradMinTileChannels = 1, 1, 0, 0
	wino.TapsMaxF = 0
	wino.Winograd4MinSide = 1 << 30 // F(2×2, 3×3) here, F(4×4, 3×3) below
	for _, tiles := range []int{1, 64} {
		wino.WinogradTiles = tiles
		for _, level := range Levels()[1:] {
			d := NewCPUTuned(2, level, wino)
			t.Run(fmt.Sprintf("%s/winograd/tiles=%d", level, tiles), func(t *testing.T) { t.Parallel(); testConv(t, d) })
		}
	}
	wino.WinogradAsm = false
	for _, level := range Levels()[1:] {
		d := NewCPUTuned(2, level, wino)
		t.Run(fmt.Sprintf("%s/winograd/go", level), func(t *testing.T) { t.Parallel(); testConv(t, d) })
	}
	wino.Winograd4MinSide = 0 // F(4×4, 3×3), its transforms in Go and in assembly
	for _, asm := range []bool{false, true} {
		wino.WinogradAsm = asm
		for _, level := range Levels()[1:] {
			d := NewCPUTuned(2, level, wino)
			t.Run(fmt.Sprintf("%s/winograd4/asm=%v", level, asm), func(t *testing.T) { t.Parallel(); testConv(t, d) })
		}
	}
	shifted := DefaultTuning()
	shifted.WinogradMinC = 1 << 30
	shifted.ShiftMinWidth, shifted.FlipMinC, shifted.TapsMaxF = 1, 1, 0
	for _, unpacked := range []bool{false, true} {
		shifted.UnpackedMaxM, shifted.UnpackedMinN = -1, 1<<30
		if unpacked {
			shifted.UnpackedMaxM = 1 << 30
		}
		for _, level := range Levels()[1:] {
			d := NewCPUTuned(2, level, shifted)
			t.Run(fmt.Sprintf("%s/shifted/unpacked=%v", level, unpacked), func(t *testing.T) { t.Parallel(); testConv(t, d) })
		}
	}
}

func testConv(t *testing.T, d *Device) {
	r := rand.New(rand.NewPCG(5, 6))
	for trial := range 72 {
		p := tensor.ConvParams{N: 1 + r.IntN(5), C: 1 + r.IntN(5), H: 1 + r.IntN(9), W: 1 + r.IntN(9),
			F: 1 + r.IntN(6), KH: 1 + r.IntN(3), KW: 1 + r.IntN(3), StrideH: 1 + r.IntN(2), StrideW: 1 + r.IntN(2),
			PadTop: r.IntN(2), PadBottom: r.IntN(2), PadLeft: r.IntN(2), PadRight: r.IntN(2)}
		if trial%5 == 0 { // pointwise path
			p.KH, p.KW, p.StrideH, p.StrideW, p.PadTop, p.PadBottom, p.PadLeft, p.PadRight = 1, 1, 1, 1, 0, 0, 0, 0
		}
		if trial >= 60 { // past the packing blocks: C·KH·KW > KC = 256, F and C·KH·KW > MC = 288
			p.N, p.C, p.F, p.H, p.W = 1+trial%3, 30+trial, 289+trial, 5, 6
		}
		if trial >= 66 { // the U-Net's sizes: 3×3, pad 1, 14–32 wide
			p.N, p.C, p.F, p.H, p.W = 1+trial%3, 8+trial%5, 6+trial%7, 14+trial%19, 14+(trial*7)%19
			p.KH, p.KW, p.PadTop, p.PadBottom, p.PadLeft, p.PadRight = 3, 3, 1, 1, 1, 1
			p.StrideH, p.StrideW = 1+trial%2, 1+trial%2
		}
		if p.H+p.PadTop+p.PadBottom < p.KH || p.W+p.PadLeft+p.PadRight < p.KW {
			continue
		}
		p.OH = (p.H+p.PadTop+p.PadBottom-p.KH)/p.StrideH + 1
		p.OW = (p.W+p.PadLeft+p.PadRight-p.KW)/p.StrideW + 1
		x, w, b := randSlice(r, p.N*p.C*p.H*p.W), randSlice(r, p.F*p.C*p.KH*p.KW), randSlice(r, p.F)
		want := naiveConv(x, w, b, p)
		xb, wb, bb := &Buffer{dev: d, F: x}, &Buffer{dev: d, F: w}, &Buffer{dev: d, F: b}
		y := withGuard(d, len(want))
		d.Conv2D(y, xb, wb, bb, p)
		closeTo(t, "conv2d", y.F[:len(want)], want, 1e-5)
		checkGuard(t, "conv2d", y, len(want))

		// Backward input against the adjoint identity <conv(x), g> = <x, convᵀ(g)>.
		g := randSlice(r, len(want))
		dx := withGuard(d, len(x))
		d.Conv2DBackwardInput(dx, &Buffer{dev: d, F: g}, wb, p)
		checkGuard(t, "conv2d backward input", dx, len(x))
		noBias := naiveConv(x, w, nil, p)
		var lhs, rhs float64
		for i := range g {
			lhs += float64(g[i]) * float64(noBias[i])
		}
		for i := range x {
			rhs += float64(x[i]) * float64(dx.F[i])
		}
		if math.Abs(lhs-rhs) > 1e-4*(1+math.Abs(lhs)) {
			t.Fatalf("conv2d backward input: <y,g> = %g but <x,dx> = %g (%+v)", lhs, rhs, p)
		}
		dw, db := withGuard(d, len(w)), withGuard(d, p.F)
		d.Conv2DBackwardWeight(dw, db, xb, &Buffer{dev: d, F: g}, p)
		checkGuard(t, "conv2d backward weight", dw, len(w))
		checkGuard(t, "conv2d backward bias", db, p.F)
		rhs = 0
		for i := range w {
			rhs += float64(w[i]) * float64(dw.F[i])
		}
		if math.Abs(lhs-rhs) > 1e-4*(1+math.Abs(lhs)) {
			t.Fatalf("conv2d backward weight: <y,g> = %g but <w,dw> = %g (%+v)", lhs, rhs, p)
		}
		ohw := p.OH * p.OW
		for f := range p.F { // every value written (the tensor layer hands these buffers over uncleared)
			var s float64
			for n := range p.N {
				for _, v := range g[(n*p.F+f)*ohw : (n*p.F+f+1)*ohw] {
					s += float64(v)
				}
			}
			if math.Abs(float64(db.F[f])-s) > 1e-4*(1+math.Abs(s)) {
				t.Fatalf("conv2d backward bias: [%d] = %g, want %g (%+v)", f, db.F[f], s, p)
			}
		}
	}
}

func TestAttentionAgainstNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	d := NewCPU(2)
	for _, p := range []tensor.AttentionParams{{B: 1, Heads: 1, Lq: 1, Lk: 1, D: 1}, {B: 2, Heads: 3, Lq: 5, Lk: 7, D: 4}, {B: 1, Heads: 2, Lq: 49, Lk: 49, D: 24},
		{B: 2, Heads: 2, Lq: 37, Lk: 300, D: 40}, {B: 1, Heads: 1, Lq: 13, Lk: 77, D: 33}, // more keys than a depth block, heads wider than a panel
		{B: 1, Heads: 3, Lq: 196, Lk: 196, D: 16}} { // tiny-mnist's heads: seven query panels, the last one narrow
		p.Scale = float32(1 / math.Sqrt(float64(p.D)))
		C := p.Heads * p.D
		q, k, v := randSlice(r, p.B*p.Lq*C), randSlice(r, p.B*p.Lk*C), randSlice(r, p.B*p.Lk*C)
		want := make([]float32, len(q))
		for b := range p.B {
			for h := range p.Heads {
				for i := range p.Lq {
					s := make([]float64, p.Lk)
					m := math.Inf(-1)
					for j := range p.Lk {
						for e := range p.D {
							s[j] += float64(q[(b*p.Lq+i)*C+h*p.D+e]) * float64(k[(b*p.Lk+j)*C+h*p.D+e])
						}
						s[j] *= float64(p.Scale)
						m = max(m, s[j])
					}
					var z float64
					for j := range s {
						s[j] = math.Exp(s[j] - m)
						z += s[j]
					}
					for e := range p.D {
						var o float64
						for j := range p.Lk {
							o += s[j] / z * float64(v[(b*p.Lk+j)*C+h*p.D+e])
						}
						want[(b*p.Lq+i)*C+h*p.D+e] = float32(o)
					}
				}
			}
		}
		// Token-major as computed, then channel-major: (B, C, L), every
		// tensor transposed per batch, the result transposed back.
		for _, cm := range []bool{false, true} {
			p.ChannelMajor = cm
			q, k, v, want := q, k, v, want
			if cm {
				q, k, v = transposed(q, p.B, p.Lq, C), transposed(k, p.B, p.Lk, C), transposed(v, p.B, p.Lk, C)
				want = transposed(want, p.B, p.Lq, C)
			}
			name := fmt.Sprintf("attention %+v", p)
			o, probs := withGuard(d, len(q)), withGuard(d, p.B*p.Heads*p.Lq*p.Lk)
			d.Attention(o, probs, &Buffer{dev: d, F: q}, &Buffer{dev: d, F: k}, &Buffer{dev: d, F: v}, p)
			closeTo(t, name, o.F[:len(q)], want, 1e-5)
			checkGuard(t, name, o, len(q))
			checkGuard(t, name+" probs", probs, p.B*p.Heads*p.Lq*p.Lk)
			// Without probs (inference): by blocks of query rows, at every level,
			// with blocks of one row, of a few rows (a ragged last block) and whole.
			for _, tile := range []int{1, 3 * 4 * p.Lk, 1 << 30} {
				for _, level := range Levels() {
					tune := DefaultTuning()
					tune.AttentionTileBytes = tile
					dl := NewCPUTuned(2, level, tune)
					o := withGuard(dl, len(q))
					dl.Attention(o, nil, &Buffer{dev: dl, F: q}, &Buffer{dev: dl, F: k}, &Buffer{dev: dl, F: v}, p)
					closeTo(t, fmt.Sprintf("%s without probs, %v, tile %d", name, level, tile), o.F[:len(q)], want, 1e-5)
					checkGuard(t, name+" without probs", o, len(q))
					if mk, ok := dl.microKernel(); ok { // the packed path whatever the number of keys
						op := make([]float32, len(q)+1)
						op[len(q)] = 42
						dl.attentionPacked(mk, op[:len(q)], q, k, v, p)
						closeTo(t, fmt.Sprintf("packed %s, %v, tile %d", name, level, tile), op[:len(q)], want, 1e-5)
						if op[len(q)] != 42 {
							t.Fatalf("packed %s wrote past its output", name)
						}
						if cm && p.Lk <= columnsMaxKeys { // the transposed path, named (attentionTiled takes it)
							op[len(q)] = 42
							dl.attentionColumns(mk, op[:len(q)], q, k, v, p)
							closeTo(t, fmt.Sprintf("columns %s, %v", name, level), op[:len(q)], want, 1e-5)
							if op[len(q)] != 42 {
								t.Fatalf("columns %s wrote past its output", name)
							}
						}
					}
				}
			}
		}
	}
}

// transposed returns the (B, C, L) form of the (B, L, C) array x.
func transposed(x []float32, b, l, c int) []float32 {
	out := make([]float32, len(x))
	for n := range b {
		for i := range l {
			for j := range c {
				out[(n*c+j)*l+i] = x[(n*l+i)*c+j]
			}
		}
	}
	return out
}

// TestGroupNormAgainstNaive checks the forward normalization at every level
// against the two-pass formulas in float64, on groups of awkward sizes and
// on groups whose mean is far from 0 (3 ± 2, 50 ± 1; the one-pass
// statistics shift by a value of the
// group first; TestMoments checks that on far larger means).
func TestGroupNormAgainstNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 11))
	for _, level := range Levels() {
		d := NewCPULevel(2, level)
		for _, c := range []struct {
			p             tensor.NormParams
			offset, scale float32
		}{
			{tensor.NormParams{N: 3, G: 4, CG: 3, S: 10, Eps: 1e-6}, 3, 2},
			{tensor.NormParams{N: 2, G: 2, CG: 5, S: 37, Eps: 1e-6}, 50, 1},
			{tensor.NormParams{N: 1, G: 8, CG: 6, S: 196, Eps: 1e-5}, -0.5, 0.01},
		} {
			p := c.p
			C := p.G * p.CG
			x, g, b := randSlice(r, p.N*C*p.S), randSlice(r, C), randSlice(r, C)
			for i := range x {
				x[i] = c.offset + c.scale*x[i]
			}
			want := make([]float32, len(x))
			for n := range p.N {
				for gr := range p.G {
					lo, hi := (n*C+gr*p.CG)*p.S, (n*C+(gr+1)*p.CG)*p.S
					var s, ss float64
					for _, v := range x[lo:hi] {
						s += float64(v)
					}
					mu := s / float64(hi-lo)
					for _, v := range x[lo:hi] {
						ss += (float64(v) - mu) * (float64(v) - mu)
					}
					rstd := 1 / math.Sqrt(ss/float64(hi-lo)+float64(p.Eps))
					for i := lo; i < hi; i++ {
						c := (i / p.S) % C
						want[i] = float32((float64(x[i])-mu)*rstd*float64(g[c]) + float64(b[c]))
					}
				}
			}
			y := withGuard(d, len(x))
			mean, rstd := withGuard(d, p.N*p.G), withGuard(d, p.N*p.G)
			d.Norm(y, mean, rstd, &Buffer{dev: d, F: x}, &Buffer{dev: d, F: g}, &Buffer{dev: d, F: b}, p)
			name := fmt.Sprintf("group_norm/%s/mean %g", level, c.offset)
			closeTo(t, name, y.F[:len(x)], want, 1e-5)
			checkGuard(t, name, y, len(x))
			// With the activation fused (Activate): the bits of Norm, then Unary.
			for _, op := range []tensor.UnaryOp{tensor.OpSiLU, tensor.OpGELU} {
				sep := withGuard(d, len(x))
				d.Unary(op, sep, y, len(x), tensor.UnaryParams{})
				fused := withGuard(d, len(x))
				pa := p
				pa.Activate, pa.Act = true, op
				d.Norm(fused, mean, rstd, &Buffer{dev: d, F: x}, &Buffer{dev: d, F: g}, &Buffer{dev: d, F: b}, pa)
				for i := range x {
					if math.Float32bits(fused.F[i]) != math.Float32bits(sep.F[i]) {
						t.Fatalf("%s with %s fused: value %d is %g, norm then %s gives %g", name, op, i, fused.F[i], op, sep.F[i])
					}
				}
				checkGuard(t, name+" fused", fused, len(x))
			}
		}
	}
}

// TestMoments checks the one-pass statistics at every level against two
// passes in float64, on every length 1…40 and a long one, with means up to
// 10⁶ times the spread (where Σx² − (Σx)²/n in float64 would keep about
// four digits of the variance).
func TestMoments(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 13))
	for _, level := range Levels() {
		d := NewCPULevel(1, level)
		for _, offset := range []float32{0, 3, 1e4, 1e6} {
			for _, n := range append(rangeN(41)[1:], 4099) {
				x := randSlice(r, n)
				for i := range x {
					x[i] = offset + x[i]
				}
				var s, ss float64
				for _, v := range x {
					s += float64(v)
				}
				mu := s / float64(n)
				for _, v := range x {
					ss += (float64(v) - mu) * (float64(v) - mu)
				}
				mean, variance := d.moments64(x)
				if math.Abs(mean-mu) > 1e-12*(1+math.Abs(mu)) || math.Abs(variance-ss/float64(n)) > 1e-9*(ss/float64(n))+1e-300 {
					t.Fatalf("%s n=%d mean %g: moments %g, %g; two passes %g, %g", level, n, offset, mean, variance, mu, ss/float64(n))
				}
			}
		}
	}
}

// TestGroupNormBackwardAgainstNaive checks dx, dγ and dβ against the
// formulas evaluated per element in float64, with γ and without, on groups
// whose mean is far from 0 and on a layer-norm shape (S = 1).
func TestGroupNormBackwardAgainstNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 15))
	for _, level := range Levels() {
		testGroupNormBackward(t, r, NewCPULevel(2, level))
	}
}

func testGroupNormBackward(t *testing.T, r *rand.Rand, d *Device) {
	for _, p := range []tensor.NormParams{{N: 3, G: 4, CG: 3, S: 37, Eps: 1e-6}, {N: 5, G: 1, CG: 24, S: 1, Eps: 1e-5}, {N: 2, G: 8, CG: 4, S: 196, Eps: 1e-6}} {
		for _, withGamma := range []bool{true, false} {
			C := p.G * p.CG
			x, dy, g := randSlice(r, p.N*C*p.S), randSlice(r, p.N*C*p.S), randSlice(r, C)
			for i := range x {
				x[i] = 3 + 2*x[i]
			}
			gam := func(c int) float64 {
				if !withGamma {
					return 1
				}
				return float64(g[c])
			}
			wantDx, wantDg, wantDb := make([]float32, len(x)), make([]float64, C), make([]float64, C)
			mean, rstd := make([]float32, p.N*p.G), make([]float32, p.N*p.G)
			gsize := p.CG * p.S
			for ng := range p.N * p.G {
				lo, hi := ng*gsize, (ng+1)*gsize
				var s, ss float64
				for _, v := range x[lo:hi] {
					s += float64(v)
				}
				mu := s / float64(gsize)
				for _, v := range x[lo:hi] {
					ss += (float64(v) - mu) * (float64(v) - mu)
				}
				mean[ng], rstd[ng] = float32(mu), float32(1/math.Sqrt(ss/float64(gsize)+float64(p.Eps)))
				m, rs := float64(mean[ng]), float64(rstd[ng])
				var sg, sgx float64
				for i := lo; i < hi; i++ {
					c := (i / p.S) % C
					gh, xh := float64(dy[i])*gam(c), (float64(x[i])-m)*rs
					sg, sgx = sg+gh, sgx+gh*xh
					wantDg[c] += float64(dy[i]) * xh
					wantDb[c] += float64(dy[i])
				}
				for i := lo; i < hi; i++ {
					c := (i / p.S) % C
					xh := (float64(x[i]) - m) * rs
					wantDx[i] = float32(rs * (float64(dy[i])*gam(c) - sg/float64(gsize) - xh*sgx/float64(gsize)))
				}
			}
			var gb tensor.Buffer
			if withGamma {
				gb = &Buffer{dev: d, F: g}
			}
			dx, dg, db := withGuard(d, len(x)), withGuard(d, C), withGuard(d, C)
			d.NormBackward(dx, dg, db, &Buffer{dev: d, F: dy}, &Buffer{dev: d, F: x}, &Buffer{dev: d, F: mean}, &Buffer{dev: d, F: rstd}, gb, p)
			toF32 := func(v []float64) []float32 {
				out := make([]float32, len(v))
				for i, e := range v {
					out[i] = float32(e)
				}
				return out
			}
			closeTo(t, "group_norm dx/"+d.level.String(), dx.F[:len(x)], wantDx, 1e-5)
			closeTo(t, "group_norm dγ/"+d.level.String(), dg.F[:C], toF32(wantDg), 1e-5)
			closeTo(t, "group_norm dβ/"+d.level.String(), db.F[:C], toF32(wantDb), 1e-5)
			checkGuard(t, "group_norm dx", dx, len(x))
			checkGuard(t, "group_norm dγ", dg, C)
			checkGuard(t, "group_norm dβ", db, C)
		}
	}
}

func TestBinaryBroadcastAgainstNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 13))
	d := NewCPU(2)
	// a: (40, 1, 300) broadcast against b: (3, 1) -> (40, 3, 300), big enough to go parallel.
	a, b := randSlice(r, 40*300), randSlice(r, 3)
	shape := []int{40, 3, 300}
	y := withGuard(d, 40*3*300)
	d.Binary(tensor.OpSub, y, tensor.Strided{Buf: &Buffer{dev: d, F: a}, Strides: []int{300, 0, 1}},
		tensor.Strided{Buf: &Buffer{dev: d, F: b}, Strides: []int{0, 1, 0}}, shape)
	for i := range 40 {
		for j := range 3 {
			for k := range 300 {
				if got, want := y.F[(i*3+j)*300+k], a[i*300+k]-b[j]; got != want {
					t.Fatalf("binary broadcast [%d,%d,%d] = %g, want %g", i, j, k, got, want)
				}
			}
		}
	}
	checkGuard(t, "binary", y, 40*3*300)

	// b broadcast along the last axis (stride 0 in the row), every op.
	for _, op := range []tensor.BinaryOp{tensor.OpAdd, tensor.OpSub, tensor.OpMul, tensor.OpDiv} {
		z := withGuard(d, 40*3*300)
		d.Binary(op, z, tensor.Strided{Buf: &Buffer{dev: d, F: a}, Strides: []int{300, 0, 1}},
			tensor.Strided{Buf: &Buffer{dev: d, F: b}, Strides: []int{0, 1, 0}}, shape)
		for i := range 40 {
			for j := range 3 {
				for k := range 300 {
					if got, want := z.F[(i*3+j)*300+k], binaryF(op, a[i*300+k], b[j]); got != want {
						t.Fatalf("%s broadcast [%d,%d,%d] = %g, want %g", op, i, j, k, got, want)
					}
				}
			}
		}
		checkGuard(t, "binary", z, 40*3*300)
	}
}

// TestLevels checks the dispatch against an independent reading of the CPU:
// the flags line of /proc/cpuinfo (where there is one). A level the CPU
// lacks must never be offered, and one it has must not be missed.
func TestLevels(t *testing.T) {
	ls := Levels()
	t.Logf("this machine runs levels %v (default %v)", ls, DefaultLevel())
	if len(ls) == 0 || ls[0] != Generic || ls[len(ls)-1] != MaxLevel() {
		t.Fatalf("levels %v, max %v", ls, MaxLevel())
	}
	for _, name := range []string{"generic", "avx2", "avx512"} {
		if l, err := ParseLevel(name); err != nil || l.String() != name {
			t.Errorf("ParseLevel(%q) = %v, %v", name, l, err)
		}
	}
	if _, err := ParseLevel("sse9"); err == nil {
		t.Error("ParseLevel accepted sse9")
	}
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Skipf("no /proc/cpuinfo to check the dispatch against: %v", err)
	}
	flags := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "flags" {
			for _, f := range strings.Fields(v) {
				flags[f] = true
			}
			break
		}
	}
	want := Generic
	switch {
	case !asm.Available:
	case flags["avx512f"]:
		want = AVX512
	case flags["avx2"] && flags["fma"]:
		want = AVX2
	}
	if MaxLevel() != want {
		t.Fatalf("MaxLevel %v, but /proc/cpuinfo's flags (asm built in: %v) say %v", MaxLevel(), asm.Available, want)
	}
	if want >= AVX2 && !flags["f16c"] {
		t.Errorf("the AVX2 level uses F16C (half → float32), which /proc/cpuinfo does not list")
	}
	for _, l := range ls {
		if d := NewCPULevel(1, l); d.level != l {
			t.Errorf("NewCPULevel(%v) runs %v", l, d.level)
		}
	}
}

// The prepacked-A GEMM (shared weights of a convolution) runs the same
// micro-kernel as the ordinary packed GEMM, so where both take the depth in
// the same blocks (k ≤ packKC, or a level whose products all take packKC)
// the results must be bit-identical, for any shape, transposes and threads.
// Where they do not (the AVX-512 products take up to 1,024 at once:
// microKernel.blocking), and with B read unpacked (the rows kernels, depth
// split in rowsKC passes), the sums are grouped differently: then within 1e-5.
func TestPrepackedAMatchesPacked(t *testing.T) {
	for _, unpacked := range []bool{false, true} {
		tune := DefaultTuning()
		tune.PlainUnpackedMaxM, tune.RowsAMaxN = -1, -1 // the reference: the packed GEMM with nothing unpacked
		tune.UnpackedMaxM, tune.UnpackedMinN = -1, 1<<30
		if unpacked {
			tune.UnpackedMaxM = 1 << 30
		}
		t.Run(fmt.Sprintf("unpacked=%v", unpacked), func(t *testing.T) { t.Parallel(); testPrepacked(t, unpacked, tune) })
	}
}

func testPrepacked(t *testing.T, unpacked bool, tune Tuning) {
	r := rand.New(rand.NewPCG(9, 10))
	sizes := []int{1, 5, 6, 7, 13, 16, 17, 48, 49, 143, 144, 145, 196, 255, 256, 257, 287, 288, 289, 300}
	for _, level := range Levels() {
		if level == Generic {
			continue
		}
		for trial := range 30 {
			m, n, k := sizes[r.IntN(len(sizes))], sizes[r.IntN(len(sizes))], sizes[r.IntN(len(sizes))]
			tA, tB := trial%2 == 1, trial%4 >= 2
			a, b, c0 := randSlice(r, m*k), randSlice(r, k*n), randSlice(r, m*n)
			lda, ldb := k, n
			if tA {
				lda = m
			}
			if tB {
				ldb = k
			}
			beta := []float32{0, 1}[trial%2]
			var first []float32 // threads = 1: every thread count must give its bits
			for _, threads := range []int{1, 2, 3} {
				d := NewCPUTuned(threads, level, tune)
				want := append([]float32(nil), c0...)
				d.sgemm(threads, gemm{M: m, N: n, K: k, Alpha: 1, TransA: tA, A: a, LdA: lda, B: operandB{b: b, ld: ldb, trans: tB}, Beta: beta, C: want, LdC: n})
				got := append(append([]float32(nil), c0...), make([]float32, guard)...)
				d.sgemmA(threads, d.newGemmA(tA, m, k, a, lda), n, operandB{b: b, ld: ldb, trans: tB}, beta, got, n)
				mk, _ := d.microKernel()
				if unpacked && !tB || k > packKC && mk.blocking(false, k).kc != packKC {
					closeTo(t, fmt.Sprintf("%s %dx%dx%d tA=%v threads=%d", level, m, n, k, tA, threads), got[:m*n], want, 1e-5)
				} else {
					for i := range want {
						if got[i] != want[i] {
							t.Fatalf("%s %dx%dx%d tA=%v tB=%v threads=%d: [%d] %g, packed GEMM %g", level, m, n, k, tA, tB, threads, i, got[i], want[i])
						}
					}
				}
				for i := m * n; i < len(got); i++ {
					if got[i] != 0 {
						t.Fatalf("%s: wrote past C", level)
					}
				}
				if first == nil {
					first = got[:m*n]
				} else if !slices.Equal(got[:m*n], first) {
					t.Fatalf("%s %dx%dx%d tA=%v tB=%v: %d threads differ from one", level, m, n, k, tA, tB, threads)
				}
			}
		}
	}
}

// TestAdamStepLevels checks that every level's AdamW step gives the same
// bits as the generic loop (the AVX2 kernel repeats its operations in
// order), over lengths around the 8-lane width and the parallel grain, with
// and without weight decay; and the L2 form, which stays scalar.
func TestAdamStepLevels(t *testing.T) {
	r := rand.New(rand.NewPCG(16, 17))
	for _, n := range []int{0, 1, 7, 8, 9, 31, 1000, 3 * elemGrain / 2, 70001} {
		for _, p := range []tensor.AdamParams{
			{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, OneMinusBeta1: 0.1, OneMinusBeta2: 0.001, StepSize: 1e-3, Bias2Sqrt: 0.04, LR: 1e-3, DecoupledWD: 0.01, GradScale: 0.5},
			{Beta1: 0.8, Beta2: 0.99, Eps: 1e-6, OneMinusBeta1: 0.2, OneMinusBeta2: 0.01, StepSize: 2e-4, Bias2Sqrt: 0.5, LR: 2e-4, GradScale: 1},
			{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, OneMinusBeta1: 0.1, OneMinusBeta2: 0.001, StepSize: 1e-3, Bias2Sqrt: 0.04, LR: 1e-3, L2: 0.1, GradScale: 1},
		} {
			p0, g, m0, v0 := randSlice(r, n), randSlice(r, n), randSlice(r, n), randSlice(r, n)
			for i := range v0 {
				v0[i] *= v0[i] // second moments are ≥ 0
			}
			var want [3][]float32
			for _, level := range Levels() {
				d := NewCPULevel(2, level)
				ps, ms, vs := slices.Clone(p0), slices.Clone(m0), slices.Clone(v0)
				d.AdamStep(&Buffer{dev: d, F: ps}, &Buffer{dev: d, F: g}, &Buffer{dev: d, F: ms}, &Buffer{dev: d, F: vs}, n, p)
				if level == Generic {
					want = [3][]float32{ps, ms, vs}
					continue
				}
				for k, got := range [3][]float32{ps, ms, vs} {
					for i := range got {
						if got[i] != want[k][i] {
							t.Fatalf("%s n=%d %+v: %s[%d] = %g, generic %g", level, n, p, []string{"param", "m", "v"}[k], i, got[i], want[k][i])
						}
					}
				}
			}
		}
	}
}

// TestPackAAgainstLoop checks packA (whose six-row AVX2 panels are packed by
// PackA6AVX2 and whole twelve-row AVX-512 ones by PackA12AVX2, eight steps
// at a time) against the definition, bit for bit,
// for depths around the 8-step blocks, row strides including a power of
// two, α ≠ 1, a partial last panel, and a guard after the panels.
func TestPackAAgainstLoop(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, kc := range []int{1, 5, 7, 8, 9, 15, 16, 17, 31, 33, 256} {
		for _, extra := range []int{0, 3, 1024} {
			for _, transA := range []bool{false, true} {
				for _, alpha := range []float32{1, 0.75} {
					for _, shape := range [][2]int{{6, 3}, {6, 5}, {12, 3}, {12, 8}, {12, 9}, {12, 11}} { // the AVX2 and AVX-512 panels
						mr := shape[0]
						m := 2*mr + shape[1] // two whole panels and a partial one
						lda := kc + 2 + extra
						if transA { // A stored (kc+2)×lda: row i of op(A) is column i
							lda = m + extra
						}
						a := randSlice(r, (m+kc+2)*lda)
						at := func(row, p int) float32 { return a[row*lda+2+p] }
						if transA {
							at = func(row, p int) float32 { return a[(2+p)*lda+row] }
						}
						panels := (m + mr - 1) / mr
						dst := make([]float32, panels*mr*kc+guard)
						for i := range dst {
							dst[i] = 12345
						}
						packA(dst, a, lda, transA, m, 0, m, 2, kc, mr, alpha)
						for ip := range panels {
							for p := range kc {
								for rr := range mr {
									var want float32
									if row := ip*mr + rr; row < m {
										want = alpha * at(row, p)
									}
									if got := dst[ip*mr*kc+p*mr+rr]; got != want {
										t.Fatalf("kc=%d lda=%d transA=%v mr=%d: panel %d step %d row %d = %g, want %g", kc, lda, transA, mr, ip, p, rr, got, want)
									}
								}
							}
						}
						for i := panels * mr * kc; i < len(dst); i++ {
							if dst[i] != 12345 {
								t.Fatalf("kc=%d lda=%d transA=%v: wrote past the panels", kc, lda, transA)
							}
						}
					}
				}
			}
		}
	}
}

// TestCopyRowsAVX512 checks the Winograd input's row copy against the
// definition for widths around the 16-lane vectors (the tail under a mask),
// with the gaps between destination rows and a guard after them untouched.
func TestCopyRowsAVX512(t *testing.T) {
	if MaxLevel() < AVX512 || !asm.Available {
		t.Skip("AVX-512 only")
	}
	r := rand.New(rand.NewPCG(21, 22))
	for _, cols := range []int{0, 1, 7, 15, 16, 17, 28, 31, 32, 33, 50} {
		for _, rows := range []int{0, 1, 3} {
			ss, ds := cols+5, cols+3
			src := randSlice(r, rows*ss+1)
			dst := make([]float32, rows*ds+guard)
			for i := range dst {
				dst[i] = 12345
			}
			if rows > 0 {
				asm.CopyRowsAVX512(&dst[0], ds, &src[0], ss, rows, cols)
			}
			for i, v := range dst {
				want := float32(12345)
				if row, j := i/ds, i%ds; row < rows && j < cols {
					want = src[row*ss+j]
				}
				if v != want {
					t.Fatalf("cols=%d rows=%d: dst[%d] = %g, want %g", cols, rows, i, v, want)
				}
			}
		}
	}
}

// TestAffineLevels checks the normalizations' a·x + b at every level against
// the scalar loop, bit for bit, on lengths around the 8-lane width, with a
// guard after dst.
func TestAffineLevels(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, level := range Levels() {
		d := NewCPULevel(1, level)
		for n := range 41 {
			src := randSlice(r, n)
			a, b := r.Float32()*4-2, r.Float32()*4-2
			dst := make([]float32, n+guard)
			for i := range dst {
				dst[i] = 12345
			}
			d.affine(dst[:n], src, a, b)
			for i, v := range src {
				if want := float32(v*a) + b; dst[i] != want {
					t.Fatalf("%s n=%d: [%d] = %g, want %g", level, n, i, dst[i], want)
				}
			}
			for _, v := range dst[n:] {
				if v != 12345 {
					t.Fatalf("%s n=%d: wrote past dst", level, n)
				}
			}
		}
	}
}

// TestScaleAddScalarValues checks that Scale (α·x + 0) and AddScalar (x + β),
// which the levels above generic run as float32 operations, give the
// float64 reference's values (==, so a zero's sign aside; NaN as NaN) on
// inputs that probe the argument: signed zeros, subnormals and products
// that underflow, exponents far apart, overflow, infinities.
func TestScaleAddScalarValues(t *testing.T) {
	inf := float32(math.Inf(1))
	xs := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 1.5, 3e38, -3e38, 1e-38, 1e-45, -1e-45, 7e-42,
		1 << 30, 1.0000001, 0.99999994, 123456.789, -2.5e-20, inf, -inf, float32(math.NaN())}
	r := rand.New(rand.NewPCG(17, 18))
	for range 45 {
		xs = append(xs, float32(r.NormFloat64()*math.Pow(10, float64(r.IntN(60)-30))))
	}
	var params []tensor.UnaryParams
	for _, a := range []float32{1, -1, 0.5, 3, 1e30, 1e-30, 0, float32(math.Copysign(0, -1)), 0.3333333, inf} {
		params = append(params, tensor.UnaryParams{Alpha: a}) // Scale
	}
	for _, b := range []float32{0, float32(math.Copysign(0, -1)), 1, -1, 1e-30, 1e30, 3e38, 1e-45, 0.1, -inf} {
		params = append(params, tensor.UnaryParams{Alpha: 1, Beta: b}) // AddScalar
	}
	ref := NewCPULevel(1, Generic)
	for _, level := range Levels()[1:] {
		d := NewCPULevel(2, level)
		for _, p := range params {
			want, got := make([]float32, len(xs)), make([]float32, len(xs))
			ref.Unary(tensor.OpAffine, &Buffer{dev: ref, F: want}, &Buffer{dev: ref, F: xs}, len(xs), p)
			d.Unary(tensor.OpAffine, &Buffer{dev: d, F: got}, &Buffer{dev: d, F: xs}, len(xs), p)
			for i := range xs {
				w, g := want[i], got[i]
				if w != w && g != g {
					continue
				}
				if w != g {
					t.Fatalf("%s α=%g β=%g x=%g: %g (%#x), reference %g (%#x)", level, p.Alpha, p.Beta, xs[i], g, math.Float32bits(g), w, math.Float32bits(w))
				}
			}
		}
	}
}

// TestBinaryRowsLevels checks the AVX2 elementwise rows (a op b, and a op
// one value) against the scalar loops bit for bit, every op, lengths around
// the 8-lane width, with a guard after y.
func TestBinaryRowsLevels(t *testing.T) {
	if !asm.Available {
		t.Skip("compares the assembly kernels, which this build lacks")
	}
	r := rand.New(rand.NewPCG(15, 16))
	for _, op := range []tensor.BinaryOp{tensor.OpAdd, tensor.OpSub, tensor.OpMul, tensor.OpDiv} {
		for n := range 41 {
			a, b := randSlice(r, n), randSlice(r, n)
			s := r.Float32() - 0.5
			for _, scalar := range []bool{false, true} {
				y := make([]float32, n+guard)
				for i := range y {
					y[i] = 12345
				}
				if scalar {
					binaryRowScalar(true, op, y[:n], a, s)
				} else {
					binaryRow(true, op, y[:n], a, b)
				}
				for i := range n {
					bi := b[i]
					if scalar {
						bi = s
					}
					if want := binaryF(op, a[i], bi); y[i] != want && !(want != want && y[i] != y[i]) {
						t.Fatalf("op %v n=%d scalar=%v: [%d] = %g, want %g", op, n, scalar, i, y[i], want)
					}
				}
				for _, v := range y[n:] {
					if v != 12345 {
						t.Fatalf("op %v n=%d scalar=%v: wrote past y", op, n, scalar)
					}
				}
			}
		}
	}
}

// TestNormGradRowLevels checks the normalizations' input-gradient row at
// every level against the scalar expression, bit for bit, with a guard.
func TestNormGradRowLevels(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	for _, level := range Levels() {
		d := NewCPULevel(1, level)
		for n := range 41 {
			dy, x := randSlice(r, n), randSlice(r, n)
			k := [4]float32{r.Float32() - 0.5, r.Float32() - 0.5, r.Float32() - 0.5, r.Float32() - 0.5}
			dx := make([]float32, n+guard)
			for i := range dx {
				dx[i] = 12345
			}
			d.normGradRow(dx[:n], dy, x, &k)
			for i := range n {
				if want := k[0]*dy[i] + k[1]*(x[i]-k[3]) + k[2]; dx[i] != want {
					t.Fatalf("%s n=%d: [%d] = %g, want %g", level, n, i, dx[i], want)
				}
			}
			for _, v := range dx[n:] {
				if v != 12345 {
					t.Fatalf("%s n=%d: wrote past dx", level, n)
				}
			}
		}
	}
}

// TestWinoTransformsLevels checks the assembly Winograd transforms against
// their plain-Go versions, bit for bit (same operations in the same order),
// with guard cells after every output row.
func TestWinoTransformsLevels(t *testing.T) {
	if !asm.Available || MaxLevel() < AVX2 {
		t.Skip("no AVX2 assembly in this build")
	}
	r := rand.New(rand.NewPCG(8, 9))
	for blocks := 1; blocks <= 3; blocks++ {
		tiles := 8 * blocks
		ins := 2*tiles + 2 + r.IntN(5)
		in := randSlice(r, 4*ins)
		vs := tiles + guard + r.IntN(9)
		got, want := make([]float32, 16*vs), make([]float32, 16*vs)
		for i := range got {
			got[i], want[i] = 12345, 12345
		}
		asm.WinoInputAVX2(&got[0], vs, &in[0], ins, blocks)
		winoInputRow(want, vs, in, ins, tiles)
		if !slices.Equal(got, want) {
			t.Fatalf("WinoInputAVX2, %d blocks: differs from winoInputRow", blocks)
		}

		// Every row width the blocks cover, odd and even, whole blocks and
		// a partial last one (masked stores): nothing past cols is written.
		ms := tiles + r.IntN(9)
		m := randSlice(r, 16*ms)
		bias := r.Float32()
		for cols := 2*tiles - 15; cols <= 2*tiles; cols++ {
			top, bot := make([]float32, 2*tiles+guard), make([]float32, 2*tiles+guard)
			wantTop, wantBot := make([]float32, 2*tiles+guard), make([]float32, 2*tiles+guard)
			for i := range top {
				top[i], bot[i], wantTop[i], wantBot[i] = 12345, 12345, 12345, 12345
			}
			asm.WinoOutputAVX2(&top[0], &bot[0], &m[0], ms, cols, bias)
			winoOutputRow(wantTop, wantBot, m, ms, tiles, bias)
			for i := cols; i < len(wantTop); i++ {
				wantTop[i], wantBot[i] = 12345, 12345
			}
			if !slices.Equal(top, wantTop) || !slices.Equal(bot, wantBot) {
				t.Fatalf("WinoOutputAVX2, %d columns: differs from winoOutputRow", cols)
			}
		}

		dyTop, dyBot := randSlice(r, 2*tiles), randSlice(r, 2*tiles)
		for i := range got {
			got[i], want[i] = 12345, 12345
		}
		asm.WinoDyAVX2(&got[0], vs, &dyTop[0], &dyBot[0], blocks)
		winoDyRow(want, vs, dyTop, dyBot, tiles)
		if !slices.Equal(got, want) {
			t.Fatalf("WinoDyAVX2, %d blocks: differs from winoDyRow", blocks)
		}

		// F(4×4, 3×3)'s: dy's 4×4 tiles.
		var dy4 [4][]float32
		for i := range dy4 {
			dy4[i] = randSlice(r, 4*tiles)
		}
		got4, want4 := make([]float32, 36*vs), make([]float32, 36*vs)
		for i := range got4 {
			got4[i], want4[i] = 12345, 12345
		}
		asm.WinoDy4AVX2(&got4[0], vs, &dy4[0][0], &dy4[1][0], &dy4[2][0], &dy4[3][0], blocks)
		winoDy4Row(want4, vs, dy4, tiles)
		if !slices.Equal(got4, want4) {
			t.Fatalf("WinoDy4AVX2, %d blocks: differs from winoDy4Row", blocks)
		}

		// The weight gradients' ends, 4×4 → 3×3 at the 2-D and 3-D strides
		// (9 and 27) and 6×6 → 3×3: the nine values of each kernel and
		// nothing between.
		for _, c := range []struct {
			name string
			end  winoGradEnd
			ds   []int
		}{{"WinoWeightGradAVX2", winoGradEnd2, []int{9, 27}}, {"WinoWeightGrad4AVX2", winoGradEnd4, []int{9, 11}}} {
			for _, ds := range c.ds {
				wg := randSlice(r, c.end.mats*ms)
				gotW, wantW := make([]float32, tiles*ds+guard), make([]float32, tiles*ds+guard)
				for i := range gotW {
					gotW[i], wantW[i] = 12345, 12345
				}
				c.end.asm(&gotW[0], ds, &wg[0], ms, blocks)
				for k := range tiles {
					var m [36]float32
					for xi := range c.end.mats {
						m[xi] = wg[xi*ms+k]
					}
					c.end.kernel(wantW[k*ds:k*ds+9], &m)
				}
				if !slices.Equal(gotW, wantW) {
					t.Fatalf("%s, %d blocks, stride %d: differs from its Go kernel", c.name, blocks, ds)
				}
			}
		}

		// The weight transforms, plain and flipped, from kernels at
		// scattered offsets (some overlapping) into n strided matrices.
		kernels := randSlice(r, 9*40)
		off := make([]int32, tiles)
		for j := range off {
			off[j] = int32(r.IntN(len(kernels) - 8))
		}
		for _, form := range []winoWeightForm{winoWeights2, winoWeights4} {
			for flip, kernel := range form.asm {
				us := tiles + r.IntN(9)
				gotU, wantU := make([]float32, form.n*us+guard), make([]float32, form.n*us+guard)
				for i := range gotU {
					gotU[i], wantU[i] = 12345, 12345
				}
				kernel(&gotU[0], us, &kernels[0], &off[0], blocks)
				for j, o := range off {
					k := [9]float32(kernels[o:])
					if flip == 1 {
						for i := range k {
							k[i] = kernels[int(o)+8-i]
						}
					}
					form.kernel(wantU, us, j, &k)
				}
				if !slices.Equal(gotU, wantU) {
					t.Fatalf("Winograd weights (%d matrices, flipped %v), %d blocks: differ from the Go kernel", form.n, flip == 1, blocks)
				}
			}
		}
	}
}

// TestWinoWeightsPackedAsmAndGo checks the packed Winograd weights made with
// the assembly transforms against those made in Go, bit for bit: full and
// partial panels, a second depth block, both forms, plain and flipped.
func TestWinoWeightsPackedAsmAndGo(t *testing.T) {
	if !asm.Available || MaxLevel() < AVX2 {
		t.Skip("no AVX2 assembly in this build")
	}
	r := rand.New(rand.NewPCG(15, 16))
	goTune := DefaultTuning()
	goTune.WinogradAsm = false
	for _, level := range Levels()[1:] {
		withAsm, inGo := NewCPULevel(2, level), NewCPUTuned(2, level, goTune)
		mk, _ := withAsm.microKernel()
		for _, fc := range [][2]int{{24, 24}, {13, 5}, {2 * mk.mr, 300}, {7, 1}, {31, 263}} {
			f, c := fc[0], fc[1]
			w := randSlice(r, f*c*9)
			for _, form := range []winoWeightForm{winoWeights2, winoWeights4} {
				for _, flipped := range []bool{false, true} {
					n := winoWeightsLen(mk, f, c, form.n)
					got, want := make([]float32, n), make([]float32, n)
					for i := range got {
						got[i], want[i] = 12345, 12345
					}
					withAsm.winoWeightsPacked(got, w, f, c, flipped, form)
					inGo.winoWeightsPacked(want, w, f, c, flipped, form)
					if !slices.Equal(got, want) {
						t.Fatalf("%s %d×%d, %d matrices, flipped %v: assembly and Go differ", level, f, c, form.n, flipped)
					}
				}
			}
		}
	}
}

// TestPackBTransposedAgainstLoop checks packB for a transposed B (column j of
// op(B) contiguous in b, the 8×8-transpose path where the columns are evenly
// spaced) against the definition, bit for bit, with a guard after the panels.
func TestPackBTransposedAgainstLoop(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, kc := range []int{1, 5, 7, 8, 9, 15, 16, 17, 31, 33, 256} {
		for _, nc := range []int{1, 7, 8, 9, 16, 23, 40} {
			for _, extra := range []int{0, 3, 1024} {
				const nr, p0, j0 = 16, 2, 3
				ld := p0 + kc + extra
				b := randSlice(r, (j0+nc)*ld)
				panels := (nc + nr - 1) / nr
				dst := make([]float32, panels*nr*kc+guard)
				for i := range dst {
					dst[i] = 12345
				}
				packB(dst, operandB{b: b, ld: ld, trans: true}, p0, kc, j0, nc, nr)
				for jp := range panels {
					for p := range kc {
						for jj := range nr {
							var want float32
							if j := jp*nr + jj; j < nc {
								want = b[(j0+j)*ld+p0+p]
							}
							if got := dst[jp*nr*kc+p*nr+jj]; got != want {
								t.Fatalf("kc=%d nc=%d ld=%d: panel %d step %d column %d = %g, want %g", kc, nc, ld, jp, p, jj, got, want)
							}
						}
					}
				}
				for i := panels * nr * kc; i < len(dst); i++ {
					if dst[i] != 12345 {
						t.Fatalf("kc=%d nc=%d ld=%d: wrote past the panels", kc, nc, ld)
					}
				}
			}
		}
	}
}

// TestConvEmptyShapes runs the three passes on a batch of none and on
// zero-wide images, at every level (the Winograd path included), which
// must neither panic nor write.
func TestConvEmptyShapes(t *testing.T) {
	for _, level := range Levels() {
		d := NewCPULevel(2, level)
		for _, p := range []tensor.ConvParams{
			{N: 0, C: 16, H: 4, W: 4, F: 16, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadTop: 1, PadBottom: 1, PadLeft: 1, PadRight: 1, OH: 4, OW: 4},
			{N: 2, C: 16, H: 4, W: 0, F: 16, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadTop: 1, PadBottom: 1, PadLeft: 1, PadRight: 1, OH: 4, OW: 0},
		} {
			x := withGuard(d, p.N*p.C*p.H*p.W)
			w := withGuard(d, p.F*p.C*9)
			y := withGuard(d, p.N*p.F*p.OH*p.OW)
			d.Conv2D(y, x, w, nil, p)
			d.Conv2DBackwardInput(x, y, w, p)
			d.Conv2DBackwardWeight(w, nil, x, y, p)
			checkGuard(t, "conv output", y, p.N*p.F*p.OH*p.OW)
			checkGuard(t, "conv input gradient", x, p.N*p.C*p.H*p.W)
			checkGuard(t, "conv weight gradient", w, p.F*p.C*9)
		}
	}
}

// TestDotRowsAgainstReference checks the batch-1 Linear kernel (four rows
// at a time in assembly, the rest of each row and the rows past the last
// four in Go) against float64 sums at every level, on row counts and
// lengths around the groups and the vector widths, with a row stride
// longer than the rows; and that its split over threads changes no bit.
func TestDotRowsAgainstReference(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for _, level := range Levels() {
		for _, n := range []int{1, 3, 4, 5, 8, 9, 13, 300} {
			for _, k := range []int{0, 1, 7, 8, 15, 16, 17, 31, 33, 128, 129, 600} {
				ldw := k + 3
				w, x := randSlice(r, n*ldw), randSlice(r, k)
				want := make([]float32, n)
				for i := range n {
					var s float64
					for p := range k {
						s += float64(w[i*ldw+p]) * float64(x[p])
					}
					want[i] = float32(s)
				}
				var first []float32
				for _, threads := range []int{1, 2} {
					d := NewCPULevel(threads, level)
					y := withGuard(d, n)
					d.dotRows(y.F[:n], w, ldw, x, n, k)
					name := fmt.Sprintf("%s %d rows of %d, threads=%d", level, n, k, threads)
					closeTo(t, name, y.F[:n], want, 1e-6*float64(k+1))
					checkGuard(t, name, y, n)
					if first == nil {
						first = y.F[:n]
					} else if !slices.Equal(first, y.F[:n]) {
						t.Fatalf("%s: differs from one thread", name)
					}
				}
			}
		}
	}
}

// TestMatMulVectorTimesWeights: a 1×K row times an N×K matrix stored
// transposed (a Linear layer at batch 1) takes the matrix as the packed,
// kept operand; at every level it matches the plain sum, on the first call,
// on a repeat (the kept form) and after the matrix changes.
func TestMatMulVectorTimesWeights(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, level := range Levels() {
		for _, sh := range [][2]int{{1, 1}, {5, 7}, {13, 300}, {256, 512}, {289, 33}} {
			n, k := sh[0], sh[1]
			d := NewCPULevel(2, level)
			a, w := randSlice(r, k), randSlice(r, n*k)
			wb := &Buffer{dev: d, F: w}
			p := tensor.MatMulParams{Batch: 1, M: 1, N: n, K: k, TransB: true, Alpha: 1}
			for round := range 3 {
				if round == 2 {
					for i := range w {
						w[i] = -w[i] + 0.25
					}
				}
				want := make([]float32, n)
				for j := range n {
					var s float64
					for q := range k {
						s += float64(a[q]) * float64(w[j*k+q])
					}
					want[j] = float32(s)
				}
				c := withGuard(d, n)
				d.MatMul(c, &Buffer{dev: d, F: a}, wb, p)
				name := fmt.Sprintf("matmul 1x%d·(%dx%d)ᵀ %s round %d", k, n, k, level, round)
				closeTo(t, name, c.F[:n], want, 1e-5*float64(k+1))
				checkGuard(t, name, c, n)
			}
		}
	}
}

// TestIm2colDownWide checks the AVX-512 im2col of the downsamplers (3 wide,
// stride 2, padding 1) against the Go loop, value for value, on image sides
// around one and two 32-column blocks, odd and even, with every top and
// bottom padding, in a band of rows of a taller image (plane > H·W).
func TestIm2colDownWide(t *testing.T) {
	if !NewCPU(1).wide() {
		t.Skip("no AVX-512 kernels on this CPU")
	}
	r := rand.New(rand.NewPCG(31, 32))
	for _, w := range []int{1, 2, 3, 5, 7, 8, 14, 28, 31, 32, 33, 63, 64, 65, 100} {
		for _, h := range []int{1, 2, 5, 14} {
			for _, pad := range [][2]int{{1, 1}, {1, 0}, {0, 1}, {2, 0}} {
				p := tensor.ConvParams{N: 1, C: 3, H: h, W: w, F: 1, KH: 3, KW: 3, StrideH: 2, StrideW: 2,
					PadTop: pad[0], PadBottom: pad[1], PadLeft: 1, PadRight: 1}
				p.OH, p.OW = (h+pad[0]+pad[1]-3)/2+1, (w+2-3)/2+1
				if p.OH <= 0 || 2*p.OW-1 > p.W {
					continue
				}
				plane := h*w + 5
				x := randSlice(r, p.C*plane)
				n := p.C * 9 * p.OH * p.OW
				want, got := randSlice(r, n+guard), randSlice(r, n+guard)
				copy(got[n:], want[n:])
				im2colDown(want, x, p, plane)
				im2colDownWide(got, x, p, plane)
				if !slices.Equal(got, want) {
					t.Fatalf("%d×%d, padding %v: the AVX-512 im2col differs from the Go loop", h, w, pad)
				}
			}
		}
	}
}
