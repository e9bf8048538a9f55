package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/godiffuse/godiffuse/tensor"
)

// TestWinograd4AgainstNaive holds F(4×4, 3×3), its assembly transforms and
// the plain-Go ones, to the direct convolution on images wide enough for
// whole 8-tile blocks and a partial one, odd sizes, both paddings, and
// chunks of one tile row and of many. The input gradient (a flipped
// convolution) is checked against the forward by the adjoint identity, the
// weight gradient (F(3×3, 4×4)) value by value.
func TestWinograd4AgainstNaive(t *testing.T) {
	shapes := []tensor.ConvParams{
		{N: 2, C: 5, F: 7, H: 37, W: 70, PadTop: 1, PadBottom: 1, PadLeft: 1, PadRight: 1},
		{N: 1, C: 3, F: 2, H: 9, W: 33, PadTop: 1, PadBottom: 1, PadLeft: 1, PadRight: 1},
		{N: 3, C: 17, F: 33, H: 7, W: 7, PadTop: 1, PadBottom: 1, PadLeft: 1, PadRight: 1},
		{N: 1, C: 4, F: 5, H: 35, W: 66}, // no padding: OW = 64, two whole blocks
		{N: 2, C: 8, F: 3, H: 4, W: 3, PadTop: 1, PadBottom: 1, PadLeft: 1, PadRight: 1},
		{N: 1, C: 300, F: 20, H: 6, W: 5, PadTop: 1, PadBottom: 1, PadLeft: 1, PadRight: 1}, // past a depth block
		// 7×7 and 9×9 tiles: in one chunk, the last tile's column is computed alone (prepackedA.column)
		{N: 1, C: 12, F: 29, H: 28, W: 28, PadTop: 1, PadBottom: 1, PadLeft: 1, PadRight: 1},
		{N: 1, C: 20, F: 61, H: 36, W: 36, PadTop: 1, PadBottom: 1, PadLeft: 1, PadRight: 1},
	}
	tune := DefaultTuning()
	tune.Winograd4MinSide, tune.TapsMaxF = 0, 0
	tune.WinogradMinC, tune.FlipMinC, tune.WinogradMinTiles, tune.WinogradMinTileChannels = 1, 1, 0, 0
	for _, asm := range []bool{true, false} {
		for _, tiles := range []int{1, 256} {
			tune.WinogradAsm, tune.WinogradTiles = asm, tiles
			for _, level := range Levels()[1:] {
				d := NewCPUTuned(2, level, tune)
				t.Run(fmt.Sprintf("%s/asm=%v/tiles=%d", level, asm, tiles), func(t *testing.T) {
					r := rand.New(rand.NewPCG(41, 42))
					for _, p := range shapes {
						p.KH, p.KW, p.StrideH, p.StrideW = 3, 3, 1, 1
						p.OH, p.OW = p.H+p.PadTop+p.PadBottom-2, p.W+p.PadLeft+p.PadRight-2
						if got := d.PlanConv2D(p).Forward; got != ConvWinograd {
							t.Fatalf("%+v: planned %v, not Winograd", p, got)
						}
						x, w, b := randSlice(r, p.N*p.C*p.H*p.W), randSlice(r, p.F*p.C*9), randSlice(r, p.F)
						want := naiveConv(x, w, b, p)
						xb, wb := &Buffer{dev: d, F: x}, &Buffer{dev: d, F: w}
						y := withGuard(d, len(want))
						d.Conv2D(y, xb, wb, &Buffer{dev: d, F: b}, p)
						checkGuard(t, "winograd4", y, len(want))
						closeTo(t, fmt.Sprintf("winograd4 %+v", p), y.F[:len(want)], want, 1e-5)

						g := randSlice(r, len(want))
						dx := withGuard(d, len(x))
						d.Conv2DBackwardInput(dx, &Buffer{dev: d, F: g}, wb, p)
						checkGuard(t, "winograd4 backward input", dx, len(x))
						adjoint(t, x, dx.F[:len(x)], g, naiveConv(x, w, nil, p))

						// The weight gradient, F(3×3, 4×4), value by value.
						dw, db := withGuard(d, len(w)), withGuard(d, p.F)
						d.Conv2DBackwardWeight(dw, db, xb, &Buffer{dev: d, F: g}, p)
						checkGuard(t, "winograd4 backward weight", dw, len(w))
						closeTo(t, fmt.Sprintf("winograd4 backward weight %+v", p), dw.F[:len(w)], naiveWeightGrad(x, g, p), 1e-5)
					}
				})
			}
		}
	}
}

