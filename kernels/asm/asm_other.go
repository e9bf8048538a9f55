//go:build !amd64 || noasm

package asm

import (
	"math"
	"unsafe"
)

// Available reports whether the assembly kernels are built in.
const Available = false

func kernelGo(mr, nr, kc int, a, b, c *float32, ldc int, store bool) {
	as := unsafe.Slice(a, kc*mr)
	bs := unsafe.Slice(b, kc*nr)
	cs := unsafe.Slice(c, (mr-1)*ldc+nr)
	if store {
		for i := range mr {
			clear(cs[i*ldc : i*ldc+nr])
		}
	}
	for p := range kc {
		for i := range mr {
			ai := as[p*mr+i]
			for j := range nr {
				cs[i*ldc+j] += ai * bs[p*nr+j]
			}
		}
	}
}

// kernelRowsGo is kernelGo with row p of B at b + off[p].
func kernelRowsGo(mr, nr, kc int, a, b *float32, off *int, c *float32, ldc int, store bool) {
	offs := unsafe.Slice(off, kc)
	end := 0
	for _, o := range offs {
		end = max(end, o+nr)
	}
	bs := make([]float32, max(1, kc*nr)) // packed copy, then the packed kernel
	src := unsafe.Slice(b, end)
	for p, o := range offs {
		copy(bs[p*nr:(p+1)*nr], src[o:o+nr])
	}
	kernelGo(mr, nr, kc, a, &bs[0], c, ldc, store)
}

// SgemmRowsKernelAVX2 is the plain-Go stand-in of the unpacked-B kernel.
func SgemmRowsKernelAVX2(kc int, a, b *float32, off *int, c *float32, ldc int) {
	kernelRowsGo(AVX2MR, AVX2NR, kc, a, b, off, c, ldc, false)
}

// SgemmRowsKernelAVX2Store is the plain-Go stand-in of the unpacked-B store kernel.
func SgemmRowsKernelAVX2Store(kc int, a, b *float32, off *int, c *float32, ldc int) {
	kernelRowsGo(AVX2MR, AVX2NR, kc, a, b, off, c, ldc, true)
}

// kernelRowsAGo is kernelGo with row i of A at a + off[i].
func kernelRowsAGo(mr, nr, kc int, a *float32, off *int, b, c *float32, ldc int, store bool) {
	offs := unsafe.Slice(off, mr)
	end := 0
	for _, o := range offs {
		end = max(end, o+kc)
	}
	as := make([]float32, max(1, kc*mr)) // packed copy, then the packed kernel
	src := unsafe.Slice(a, end)
	for i, o := range offs {
		for p := range kc {
			as[p*mr+i] = src[o+p]
		}
	}
	kernelGo(mr, nr, kc, &as[0], b, c, ldc, store)
}

// SgemmRowsAKernelAVX2 is the plain-Go stand-in of the unpacked-A kernel.
func SgemmRowsAKernelAVX2(kc int, a *float32, off *int, b, c *float32, ldc int) {
	kernelRowsAGo(AVX2MR, AVX2NR, kc, a, off, b, c, ldc, false)
}

// SgemmRowsAKernelAVX2Store is the plain-Go stand-in of the unpacked-A store kernel.
func SgemmRowsAKernelAVX2Store(kc int, a *float32, off *int, b, c *float32, ldc int) {
	kernelRowsAGo(AVX2MR, AVX2NR, kc, a, off, b, c, ldc, true)
}

// PackA6AVX2 is the plain-Go stand-in of the six-row packing kernel.
func PackA6AVX2(dst, a *float32, lda, blocks int, alpha float32) {
	if blocks <= 0 {
		return
	}
	d := unsafe.Slice(dst, 48*blocks)
	src := unsafe.Slice(a, 5*lda+8*blocks)
	for p := range 8 * blocks {
		for r := range 6 {
			d[6*p+r] = alpha * src[r*lda+p]
		}
	}
}

// MaxAVX2 is the plain-Go stand-in of the vector maximum.
func MaxAVX2(x []float32) float32 {
	m := float32(math.Inf(-1))
	for _, v := range x[:len(x)/8*8] {
		m = max(m, v)
	}
	return m
}

// ExpShiftSumAVX2 is the plain-Go stand-in of the softmax exp pass.
func ExpShiftSumAVX2(y, x []float32, m float32) float32 {
	var s float32
	for i := range len(x) / 8 * 8 {
		y[i] = float32(math.Exp(float64(x[i] - m)))
		s += y[i]
	}
	return s
}

// ScaleAVX2 is the plain-Go stand-in of the vector scaling.
func ScaleAVX2(y []float32, s float32) {
	for i := range len(y) / 8 * 8 {
		y[i] *= s
	}
}

// AffineAVX2 is the plain-Go stand-in of the vector a·x + b.
func AffineAVX2(dst, src []float32, a, b float32) {
	for i := range len(src) / 8 * 8 {
		dst[i] = src[i]*a + b
	}
}

