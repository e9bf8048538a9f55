package kernels

import (
	"math"
	"slices"

	"github.com/godiffuse/godiffuse/kernels/asm"
	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// Elementwise ops, reductions, dropout and the Adam step.
// ---------------------------------------------------------------------------

const elemGrain = 1 << 14 // elements per goroutine below which we stay serial

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// unaryF is the scalar definition of each unary op.
func unaryF(op tensor.UnaryOp, x float64, p tensor.UnaryParams) float64 {
	switch op {
	case tensor.OpNeg:
		return -x
	case tensor.OpExp:
		return math.Exp(x)
	case tensor.OpLog:
		return math.Log(x)
	case tensor.OpSqrt:
		return math.Sqrt(x)
	case tensor.OpSquare:
		return x * x
	case tensor.OpSiLU:
		return x * sigmoid(x)
	case tensor.OpGELU:
		return 0.5 * x * (1 + math.Erf(x/math.Sqrt2))
	case tensor.OpReLU:
		return max(x, 0)
	case tensor.OpSigmoid:
		return sigmoid(x)
	case tensor.OpTanh:
		return math.Tanh(x)
	case tensor.OpAffine:
		return float64(p.Alpha)*x + float64(p.Beta)
	case tensor.OpClamp:
		return min(max(x, float64(p.Alpha)), float64(p.Beta))
	}
	panic("kernels: unknown unary op")
}

// unaryGrad is the derivative op'(x) of each unary op.
func unaryGrad(op tensor.UnaryOp, x float64, p tensor.UnaryParams) float64 {
	switch op {
	case tensor.OpNeg:
		return -1
	case tensor.OpExp:
		return math.Exp(x)
	case tensor.OpLog:
		return 1 / x
	case tensor.OpSqrt:
		return 0.5 / math.Sqrt(x)
	case tensor.OpSquare:
		return 2 * x
	case tensor.OpSiLU: // σ(x)·(1 + x·(1-σ(x)))
		s := sigmoid(x)
		return s * (1 + x*(1-s))
	case tensor.OpGELU: // Φ(x) + x·φ(x)
		return 0.5*(1+math.Erf(x/math.Sqrt2)) + x*math.Exp(-0.5*x*x)/math.Sqrt(2*math.Pi)
	case tensor.OpReLU:
		if x > 0 {
			return 1
		}
		return 0
	case tensor.OpSigmoid:
		s := sigmoid(x)
		return s * (1 - s)
	case tensor.OpTanh:
		t := math.Tanh(x)
		return 1 - t*t
	case tensor.OpAffine:
		return float64(p.Alpha)
	case tensor.OpClamp:
		if x < float64(p.Alpha) || x > float64(p.Beta) {
			return 0
		}
		return 1
	}
	panic("kernels: unknown unary op")
}

// Unary computes dst[i] = op(x[i]) for i < n (in float64, rounded once).
func (d *Device) Unary(op tensor.UnaryOp, dst, x tensor.Buffer, n int, p tensor.UnaryParams) {
	y, xs := w32(dst)[:n], f32(x)[:n]
	if d.onePart(n, elemGrain) {
		d.unaryRange(op, y, xs, p)
		return
	}
	d.parallelFor(n, elemGrain, func(lo, hi int) { d.unaryRange(op, y[lo:hi], xs[lo:hi], p) })
}

// unaryRange is Unary on one goroutine: y[i] = op(x[i]).
func (d *Device) unaryRange(op tensor.UnaryOp, y, x []float32, p tensor.UnaryParams) {
	if d.level > Generic && d.unaryFast(op, y, x) {
		return
	}
	if op == tensor.OpAffine && d.level > Generic && d.scaleOrShift(y, x, p) {
		return
	}
	for i := range y {
		y[i] = float32(unaryF(op, float64(x[i]), p))
	}
}

// scaleOrShift runs the two common affine maps, α·x + 0 (Scale, e.g. of every
// gradient by the clip factor) and 1·x + β (AddScalar), as a float32
// product and then a float32 sum (Device.affine), which gives the float64
// reference's values for these two: α·x is exact in float64, so one
// rounding of it is float32's product; a sum of two float32 values is exact
// in float64 when their exponents differ by at most 29, and otherwise the
// smaller is far below half an ulp of the larger either way. Only the sign
// of a zero can differ: a product that underflows to zero is −0 + 0 = +0
// here, where the reference rounds −tiny to −0. Other maps report false
// (the float64 sum would round twice).
func (d *Device) scaleOrShift(y, x []float32, p tensor.UnaryParams) bool {
	if p.Beta != 0 && p.Alpha != 1 {
		return false
	}
	d.affine(y, x, p.Alpha, p.Beta)
	return true
}

// UnaryBackward computes dx[i] = dy[i]·op'(x[i]) for i < n.
func (d *Device) UnaryBackward(op tensor.UnaryOp, dx, x, dy tensor.Buffer, n int, p tensor.UnaryParams) {
	g, xs, gy := f32(dx)[:n], f32(x)[:n], f32(dy)[:n]
	d.parallelFor(n, elemGrain, func(lo, hi int) {
		if d.level > Generic && d.unaryGradFast(op, g[lo:hi], xs[lo:hi], gy[lo:hi]) {
			return
		}
		for i := lo; i < hi; i++ {
			g[i] = float32(float64(gy[i]) * unaryGrad(op, float64(xs[i]), p))
		}
	})
}

// Binary computes dst[i] = a[i] op b[i] over shape; dst is dense and a, b are
// strided views (stride 0 broadcasts).
func (d *Device) Binary(op tensor.BinaryOp, dst tensor.Buffer, a, b tensor.Strided, shape []int) {
	j := binaryRows{op: op, simd: d.simd(), y: w32(dst), a: f32(a.Buf), b: f32(b.Buf)}
	r := len(shape)
	if r == 0 {
		j.row(rowOffsets{0, a.Off, b.Off}, 1)
		return
	}
	j.sa, j.sb = a.Strides[r-1], b.Strides[r-1]
	dense := make([]int, r)
	s := 1
	for i := r - 1; i >= 0; i-- {
		dense[i] = s
		s *= shape[i]
	}
	// Parallelize over the first axis when there is enough work.
	if shape[0] > 1 && s >= 2*elemGrain {
		d.binaryParts(j, shape, dense, a, b)
		return
	}
	forEachRow(shape, [][]int{dense, a.Strides, b.Strides}, rowOffsets{0, a.Off, b.Off}, j.row)
}

// binaryParts is Binary's split of the first axis over the threads, a
// function of its own so that the one-thread calls (most of a batch-1
// forward's) make no closure that outlives them.
func (d *Device) binaryParts(j binaryRows, shape, dense []int, a, b tensor.Strided) {
	ds := slices.Clone(dense)
	d.parallelFor(shape[0], 1, func(lo, hi int) {
		sub := append([]int{hi - lo}, shape[1:]...)
		forEachRow(sub, [][]int{ds, a.Strides, b.Strides},
			rowOffsets{lo * ds[0], a.Off + lo*a.Strides[0], b.Off + lo*b.Strides[0]}, j.row)
	})
}

// binaryRows computes the rows of one Binary: y = op(a, b) along the last
// axis, with the last-axis strides sa and sb of a and b.
type binaryRows struct {
	op      tensor.BinaryOp
	simd    bool
	y, a, b []float32
	sa, sb  int
}

// row computes the n values of the row starting at offsets (y, a, b).
func (j *binaryRows) row(offs rowOffsets, n int) {
	yo, ao, bo := offs[0], offs[1], offs[2]
	yy := j.y[yo : yo+n]
	switch {
	case j.sa == 1 && j.sb == 1:
		binaryRow(j.simd, j.op, yy, j.a[ao:ao+n], j.b[bo:bo+n])
	case j.sa == 1 && j.sb == 0:
		binaryRowScalar(j.simd, j.op, yy, j.a[ao:ao+n], j.b[bo])
	default:
		for i := range yy {
			yy[i] = binaryF(j.op, j.a[ao+i*j.sa], j.b[bo+i*j.sb])
		}
	}
}

func binaryF(op tensor.BinaryOp, a, b float32) float32 {
	switch op {
	case tensor.OpAdd:
		return a + b
	case tensor.OpSub:
		return a - b
	case tensor.OpMul:
		return a * b
	case tensor.OpDiv:
		return a / b
	}
	panic("kernels: unknown binary op")
}

func binaryRow(simd bool, op tensor.BinaryOp, y, a, b []float32) {
	a, b = a[:len(y)], b[:len(y)]
	if simd { // the same single IEEE operation per element, eight lanes at a time
		switch op {
		case tensor.OpAdd:
			asm.AddAVX2(y, a, b)
		case tensor.OpSub:
			asm.SubAVX2(y, a, b)
		case tensor.OpMul:
			asm.MulAVX2(y, a, b)
		case tensor.OpDiv:
			asm.DivAVX2(y, a, b)
		}
		k := len(y) / 8 * 8
		y, a, b = y[k:], a[k:], b[k:]
	}
	switch op {
	case tensor.OpAdd:
		for i := range y {
			y[i] = a[i] + b[i]
		}
	case tensor.OpSub:
		for i := range y {
			y[i] = a[i] - b[i]
		}
	case tensor.OpMul:
		for i := range y {
			y[i] = a[i] * b[i]
		}
	case tensor.OpDiv:
		for i := range y {
			y[i] = a[i] / b[i]
		}
	}
}

// binaryRowScalar is binaryRow with b broadcast along the row.
func binaryRowScalar(simd bool, op tensor.BinaryOp, y, a []float32, b float32) {
	a = a[:len(y)]
	if simd {
		switch op {
		case tensor.OpAdd:
			asm.AddScalarAVX2(y, a, b)
		case tensor.OpSub:
			asm.SubScalarAVX2(y, a, b)
		case tensor.OpMul:
			asm.MulScalarAVX2(y, a, b)
		case tensor.OpDiv:
			asm.DivScalarAVX2(y, a, b)
		}
		k := len(y) / 8 * 8
		y, a = y[k:], a[k:]
	}
	switch op {
	case tensor.OpAdd:
		for i := range y {
			y[i] = a[i] + b
		}
	case tensor.OpSub:
		for i := range y {
			y[i] = a[i] - b
		}
	case tensor.OpMul:
		for i := range y {
			y[i] = a[i] * b
		}
	case tensor.OpDiv:
		for i := range y {
			y[i] = a[i] / b
		}
	}
}

// Reduce reduces a dense (Outer, N, Inner) array along N (float64 accumulation):
//
//	dst[o, i] = Σ_n x[o, n, i]         (sum)
//	dst[o, i] = Σ_n x[o, n, i] / N     (mean)
//	dst[o, i] = Σ_n x[o, n, i]²        (sum of squares)
func (d *Device) Reduce(op tensor.ReduceOp, dst, x tensor.Buffer, p tensor.ReduceParams) {
	y, xs := f32(dst), f32(x)
	square := op == tensor.ReduceSumSquares
	finish := func(s float64) float32 {
		if op == tensor.ReduceMean && p.N > 0 {
			s /= float64(p.N)
		}
		return float32(s)
	}
	if p.Inner == 1 { // rows: one sum per row
		d.parallelFor(p.Outer, max(1, elemGrain/max(p.N, 1)), func(lo, hi int) {
			for o := lo; o < hi; o++ {
				var s float64
				for _, v := range xs[o*p.N : (o+1)*p.N] {
					if square {
						s += float64(v) * float64(v)
					} else {
						s += float64(v)
					}
				}
				y[o] = finish(s)
			}
		})
		return
	}
	// Columns: each sum adds its N values in order as above, but a span of
	// up to reduceSpan neighbouring sums advances together, row by row, so
	// the reads are contiguous instead of one stride of Inner per value.
	const reduceSpan = 256
	spans := (p.Inner + reduceSpan - 1) / reduceSpan
	d.parallelFor(p.Outer*spans, max(1, elemGrain/max(p.N*min(p.Inner, reduceSpan), 1)), func(lo, hi int) {
		var acc [reduceSpan]float64
		for item := lo; item < hi; item++ {
			o, i0 := item/spans, item%spans*reduceSpan
			w := min(reduceSpan, p.Inner-i0)
			sums := acc[:w]
			clear(sums)
			for n := range p.N {
				base := (o*p.N+n)*p.Inner + i0
				for i, v := range xs[base : base+w] {
					if square {
						sums[i] += float64(v) * float64(v)
					} else {
						sums[i] += float64(v)
					}
				}
			}
			for i, s := range sums {
				y[o*p.Inner+i0+i] = finish(s)
			}
		}
	})
}

// dropoutKeep reports whether element i survives: a splitmix64 hash of
// (seed, i) mapped to [0, 1) is compared with p. The same on every device.
func dropoutKeep(seed uint64, i int, p float32) bool {
	z := seed + uint64(i+1)*0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	z ^= z >> 31
	u := float32(z>>40) / (1 << 24) // 24 random bits → [0, 1)
	return u >= p
}

// Dropout computes dst[i] = keep(seed, i) ? x[i]/(1-p) : 0.
func (d *Device) Dropout(dst, x tensor.Buffer, n int, p tensor.DropoutParams) {
	y, xs := f32(dst)[:n], f32(x)[:n]
	scale := 1 / (1 - p.P)
	d.parallelFor(n, elemGrain, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if dropoutKeep(p.Seed, i, p.P) {
				y[i] = xs[i] * scale
			} else {
				y[i] = 0
			}
		}
	})
}

