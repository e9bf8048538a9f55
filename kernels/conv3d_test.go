package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/godiffuse/godiffuse/tensor"
)

// naiveConv3D is the float64 seven-loop 3-D convolution, the specification.
func naiveConv3D(x, w, b []float32, p tensor.Conv3DParams) []float32 {
	y := make([]float32, p.N*p.F*p.OD*p.OH*p.OW)
	for n := range p.N {
		for f := range p.F {
			for oz := range p.OD {
				for oy := range p.OH {
					for ox := range p.OW {
						var s float64
						if b != nil {
							s = float64(b[f])
						}
						for c := range p.C {
							for kz := range p.KD {
								for ky := range p.KH {
									for kx := range p.KW {
										iz, iy, ix := oz*p.StrideD+kz-p.PadD, oy*p.StrideH+ky-p.PadH, ox*p.StrideW+kx-p.PadW
										if iz < 0 || iy < 0 || ix < 0 || iz >= p.D || iy >= p.H || ix >= p.W {
											continue
										}
										s += float64(x[(((n*p.C+c)*p.D+iz)*p.H+iy)*p.W+ix]) * float64(w[(((f*p.C+c)*p.KD+kz)*p.KH+ky)*p.KW+kx])
									}
								}
							}
						}
						y[(((n*p.F+f)*p.OD+oz)*p.OH+oy)*p.OW+ox] = float32(s)
					}
				}
			}
		}
	}
	return y
}

// TestConv3DAgainstNaive checks the three passes at every level, on the
// vol2col path and (stride 1) the shifted-rows one, on awkward shapes with
// guard cells: forward against the float64 loops, both gradients against
// the adjoint identities <conv(x), g> = <x, dx> = <w, dw>.
func TestConv3DAgainstNaive(t *testing.T) {
	for _, level := range Levels() {
		t.Run(level.String(), func(t *testing.T) { testConv3D(t, NewCPULevel(2, level)) })
	}
	tune := DefaultTuning()
	tune.ShiftMinWidth = 1 // every stride-1 convolution shifted
	for _, level := range Levels()[1:] {
		d := NewCPUTuned(2, level, tune)
		t.Run(fmt.Sprintf("%s/shifted", level), func(t *testing.T) { t.Parallel(); testConv3D(t, d) })
	}
	tune.WinogradMinC, tune.Winograd3DMinPlane = 1, 1 // every 3×3×3 stride-1 padding-1 convolution by plane Winograd
	for _, level := range Levels()[1:] {
		d := NewCPUTuned(2, level, tune)
		t.Run(fmt.Sprintf("%s/winograd", level), func(t *testing.T) { t.Parallel(); testConv3D(t, d) })
	}
}

func testConv3D(t *testing.T, d *Device) {
	r := rand.New(rand.NewPCG(3, 3))
	for trial := range 48 {
		s := 1 + r.IntN(2)
		p := tensor.Conv3DParams{N: 1 + r.IntN(3), C: 1 + r.IntN(4), D: 1 + r.IntN(6), H: 1 + r.IntN(6), W: 1 + r.IntN(9),
			F: 1 + r.IntN(5), KD: 1 + r.IntN(3), KH: 1 + r.IntN(3), KW: 1 + r.IntN(3), StrideD: s, StrideH: s, StrideW: s,
			PadD: r.IntN(2), PadH: r.IntN(2), PadW: r.IntN(2)}
		if trial%4 == 1 { // the U-Net's 3×3×3 stride 1 padding 1 at small sizes (Winograd's shape)
			p.KD, p.KH, p.KW, p.PadD, p.PadH, p.PadW, p.StrideD, p.StrideH, p.StrideW = 3, 3, 3, 1, 1, 1, 1, 1, 1
			s = 1
		}
		if trial >= 32 { // the U-Net's shapes: 3×3×3, pad 1, C·27 past the packing block KC = 256
			p.C, p.F, p.D, p.H, p.W = 10+trial%5, 17+trial%13, 3+trial%3, 5, 6+trial%7
			p.KD, p.KH, p.KW, p.PadD, p.PadH, p.PadW = 3, 3, 3, 1, 1, 1
		}
		if trial >= 40 { // a stride per axis (1 to 3), odd and even sizes: the phases of the shifted path
			p.StrideD, p.StrideH, p.StrideW = 1+trial%2, 1+trial/2%3, 1+trial/3%3
			p.D, p.H, p.W = 4+trial%3, 5+trial%4, 9+trial%5
			p.PadD, p.PadH, p.PadW = trial%2, 1, 1+trial%2
		}
		if p.D+2*p.PadD < p.KD || p.H+2*p.PadH < p.KH || p.W+2*p.PadW < p.KW {
			continue
		}
		p.OD, p.OH, p.OW = (p.D+2*p.PadD-p.KD)/p.StrideD+1, (p.H+2*p.PadH-p.KH)/p.StrideH+1, (p.W+2*p.PadW-p.KW)/p.StrideW+1
		x, w, b := randSlice(r, p.N*p.C*p.D*p.H*p.W), randSlice(r, p.F*p.C*p.KD*p.KH*p.KW), randSlice(r, p.F)
		want := naiveConv3D(x, w, b, p)
		xb, wb := &Buffer{dev: d, F: x}, &Buffer{dev: d, F: w}
		y := withGuard(d, len(want))
		d.Conv3D(y, xb, wb, &Buffer{dev: d, F: b}, p)
		closeTo(t, fmt.Sprintf("conv3d %+v", p), y.F[:len(want)], want, 1e-5)
		checkGuard(t, "conv3d", y, len(want))

		g := randSlice(r, len(want))
		noBias := naiveConv3D(x, w, nil, p)
		var lhs float64
		for i := range g {
			lhs += float64(g[i]) * float64(noBias[i])
		}
		dx := withGuard(d, len(x))
		d.Conv3DBackwardInput(dx, &Buffer{dev: d, F: g}, wb, p)
		checkGuard(t, "conv3d backward input", dx, len(x))
		if rhs := dot64(x, dx.F); math.Abs(lhs-rhs) > 1e-4*(1+math.Abs(lhs)) {
			t.Fatalf("conv3d backward input: <y,g> = %g but <x,dx> = %g (%+v)", lhs, rhs, p)
		}
		dw, db := withGuard(d, len(w)), withGuard(d, p.F)
		d.Conv3DBackwardWeight(dw, db, xb, &Buffer{dev: d, F: g}, p)
		checkGuard(t, "conv3d backward weight", dw, len(w))
		checkGuard(t, "conv3d backward bias", db, p.F)
		if rhs := dot64(w, dw.F); math.Abs(lhs-rhs) > 1e-4*(1+math.Abs(lhs)) {
			t.Fatalf("conv3d backward weight: <y,g> = %g but <w,dw> = %g (%+v)", lhs, rhs, p)
		}
		vox := p.OD * p.OH * p.OW
		for f := range p.F {
			var s float64
			for n := range p.N {
				for _, v := range g[(n*p.F+f)*vox:][:vox] {
					s += float64(v)
				}
			}
			if math.Abs(s-float64(db.F[f])) > 1e-4*(1+math.Abs(s)) {
				t.Fatalf("conv3d backward bias %d: %g, want %g", f, db.F[f], s)
			}
		}
	}
}

