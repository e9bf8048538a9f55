package kernels

import (
	"math"

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

// sigmoidf is 1/(1+e^-x) in float32.
func sigmoidf(x float32) float32 { return 1 / (1 + expf(-x)) }

// unaryFast runs the ops that dominate the U-Net (SiLU, sigmoid, exp) on
// float32 with expf; it reports false for the others, which then take the
// reference path.
func unaryFast(op tensor.UnaryOp, y, x []float32) bool {
	switch op {
	case tensor.OpSiLU:
		for i, v := range x {
			y[i] = v * sigmoidf(v)
		}
	case tensor.OpSigmoid:
		for i, v := range x {
			y[i] = sigmoidf(v)
		}
	case tensor.OpExp:
		for i, v := range x {
			y[i] = expf(v)
		}
	default:
		return false
	}
	return true
}

// unaryGradFast is the backward of unaryFast: dx = dy·op'(x).
func unaryGradFast(op tensor.UnaryOp, dx, x, dy []float32) bool {
	switch op {
	case tensor.OpSiLU: // σ(x)·(1 + x·(1-σ(x)))
		for i, v := range x {
			s := sigmoidf(v)
			dx[i] = dy[i] * s * (1 + v*(1-s))
		}
	case tensor.OpSigmoid:
		for i, v := range x {
			s := sigmoidf(v)
			dx[i] = dy[i] * s * (1 - s)
		}
	case tensor.OpExp:
		for i, v := range x {
			dx[i] = dy[i] * expf(v)
		}
	default:
		return false
	}
	return true
}

// softmaxRowFast is softmaxRow with expf and float32 sums.
func softmaxRowFast(y, x []float32) {
	m := float32(math.Inf(-1))
	for _, v := range x {
		m = max(m, v)
	}
	var s float32
	for j, v := range x {
		e := expf(v - m)
		y[j] = e
		s += e
	}
	inv := 1 / s
	for j := range y {
		y[j] *= inv
	}
}
