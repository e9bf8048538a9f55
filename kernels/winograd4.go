package kernels

import (
	"github.com/godiffuse/godiffuse/kernels/asm"
	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// Winograd F(4×4, 3×3): four outputs of a 3-tap correlation from six inputs
// with six multiplications (Lavin & Gray, 2015, interpolating at 0, ±1, ±2
// and ∞). As in F(2×2, 3×3) (winograd.go), Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A,
// now with a 6×6 input tile d, a 4×4 output tile and
//
//	Bᵀ = | 4  0 -5  0  1  0 |   G = |  ¼     0     0  |   Aᵀ = | 1  1  1  1  1  0 |
//	     | 0 -4 -4  1  1  0 |       | -⅙    -⅙    -⅙  |        | 0  1 -1  2 -2  0 |
//	     | 0  4 -4 -1  1  0 |       | -⅙     ⅙    -⅙  |        | 0  1  1  4  4  0 |
//	     | 0 -2 -1  2  1  0 |       | 1/24  1/12  1/6 |        | 0  1 -1  8 -8  1 |
//	     | 0  2 -1 -2  1  0 |       | 1/24 -1/12  1/6 |
//	     | 0  4  0 -5  0  1 |       |  0     0     1  |
//
// 36 GEMMs of depth C per 16 outputs instead of 16 per 4: 2.25 multiply-adds
// per output, channel and filter against 4 for F(2×2, 3×3) and 9 done
// directly, and the transformed tiles V and products M, which stream
// through memory, shrink in the same ratio. The price is accuracy: the
// transforms multiply by up to 8 and the weights by ⅙ and 1/24, so the
// rounding error grows about tenfold against F(2×2, 3×3) (still ~1e-6 of
// the largest partial sums; TestConvAgainstNaive).
//
// Used for the forward pass, the input gradient (a flipped convolution)
// and the weight gradient (F(3×3, 4×4), winograd.go) of outputs at least
// Tuning.Winograd4MinSide high and wide (winogradTile).
// ---------------------------------------------------------------------------

// winograd4WeightsOf is winogradWeightsOf for F(4×4, 3×3): the 36 matrices
// U[6η + ν], kept across calls while w does not change (weightcache.go).
func (d *Device) winograd4WeightsOf(w tensor.Buffer, ws []float32, f, c int, flipped bool) (us []gemmA, release func()) {
	mk, _ := d.microKernel()
	form := formWinograd4
	if flipped {
		form = formWinograd4Flipped
	}
	return preparedWeights(d, w, ws, form, f, c, winoWeightsLen(mk, f, c, 36), func(buf []float32) []gemmA {
		return d.winoWeightsPacked(buf, ws, f, c, flipped, winoWeights4)
	})
}

// winoWeight4Kernel is winoWeightKernel for F(4×4, 3×3): G·k·Gᵀ into the
// 36 matrices U[6η + ν], G along y column by column, then along x row by
// row.
func winoWeight4Kernel(u []float32, us, i int, k *[9]float32) {
	var gy [6][3]float32
	for x := range 3 {
		for eta, v := range gVec6(k[x], k[3+x], k[6+x]) {
			gy[eta][x] = v
		}
	}
	for eta, row := range gy {
		for nu, v := range gVec6(row[0], row[1], row[2]) {
			u[(6*eta+nu)*us+i] = v
		}
	}
}

// gVec6 is G·(g0, g1, g2) (by multiplications: a division by 6 or 24
// takes several times as long).
func gVec6(g0, g1, g2 float32) [6]float32 {
	const sixth, twentyFourth = 1.0 / 6, 1.0 / 24
	even, odd := g0+g2, g1
	return [6]float32{
		0.25 * g0,
		-sixth * (even + odd),
		-sixth * (even - odd),
		twentyFourth * (g0 + 4*g2 + 2*g1),
		twentyFourth * (g0 + 4*g2 - 2*g1),
		g2,
	}
}

// bVec6 is Bᵀ·(d0 … d5).
func bVec6(d0, d1, d2, d3, d4, d5 float32) [6]float32 {
	return [6]float32{
		4*d0 - 5*d2 + d4,
		d3 + d4 - 4*(d1+d2),
		d4 - d3 + 4*(d1-d2),
		d4 - d2 + 2*(d3-d1),
		d4 - d2 - 2*(d3-d1),
		4*d1 - 5*d3 + d5,
	}
}

// winoInput4Row is the plain-Go WinoInput4AVX2 for any number of tiles:
// with the padded input rows d_a = in[a·ins:] (a < 6) it sets
// v[ξ·vs + t] = (Bᵀ·d·B)[ξ] over columns 4t…4t+5, ξ = 6η + ν.
func winoInput4Row(v []float32, vs int, in []float32, ins, tiles int) {
	for t := range tiles {
		var bd [6][6]float32 // Bᵀ·d: rows η, the tile's six columns
		for j := range 6 {
			x := 4*t + j
			col := bVec6(in[x], in[ins+x], in[2*ins+x], in[3*ins+x], in[4*ins+x], in[5*ins+x])
			for eta := range 6 {
				bd[eta][j] = col[eta]
			}
		}
		for eta, q := range bd {
			for nu, x := range bVec6(q[0], q[1], q[2], q[3], q[4], q[5]) {
				v[(6*eta+nu)*vs+t] = x
			}
		}
	}
}

// aVec4 is Aᵀ·(m0 … m5).
func aVec4(m0, m1, m2, m3, m4, m5 float32) [4]float32 {
	a, b, c, e := m1+m2, m1-m2, m3+m4, m3-m4
	return [4]float32{m0 + a + c, b + 2*e, a + 4*c, b + 8*e + m5}
}

// winoOutput4 is winoOutput for F(4×4, 3×3): the output tiles Aᵀ·M·A
// (+ bias) of the tile rows [r0, r1), leaving out rows and columns past OH
// and OW. scratch holds 16 + OW floats.
func winoOutput4(ys, m, bs, scratch []float32, p tensor.ConvParams, g winoGeom, r0, r1, f0, f1 int, simd bool) {
	tail, past := scratch[:16], scratch[16:16+p.OW]
	for f := f0; f < f1; f++ {
		var bias float32
		if bs != nil {
			bias = bs[f]
		}
		n, ty := r0/g.th, r0%g.th // image and tile row of r, stepped along without a division a row
		for r := r0; r < r1; r, ty = r+1, ty+1 {
			if ty == g.th {
				n, ty = n+1, 0
			}
			yf := ys[n*g.yImg+f*g.yCh:][:p.OH*p.OW]
			var out [4][]float32
			for i := range out {
				out[i] = past // past OH: computed, not kept
				if oy := 4*ty + i; oy < p.OH {
					out[i] = yf[oy*p.OW : (oy+1)*p.OW]
				}
			}
			mt := m[f*g.ld+(r-r0)*g.tw:]
			if simd {
				asm.WinoOutput4AVX2(&out[0][0], &out[1][0], &out[2][0], &out[3][0], &mt[0], g.fs, p.OW, bias)
				continue
			}
			// Whole tiles, then the part of a tile left at the right edge.
			whole := p.OW / 4
			winoOutput4Row(out, mt, g.fs, whole, bias)
			if done := 4 * whole; done < p.OW {
				rows := [4][]float32{tail[:4], tail[4:8], tail[8:12], tail[12:16]}
				winoOutput4Row(rows, mt[whole:], g.fs, 1, bias)
				for i := range out {
					copy(out[i][done:], rows[i][:p.OW-done])
				}
			}
		}
	}
}

// winoOutput4Row is the plain-Go WinoOutput4AVX2 for any number of tiles:
// with M[η][ν] = m[(6η + ν)·ms + t] it sets out[i][4t + j] = Y[i][j],
// Y = Aᵀ·M·A + bias.
func winoOutput4Row(out [4][]float32, m []float32, ms, tiles int, bias float32) {
	for t := range tiles {
		var s [4][6]float32 // Aᵀ·M: rows i, the tile's six columns
		for nu := range 6 {
			col := aVec4(m[nu*ms+t], m[(6+nu)*ms+t], m[(12+nu)*ms+t], m[(18+nu)*ms+t], m[(24+nu)*ms+t], m[(30+nu)*ms+t])
			for i := range 4 {
				s[i][nu] = col[i]
			}
		}
		for i, q := range s {
			for j, y := range aVec4(q[0], q[1], q[2], q[3], q[4], q[5]) {
				out[i][4*t+j] = y + bias
			}
		}
	}
}

// dyVec6 is A·(e0 … e3), A = Aᵀ transposed: the six rows [1 0 0 0],
// [1 1 1 1], [1 -1 1 -1], [1 2 4 8], [1 -2 4 -8], [0 0 0 1] (the products by
// 2, 4 and 8 are exact, so fused or not they round alike).
func dyVec6(e0, e1, e2, e3 float32) [6]float32 {
	s, t := e0+e2, e1+e3
	u, v := e0+4*e2, 2*e1+8*e3
	return [6]float32{e0, s + t, s - t, u + v, u - v, e3}
}

// winoDy4Row is the plain-Go WinoDy4AVX2 for any number of tiles: with
// the rows of dy in[i] (i < 4) it sets y[ξ·ys + t] = (A·dy·Aᵀ)[η][ν] over
// in[i][4t … 4t+3], ξ = 6η + ν: A along y first, then along x.
func winoDy4Row(y []float32, ys int, in [4][]float32, tiles int) {
	for t := range tiles {
		var ad [6][4]float32 // A·dy: rows η, the tile's four columns
		for j := range 4 {
			x := 4*t + j
			for eta, v := range dyVec6(in[0][x], in[1][x], in[2][x], in[3][x]) {
				ad[eta][j] = v
			}
		}
		for eta, q := range ad {
			for nu, v := range dyVec6(q[0], q[1], q[2], q[3]) {
				y[(6*eta+nu)*ys+t] = v
			}
		}
	}
}

// gTVec3 is Gᵀ·(m0 … m5), Gᵀ = [¼ -⅙ -⅙ 1/24 1/24 0; 0 -⅙ ⅙ 1/12 -1/12 0;
// 0 -⅙ -⅙ ⅙ ⅙ 1], each product rounded before it is added (the order
// WinoWeightGrad4AVX2 keeps).
func gTVec3(m0, m1, m2, m3, m4, m5 float32) [3]float32 {
	const sixth, twelfth, twentyFourth = 1.0 / 6, 1.0 / 12, 1.0 / 24
	a, b, c, e := m1+m2, m1-m2, m3+m4, m3-m4
	sa := float32(sixth * a)
	return [3]float32{
		float32(float32(0.25*m0)-sa) + float32(twentyFourth*c),
		float32(twelfth*e) - float32(sixth*b),
		float32(float32(sixth*c)-sa) + m5,
	}
}

// winoWeightGrad4 sets dw = Gᵀ·m·G (6×6 → 3×3): Gᵀ along y column by
// column, then along x row by row.
func winoWeightGrad4(dw []float32, m *[36]float32) {
	var q [3][6]float32 // Gᵀ·m
	for nu := range 6 {
		for ky, v := range gTVec3(m[nu], m[6+nu], m[12+nu], m[18+nu], m[24+nu], m[30+nu]) {
			q[ky][nu] = v
		}
	}
	for ky, r := range q {
		out := gTVec3(r[0], r[1], r[2], r[3], r[4], r[5])
		copy(dw[3*ky:3*ky+3], out[:])
	}
}