func binaryGo(y, a []float32, b func(i int) float32, f func(x, y float32) float32) {
	for i := range len(y) / 8 * 8 {
		y[i] = f(a[i], b(i))
	}
}

// AddAVX2 and the other binary kernels below are plain-Go stand-ins.
func AddAVX2(y, a, b []float32) {
	binaryGo(y, a, func(i int) float32 { return b[i] }, func(x, y float32) float32 { return x + y })
}
func SubAVX2(y, a, b []float32) {
	binaryGo(y, a, func(i int) float32 { return b[i] }, func(x, y float32) float32 { return x - y })
}
func MulAVX2(y, a, b []float32) {
	binaryGo(y, a, func(i int) float32 { return b[i] }, func(x, y float32) float32 { return x * y })
}
func DivAVX2(y, a, b []float32) {
	binaryGo(y, a, func(i int) float32 { return b[i] }, func(x, y float32) float32 { return x / y })
}
func AddScalarAVX2(y, a []float32, b float32) {
	binaryGo(y, a, func(int) float32 { return b }, func(x, y float32) float32 { return x + y })
}
func SubScalarAVX2(y, a []float32, b float32) {
	binaryGo(y, a, func(int) float32 { return b }, func(x, y float32) float32 { return x - y })
}
func MulScalarAVX2(y, a []float32, b float32) {
	binaryGo(y, a, func(int) float32 { return b }, func(x, y float32) float32 { return x * y })
}
func DivScalarAVX2(y, a []float32, b float32) {
	binaryGo(y, a, func(int) float32 { return b }, func(x, y float32) float32 { return x / y })
}

// NormGradAVX2 is the plain-Go stand-in of the normalization gradient row.
func NormGradAVX2(dx, dy, x []float32, k *[4]float32) {
	for i := range len(dx) / 8 * 8 {
		dx[i] = k[0]*dy[i] + k[1]*(x[i]-k[3]) + k[2]
	}
}

// SgemmKernelAVX512 is the plain-Go stand-in of the AVX-512 kernel.
func SgemmKernelAVX512(kc int, a, b, c *float32, ldc int) {
	kernelGo(AVX512MR, AVX512NR, kc, a, b, c, ldc, false)
}

// SgemmKernelAVX512Store is the plain-Go stand-in of the AVX-512 store kernel.
func SgemmKernelAVX512Store(kc int, a, b, c *float32, ldc int) {
	kernelGo(AVX512MR, AVX512NR, kc, a, b, c, ldc, true)
}

// SgemmKernelAVX2 is the plain-Go stand-in of the AVX2 kernel.
func SgemmKernelAVX2(kc int, a, b, c *float32, ldc int) {
	kernelGo(AVX2MR, AVX2NR, kc, a, b, c, ldc, false)
}

// SgemmKernelAVX2Store is the plain-Go stand-in of the AVX2 store kernel.
func SgemmKernelAVX2Store(kc int, a, b, c *float32, ldc int) {
	kernelGo(AVX2MR, AVX2NR, kc, a, b, c, ldc, true)
}

// ExpAVX2 is the plain-Go stand-in: dst[i] = e^src[i] for the first
// len(src)/8·8 elements, saturating like the assembly.
func ExpAVX2(dst, src []float32) {
	for i := range len(src) / 8 * 8 {
		x := min(max(src[i], -103.97208), 88.72283)
		if src[i] != src[i] {
			x = src[i]
		}
		dst[i] = float32(math.Exp(float64(x)))
	}
}

// AdamAVX2 is the plain-Go stand-in: one AdamW step on the first
// len(p)/8·8 elements (see the assembly's comment for c).
func AdamAVX2(p, g, m, v []float32, c *[9]float32) {
	for i := range len(p) / 8 * 8 {
		gi := g[i] * c[0]
		p[i] *= c[1]
		m[i] = m[i]*c[2] + gi*c[3]
		v[i] = v[i]*c[4] + c[5]*gi*gi
		p[i] -= c[8] * m[i] / (float32(math.Sqrt(float64(v[i])))/c[6] + c[7])
	}
}

// SiLUAVX2 is the plain-Go stand-in: dst[i] = src[i]·σ(src[i]) for the
// first len(src)/8·8 elements.
func SiLUAVX2(dst, src []float32) {
	e := make([]float32, len(src))
	for i := range e {
		e[i] = -src[i]
	}
	ExpAVX2(e, e)
	for i := range len(src) / 8 * 8 {
		dst[i] = 1 / (1 + e[i]) * src[i]
	}
}

// SiLUGradAVX2 is the plain-Go stand-in: dx[i] = dy[i]·σ·(1 + x[i]·(1 − σ))
// for the first len(x)/8·8 elements.
func SiLUGradAVX2(dx, x, dy []float32) {
	e := make([]float32, len(x))
	for i := range e {
		e[i] = -x[i]
	}
	ExpAVX2(e, e)
	for i := range len(x) / 8 * 8 {
		s := 1 / (1 + e[i])
		dx[i] = dy[i] * s * (1 + x[i]*(1-s))
	}
}