// naiveWeightGrad is dw[f][c][ky][kx] = Σ dy[n][f][oy][ox]·x[n][c][oy·sh + ky − pt][ox·sw + kx − pl],
// summed in float64.
func naiveWeightGrad(x, dy []float32, p tensor.ConvParams) []float32 {
	dw := make([]float32, p.F*p.C*p.KH*p.KW)
	for f := range p.F {
		for c := range p.C {
			for ky := range p.KH {
				for kx := range p.KW {
					var s float64
					for n := range p.N {
						for oy := range p.OH {
							iy := oy*p.StrideH + ky - p.PadTop
							if iy < 0 || iy >= p.H {
								continue
							}
							for ox := range p.OW {
								if ix := ox*p.StrideW + kx - p.PadLeft; ix >= 0 && ix < p.W {
									s += float64(dy[((n*p.F+f)*p.OH+oy)*p.OW+ox]) * float64(x[((n*p.C+c)*p.H+iy)*p.W+ix])
								}
							}
						}
					}
					dw[((f*p.C+c)*p.KH+ky)*p.KW+kx] = float32(s)
				}
			}
		}
	}
	return dw
}

// adjoint checks <conv(x), g> = <x, convᵀ(g)>.
func adjoint(t *testing.T, x, dx, g, y []float32) {
	t.Helper()
	var lhs, rhs, scale float64
	for i := range g {
		lhs += float64(g[i]) * float64(y[i])
		scale += abs64(float64(g[i]) * float64(y[i]))
	}
	for i := range x {
		rhs += float64(x[i]) * float64(dx[i])
	}
	if abs64(lhs-rhs) > 1e-5*(1+scale) {
		t.Fatalf("backward input: <y,g> = %g but <x,dx> = %g", lhs, rhs)
	}
}

func abs64(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

// TestWinogradBatch1Allocs checks that a batch-1 Winograd convolution on one
// thread, with frozen weights as a sampler runs it, allocates nothing: the
// lone-column product of a 7×7-tile image (28×28 at F(4×4, 3×3)) had
// allocated its scratch at each of its 36 GEMMs, 45 % of a batch-1
// tiny-mnist forward's allocations.
func TestWinogradBatch1Allocs(t *testing.T) {
	for _, s := range []struct{ c, f, side int }{{32, 32, 28}, {48, 48, 14}, {256, 256, 8}} {
		p := tensor.ConvParams{N: 1, C: s.c, H: s.side, W: s.side, F: s.f, KH: 3, KW: 3, StrideH: 1, StrideW: 1,
			PadTop: 1, PadBottom: 1, PadLeft: 1, PadRight: 1, OH: s.side, OW: s.side}
		r := rand.New(rand.NewPCG(1, 1))
		d := NewCPU(1)
		if d.PlanConv2D(p).Forward != ConvWinograd {
			continue // a level without the packed kernels
		}
		wb := &Buffer{dev: d, F: randSlice(r, s.f*s.c*9)}
		wb.Freeze()
		xb, yb := &Buffer{dev: d, F: randSlice(r, s.c*s.side*s.side)}, &Buffer{dev: d, F: make([]float32, s.f*s.side*s.side)}
		d.Conv2D(yb, xb, wb, nil, p) // the weights transformed and cached
		if n := testing.AllocsPerRun(20, func() { d.Conv2D(yb, xb, wb, nil, p) }); n != 0 {
			t.Errorf("%d→%d at %d×%d: %.1f allocations a call, want 0", s.c, s.f, s.side, s.side, n)
		}
	}
}

// TestProductInPlaceMatchesPrepacked holds productInPlace, the batch-1
// Winograd products' own loop, to sgemmPrepacked's one-thread product bit
// for bit: the same kernel calls, on awkward row counts and slabs of rows,
// at every width that readsInPlace admits.
func TestProductInPlaceMatchesPrepacked(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for _, l := range Levels() {
		d := NewCPULevel(1, l)
		mk, ok := d.microKernel()
		if !ok {
			continue
		}
		checked := 0
		for _, s := range []struct{ m, k, n, ld int }{
			{32, 32, 48, 80}, {32, 32, 32, 64}, {48, 96, 16, 48}, {7, 5, 16, 32}, {100, 128, 64, 80}, {13, 1, 96, 112},
		} {
			a, b := randSlice(r, s.m*s.k), randSlice(r, s.k*s.ld)
			pa := prepackA(mk, false, s.m, s.k, 1, a, s.k)
			if !pa.readsInPlace(s.n, s.ld) {
				continue
			}
			checked++
			offs := rowOffsetsOf(s.k, 0, s.ld)
			for _, rows := range [][2]int{{0, s.m}, {mk.mr, s.m}} {
				if rows[0] >= rows[1] {
					continue
				}
				m := rows[1] - rows[0]
				want, got := make([]float32, m*s.n), make([]float32, m*s.n)
				for i := range got {
					got[i] = float32(math.NaN()) // every value must be written
				}
				sgemmPrepacked(pa, rows[0], m, 1, s.n, 0, operandB{b: b, ld: s.ld}, 0, nil, want, s.n)
				pa.productInPlace(rows[0], m, s.n, b, *offs, got, s.n, make([]float32, tileLen))
				for i := range want {
					if math.Float32bits(want[i]) != math.Float32bits(got[i]) {
						t.Fatalf("%s %+v rows %v: value %d is %v, sgemmPrepacked gives %v", mk.name, s, rows, i, got[i], want[i])
					}
				}
			}
			offsetPool.Put(offs)
		}
		if checked == 0 {
			t.Errorf("%s: no shape reads in place", mk.name)
		}
	}
}