func dot64(a, b []float32) float64 {
	var s float64
	for i, v := range a {
		s += float64(v) * float64(b[i])
	}
	return s
}

// naiveUpsample3D evaluates PyTorch's formula directly: along each axis,
// output j samples source position s = max((j+0.5)/2 - 0.5, 0) with linear
// weights (trilinear), or reads j/2 (nearest).
func naiveUpsample3D(x []float32, p tensor.Upsample3DParams) []float32 {
	axis := func(j, L int) (int, int, float64) {
		if p.Mode == tensor.Nearest {
			return j / 2, j / 2, 0
		}
		s := max((float64(j)+0.5)/2-0.5, 0)
		i0 := int(math.Floor(s))
		return i0, min(i0+1, L-1), s - float64(i0)
	}
	D2, H2, W2 := 2*p.D, 2*p.H, 2*p.W
	y := make([]float32, p.N*p.C*D2*H2*W2)
	for nc := range p.N * p.C {
		for z := range D2 {
			z0, z1, lz := axis(z, p.D)
			for yy := range H2 {
				y0, y1, ly := axis(yy, p.H)
				for xx := range W2 {
					x0, x1, lx := axis(xx, p.W)
					at := func(a, b, c int) float64 { return float64(x[((nc*p.D+a)*p.H+b)*p.W+c]) }
					v := (1-lz)*((1-ly)*((1-lx)*at(z0, y0, x0)+lx*at(z0, y0, x1))+ly*((1-lx)*at(z0, y1, x0)+lx*at(z0, y1, x1))) +
						lz*((1-ly)*((1-lx)*at(z1, y0, x0)+lx*at(z1, y0, x1))+ly*((1-lx)*at(z1, y1, x0)+lx*at(z1, y1, x1)))
					y[((nc*D2+z)*H2+yy)*W2+xx] = float32(v)
				}
			}
		}
	}
	return y
}

func TestUpsample3DAgainstNaive(t *testing.T) {
	d := NewCPU(2)
	r := rand.New(rand.NewPCG(9, 9))
	for trial := range 20 {
		p := tensor.Upsample3DParams{N: 1 + r.IntN(2), C: 1 + r.IntN(3), D: 1 + r.IntN(4), H: 1 + r.IntN(4), W: 1 + r.IntN(5),
			Mode: tensor.Interpolation(trial % 2)}
		x := randSlice(r, p.N*p.C*p.D*p.H*p.W)
		want := naiveUpsample3D(x, p)
		y := withGuard(d, len(want))
		d.Upsample3D(y, &Buffer{dev: d, F: x}, p)
		closeTo(t, fmt.Sprintf("upsample3d %+v", p), y.F[:len(want)], want, 1e-6)
		checkGuard(t, "upsample3d", y, len(want))
		g := randSlice(r, len(want))
		dx := withGuard(d, len(x))
		d.Upsample3DBackward(dx, &Buffer{dev: d, F: g}, p)
		checkGuard(t, "upsample3d backward", dx, len(x))
		if lhs, rhs := dot64(g, want), dot64(x, dx.F); math.Abs(lhs-rhs) > 1e-5*(1+math.Abs(lhs)) {
			t.Fatalf("upsample3d backward: <y,g> = %g but <x,dx> = %g (%+v)", lhs, rhs, p)
		}
	}
}