func WinoInputAVX2(v *float32, vs int, in *float32, ins int, blocks int) {
	if blocks <= 0 {
		return
	}
	vv := unsafe.Slice(v, 15*vs+8*blocks)
	d := unsafe.Slice(in, 3*ins+16*blocks+2)
	for t := range 8 * blocks {
		var bd [4][4]float32
		for j := range 4 {
			x := 2*t + j
			bd[0][j] = d[x] - d[2*ins+x]
			bd[1][j] = d[ins+x] + d[2*ins+x]
			bd[2][j] = d[2*ins+x] - d[ins+x]
			bd[3][j] = d[ins+x] - d[3*ins+x]
		}
		for eta, q := range bd {
			vv[(4*eta+0)*vs+t] = q[0] - q[2]
			vv[(4*eta+1)*vs+t] = q[1] + q[2]
			vv[(4*eta+2)*vs+t] = q[2] - q[1]
			vv[(4*eta+3)*vs+t] = q[1] - q[3]
		}
	}
}

func WinoOutputAVX2(top, bot, m *float32, ms int, blocks int, bias float32) {
	if blocks <= 0 {
		return
	}
	tp, bt := unsafe.Slice(top, 16*blocks), unsafe.Slice(bot, 16*blocks)
	mm := unsafe.Slice(m, 15*ms+8*blocks)
	for t := range 8 * blocks {
		var s0, s1 [4]float32
		for nu := range 4 {
			a0, a1, a2, a3 := mm[nu*ms+t], mm[(4+nu)*ms+t], mm[(8+nu)*ms+t], mm[(12+nu)*ms+t]
			s0[nu] = a0 + a1 + a2
			s1[nu] = a1 - a2 - a3
		}
		tp[2*t] = s0[0] + s0[1] + s0[2] + bias
		tp[2*t+1] = s0[1] - s0[2] - s0[3] + bias
		bt[2*t] = s1[0] + s1[1] + s1[2] + bias
		bt[2*t+1] = s1[1] - s1[2] - s1[3] + bias
	}
}

func WinoDyAVX2(y *float32, ys int, top, bot *float32, blocks int) {
	if blocks <= 0 {
		return
	}
	yy := unsafe.Slice(y, 15*ys+8*blocks)
	tp, bt := unsafe.Slice(top, 16*blocks), unsafe.Slice(bot, 16*blocks)
	for t := range 8 * blocks {
		var r [4][2]float32
		for j := range 2 {
			e, o := tp[2*t+j], bt[2*t+j]
			r[0][j], r[1][j], r[2][j], r[3][j] = e, e+o, e-o, o
		}
		for eta, x := range r {
			yy[(4*eta+0)*ys+t] = x[0]
			yy[(4*eta+1)*ys+t] = x[0] + x[1]
			yy[(4*eta+2)*ys+t] = x[0] - x[1]
			yy[(4*eta+3)*ys+t] = x[1]
		}
	}
}

func PackBT8AVX2(dst *float32, nr int, src *float32, ld, blocks int) {
	if blocks <= 0 {
		return
	}
	d := unsafe.Slice(dst, (8*blocks-1)*nr+8)
	s := unsafe.Slice(src, 7*ld+8*blocks)
	for p := range 8 * blocks {
		for j := range 8 {
			d[p*nr+j] = s[j*ld+p]
		}
	}
}

// GELUAVX2 is the plain-Go stand-in: dst[i] = src[i]·Φ(src[i]) for the first
// len(src)/8·8 elements (the exact erf form).
func GELUAVX2(dst, src []float32) {
	for i := range len(src) / 8 * 8 {
		x := float64(src[i])
		dst[i] = float32(0.5 * x * (1 + math.Erf(x/math.Sqrt2)))
	}
}

// HalfToFloatAVX2 is the plain-Go stand-in: dst[i] = float32 of the half
// bits src[i] for the first len(src)/8·8 elements.
func HalfToFloatAVX2(dst []float32, src []uint16) {
	for i := range len(src) / 8 * 8 {
		h := uint32(src[i])
		sign, exp, man := (h>>15)<<31, (h>>10)&0x1f, h&0x3ff
		switch {
		case exp == 0x1f && man == 0:
			dst[i] = math.Float32frombits(sign | 0x7f800000)
		case exp == 0x1f:
			dst[i] = math.Float32frombits(sign | 0x7fc00000 | man<<13)
		case exp == 0:
			dst[i] = float32(math.Ldexp(float64(man), -24))
			if sign != 0 {
				dst[i] = -dst[i]
			}
		default:
			dst[i] = math.Float32frombits(sign | (exp+112)<<23 | man<<13)
		}
	}
}
