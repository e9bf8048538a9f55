package kernels

import (
	"math"

	"github.com/godiffuse/godiffuse/kernels/asm"
	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// Fast float32 exp for the activation and softmax fast paths (levels above
// generic). The reference kernels keep math.Exp in float64; fastmath_test.go
// holds this one to 2 ulp of it over the whole float32 range.
//
//	e^x = 2^n · e^r,  n = round(x/ln2),  r = x - n·ln2 (in two parts, Cody–Waite)
//	e^r ≈ 1 + r + r²/2! + … + r⁷/7!  on |r| ≤ ln2/2
// ---------------------------------------------------------------------------

const (
	ln2Hi  = 0.693145751953125     // ln 2 rounded to 16 bits, so n·ln2Hi is exact
	ln2Lo  = 1.428606765330187e-06 // ln 2 - ln2Hi
	log2e  = 1.4426950408889634
	expMax = 88.72283   // e^x overflows float32 above this
	expMin = -103.97208 // and is 0 below this
)

// expf returns e^x for float32 x.
func expf(x float32) float32 {
	switch {
	case x != x:
		return x
	case x > expMax:
		return float32(math.Inf(1))
	case x < expMin:
		return 0
	}
	n := float32(math.Floor(float64(x*log2e) + 0.5))
	r := (x - n*ln2Hi) - n*ln2Lo
	p := float32(1.0 / 5040)
	p = p*r + 1.0/720
	p = p*r + 1.0/120
	p = p*r + 1.0/24
	p = p*r + 1.0/6
	p = p*r + 0.5
	p = p*r + 1
	p = p*r + 1
	// Scale by 2^n in two steps so that subnormal results and n = 128 work.
	n1 := int32(n) / 2
	n2 := int32(n) - n1
	return p * math.Float32frombits(uint32(n1+127)<<23) * math.Float32frombits(uint32(n2+127)<<23)
}

// expVec sets dst[i] = e^src[i] (dst may be src): sixteen lanes at a time
// with asm.ExpAVX512 and eight with asm.ExpAVX2 where the level allows
// (vecSplit), the rest with expf.
func (d *Device) expVec(dst, src []float32) {
	k := d.vecSplit(len(src), func() { asm.ExpAVX512(dst, src) }, func(lo int) { asm.ExpAVX2(dst[lo:], src[lo:]) })
	if d.vecTail(dst[k:len(src)], src[k:], asm.ExpAVX2) {
		return
	}
	for i := k; i < len(src); i++ {
		dst[i] = expf(src[i])
	}
}

// sigmoidVec sets dst[i] = σ(src[i]) = 1/(1+e^-src[i]) (dst may be src).
func (d *Device) sigmoidVec(dst, src []float32) {
	for i, v := range src {
		dst[i] = -v
	}
	d.expVec(dst, dst)
	for i, e := range dst {
		dst[i] = 1 / (1 + e)
	}
}

// unaryFast runs the ops that dominate the U-Nets (SiLU, sigmoid, exp, and
// the GELU of SD's feed-forward layers) with the fast exp; it reports false
// for the others, which then take the reference path.
func (d *Device) unaryFast(op tensor.UnaryOp, y, x []float32) bool {
	switch op {
	case tensor.OpSiLU:
		// fused: one pass instead of the four below
		k := d.vecSplit(len(x), func() { asm.SiLUAVX512(y, x) }, func(lo int) { asm.SiLUAVX2(y[lo:], x[lo:]) })
		y, x := y[k:len(x)], x[k:]
		if d.vecTail(y, x, asm.SiLUAVX2) {
			break
		}
		for i, v := range x { // σ(x)·x, value by value: y may be x
			y[i] = 1 / (1 + expf(-v)) * v
		}
	case tensor.OpSigmoid:
		d.sigmoidVec(y, x)
	case tensor.OpExp:
		d.expVec(y, x)
	case tensor.OpGELU:
		k := d.vecSplit(len(x), func() { asm.GELUAVX512(y, x) }, func(lo int) { asm.GELUAVX2(y[lo:], x[lo:]) })
		y, x := y[k:len(x)], x[k:]
		if d.vecTail(y, x, asm.GELUAVX2) {
			break
		}
		for i := range x { // y may be x
			y[i] = x[i] * normCDF(x[i])
		}
	default:
		return false
	}
	return true
}

// vecTail runs the last (fewer than 8) values of a SIMD pass through the
// 8-lane kernel too, zero-padded, so that every value comes from the same
// arithmetic wherever a range happens to end: a thread's part of a tensor,
// or a row of a normalization with its activation fused. It reports false
// at the generic level (no SIMD: the caller's scalar loop does them all).
func (d *Device) vecTail(y, x []float32, kernel8 func(y, x []float32)) bool {
	if len(x) == 0 {
		return true
	}
	if !d.simd() || len(x) >= 8 {
		return false
	}
	var buf [8]float32
	n := copy(buf[:], x)
	kernel8(buf[:], buf[:])
	copy(y, buf[:n])
	return true
}

// erfcf is erfc(z) in float32 by the Chebyshev-fitted form of Numerical
// Recipes (erfcc, fractional error below 1.2e-7 in exact arithmetic):
//
//	erfc(z) ≈ t·exp(−z² + P(t)),  t = 1/(1 + z/2),  z ≥ 0;   erfc(−z) = 2 − erfc(z)
func erfcf(z float32) float32 {
	a := z
	if a < 0 {
		a = -a
	}
	t := 1 / (1 + 0.5*a)
	p := float32(0.17087277)
	p = p*t - 0.82215223
	p = p*t + 1.48851587
	p = p*t - 1.13520398
	p = p*t + 0.27886807
	p = p*t - 0.18628806
	p = p*t + 0.09678418
	p = p*t + 0.37409196
	p = p*t + 1.00002368
	p = p*t - 1.26551223
	r := t * expf(-a*a+p)
	if z < 0 {
		return 2 - r
	}
	return r
}

// normCDF is Φ(x) = erfc(−x/√2)/2 (no cancellation in the lower tail).
func normCDF(x float32) float32 { return 0.5 * erfcf(-x*(1/math.Sqrt2)) }

// unaryGradFast is the backward of unaryFast: dx = dy·op'(x).
func (d *Device) unaryGradFast(op tensor.UnaryOp, dx, x, dy []float32) bool {
	switch op {
	case tensor.OpSiLU: // σ(x)·(1 + x·(1-σ(x)))
		k := d.vecSplit(len(x), func() { asm.SiLUGradAVX512(dx, x, dy) }, func(lo int) { asm.SiLUGradAVX2(dx[lo:], x[lo:], dy[lo:]) })
		dx, x, dy := dx[k:len(x)], x[k:], dy[k:]
		d.sigmoidVec(dx, x)
		for i, s := range dx {
			dx[i] = dy[i] * s * (1 + x[i]*(1-s))
		}
	case tensor.OpSigmoid:
		d.sigmoidVec(dx, x)
		for i, s := range dx {
			dx[i] = dy[i] * s * (1 - s)
		}
	case tensor.OpExp:
		d.expVec(dx, x)
		for i := range dx {
			dx[i] *= dy[i]
		}
	case tensor.OpGELU: // Φ(x) + x·φ(x)
		const invSqrt2Pi = 0.3989422804014327
		k := d.vecSplit(len(x), func() { asm.GELUGradAVX512(dx, x, dy) }, func(lo int) { asm.GELUGradAVX2(dx[lo:], x[lo:], dy[lo:]) })
		for i := k; i < len(x); i++ {
			v := x[i]
			dx[i] = dy[i] * (normCDF(v) + v*invSqrt2Pi*expf(-0.5*v*v))
		}
	default:
		return false
	}
	return true
}

// softmaxRowFast is softmaxRow in vector passes (above the generic level,
// where the assembly kernels are always there). At AVX-512 one call does
// the whole row, its last len mod 16 values under a mask
// (SoftmaxRowAVX512). At AVX2, three passes of 8 lanes: the maximum,
// e^(x−m) with its float32 sum, and the scaling by 1/sum; the last len mod 8
// values go through the same kernels once more, padded to a whole vector
// with −Inf (e^−Inf adds nothing to the sum): a 196-key row of tiny-mnist's
// attention has a 4-value tail, which cost as much as a quarter of the row
// in scalar expf. The kernels are called directly: through function values
// their arguments would escape, and the tail arrays move to the heap
// (measured 35 % slower).
func (d *Device) softmaxRowFast(y, x []float32) {
	y = y[:len(x)]
	if d.wide() {
		asm.SoftmaxRowAVX512(y, x)
		return
	}
	const lanes = 8
	k := len(x) / lanes * lanes
	var tx, ty [lanes]float32
	r := copy(tx[:], x[k:])
	for i := r; i < lanes; i++ {
		tx[i] = float32(math.Inf(-1))
	}
	m := float32(math.Inf(-1))
	for _, v := range x[k:] {
		m = max(m, v)
	}
	m = max(m, asm.MaxAVX2(x[:k]))
	s := asm.ExpShiftSumAVX2(y[:k], x[:k], m)
	if r > 0 {
		s += asm.ExpShiftSumAVX2(ty[:], tx[:], m)
	}
	inv := 1 / s
	asm.ScaleAVX2(y[:k], inv)
	for i, v := range ty[:r] {
		y[k+i] = v * inv
	}
}

// softmaxColumns sets each of the w columns of the rows×w matrix s (row
// stride w, rows ≥ 1) to e^(s−m), m the column's largest value, and inv[j]
// to 1/Σ of column j: the softmax down the columns, less its scaling
// (attentionColumns applies it to the product). The plain loop is the
// specification; above the generic level the assembly does 16 or 8
// columns a call with the same exp, sums and division.
func (d *Device) softmaxColumns(s []float32, rows, w int, inv []float32) {
	s, inv = s[:rows*w], inv[:w]
	lanes := 0
	switch {
	case d.wide():
		lanes = 16
		for j := 0; j+lanes <= w; j += lanes {
			asm.SoftmaxColumnsAVX512(&s[j], rows, w, &inv[j])
		}
	case d.simd():
		lanes = 8
		for j := 0; j+lanes <= w; j += lanes {
			asm.SoftmaxColumnsAVX2(&s[j], rows, w, &inv[j])
		}
	}
	softmaxColumnsFrom(s, rows, w, w/max(lanes, 1)*lanes, inv)
}

// softmaxColumnsFrom is softmaxColumns' plain loop on columns j0… of s.
func softmaxColumnsFrom(s []float32, rows, w, j0 int, inv []float32) {
	for j := j0; j < w; j++ {
		m := float32(math.Inf(-1))
		for i := range rows {
			m = max(m, s[i*w+j])
		}
		var sum float32
		for i := range rows {
			e := expf(s[i*w+j] - m)
			s[i*w+j] = e
			sum += e
		}
		inv[j] = 1 / sum
	}
}