// AdamStep updates param, m and v in place; see tensor.AdamParams for the
// formula. Arithmetic in float32, in the order PyTorch's single-tensor Adam uses.
func (d *Device) AdamStep(param, grad, m, v tensor.Buffer, n int, p tensor.AdamParams) {
	ps, gs, ms, vs := w32(param)[:n], f32(grad)[:n], w32(m)[:n], w32(v)[:n]
	// The AVX2 kernel does the AdamW form (no L2 term) with the same
	// operations in the same order: the same bits as the loop below.
	simd := d.level >= AVX2 && p.L2 == 0
	c := [9]float32{p.GradScale, 1 - p.LR*p.DecoupledWD, p.Beta1, p.OneMinusBeta1, p.Beta2, p.OneMinusBeta2,
		p.Bias2Sqrt, p.Eps, p.StepSize}
	d.parallelFor(n, elemGrain, func(lo, hi int) {
		if simd {
			asm.AdamAVX2(ps[lo:hi], gs[lo:hi], ms[lo:hi], vs[lo:hi], &c)
			lo += (hi - lo) / 8 * 8
		}
		for i := lo; i < hi; i++ {
			g := gs[i] * p.GradScale
			if p.L2 != 0 {
				g += p.L2 * ps[i]
			}
			if p.DecoupledWD != 0 {
				ps[i] *= 1 - p.LR*p.DecoupledWD
			}
			ms[i] = ms[i]*p.Beta1 + g*p.OneMinusBeta1
			vs[i] = vs[i]*p.Beta2 + p.OneMinusBeta2*g*g
			denom := float32(math.Sqrt(float64(vs[i])))/p.Bias2Sqrt + p.Eps
			ps[i] -= p.StepSize * ms[i] / denom
		}
	})
}
