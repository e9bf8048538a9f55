package tensor

import "slices"

// ---------------------------------------------------------------------------
// Elementwise ops with NumPy broadcasting, and reductions.
// ---------------------------------------------------------------------------

// broadcastShapes returns the NumPy broadcast of two shapes.
func broadcastShapes(op string, a, b []int) []int {
	n := max(len(a), len(b))
	out := make([]int, n)
	for i := range n {
		da, db := 1, 1
		if j := i - (n - len(a)); j >= 0 {
			da = a[j]
		}
		if j := i - (n - len(b)); j >= 0 {
			db = b[j]
		}
		switch {
		case da == db, db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			fail(op, "shapes %v and %v do not broadcast", a, b)
		}
	}
	return out
}

// broadcastView returns t's strided view stretched to shape (stride 0 on
// broadcast axes).
func (t *Tensor) broadcastView(shape []int) Strided {
	st := make([]int, len(shape))
	t.broadcastStrides(st, shape)
	return Strided{Buf: t.buf, Off: t.off, Strides: st}
}

// broadcastStrides writes to st (len(shape) values) the strides of t
// stretched to shape: 0 on the axes t broadcasts along.
func (t *Tensor) broadcastStrides(st, shape []int) {
	lead := len(shape) - len(t.shape)
	clear(st[:lead])
	for i := lead; i < len(shape); i++ {
		st[i] = 0
		if t.shape[i-lead] != 1 {
			st[i] = t.strides[i-lead]
		}
	}
}

// broadcastsTo reports whether a tensor of shape from broadcasts to shape
// to (every axis of from is 1 or to's; to has at least from's rank).
func broadcastsTo(from, to []int) bool {
	lead := len(to) - len(from)
	if lead < 0 {
		return false
	}
	for i, n := range from {
		if n != 1 && n != to[lead+i] {
			return false
		}
	}
	return true
}

// binary computes a op b without recording.
func binary(name string, op BinaryOp, a, b *Tensor) *Tensor {
	wantF32(name, a, b)
	sameDevice(name, a, b)
	shape := broadcastShapes(name, a.shape, b.shape)
	out := emptyOut(a.dev, shape...)
	if out.Numel() > 0 {
		binaryView(a.dev, op, out.buf, a, b, shape)
	}
	return out
}

// expand materializes t broadcast to shape (a dense copy through a stride-0 view).
func expand(t *Tensor, shape []int) *Tensor {
	out := Empty(t.dev, F32, shape...)
	if out.Numel() > 0 {
		copyView(t.dev, out.strided(), t.broadcastView(shape), shape)
	}
	return out
}

// sumTo reduces a gradient of a broadcast result back to shape.
func sumTo(g *Tensor, shape []int) *Tensor {
	if slices.Equal(g.shape, shape) {
		return g
	}
	lead := len(g.shape) - len(shape)
	cur := g.Contiguous().Detach()
	for i := len(g.shape) - 1; i >= 0; i-- {
		if i < lead || (shape[i-lead] == 1 && g.shape[i] != 1) {
			cur = reduceAxis(ReduceSum, cur, i)
		}
	}
	return cur.Reshape(shape...)
}

// reduceAxis reduces dense t along axis, keeping it as size 1 (no recording).
func reduceAxis(op ReduceOp, t *Tensor, axis int) *Tensor {
	t = t.Contiguous()
	outer, inner := numel(t.shape[:axis]), numel(t.shape[axis+1:])
	shape := slices.Clone(t.shape)
	shape[axis] = 1
	out := Empty(t.dev, F32, shape...)
	if out.Numel() > 0 {
		t.dev.Reduce(op, out.buf, t.buf, ReduceParams{Outer: outer, N: t.shape[axis], Inner: inner})
	}
	return out
}

// Add returns a + b (broadcasting).
func Add(a, b *Tensor) *Tensor {
	out := binary("add", OpAdd, a, b)
	if anyNeedsGrad(a, b) {
		out.record("add", func(g *Tensor) {
			a.accumulate(sumTo(g, a.shape))
			b.accumulate(sumTo(g, b.shape))
		}, a, b)
	}
	return out
}

// AddInPlace adds b, broadcast to a's shape, into a and returns a, when no
// gradient flows through either and a is a dense float32 tensor: in
// inference a residual sum then reuses the fresh output of the layer before
// it instead of allocating (and clearing) another tensor of its size.
// Otherwise it returns Add(a, b). The caller must own a: nothing else may
// read it afterwards. a + b and b + a are the same float32, so either
// operand order gives Add's bits.
func AddInPlace(a, b *Tensor) *Tensor {
	if anyNeedsGrad(a, b) || a.dtype != F32 || b.dtype != F32 || !a.IsDense() || a.dev != b.dev || !broadcastsTo(b.shape, a.shape) {
		return Add(a, b)
	}
	if a.Numel() > 0 {
		binaryView(a.dev, OpAdd, a.buf, a, b, a.shape)
	}
	return a
}

// Sub returns a - b (broadcasting).
func Sub(a, b *Tensor) *Tensor {
	out := binary("sub", OpSub, a, b)
	if anyNeedsGrad(a, b) {
		out.record("sub", func(g *Tensor) {
			a.accumulate(sumTo(g, a.shape))
			if b.needsGrad() {
				b.accumulate(sumTo(Scale(g, -1), b.shape))
			}
		}, a, b)
	}
	return out
}

// Mul returns a · b (broadcasting).
func Mul(a, b *Tensor) *Tensor {
	out := binary("mul", OpMul, a, b)
	if anyNeedsGrad(a, b) {
		ad, bd := a.Detach(), b.Detach()
		out.record("mul", func(g *Tensor) {
			if a.needsGrad() {
				a.accumulate(sumTo(binary("mul", OpMul, g, bd), a.shape))
			}
			if b.needsGrad() {
				b.accumulate(sumTo(binary("mul", OpMul, g, ad), b.shape))
			}
		}, a, b)
	}
	return out
}

// Div returns a / b (broadcasting).
func Div(a, b *Tensor) *Tensor {
	out := binary("div", OpDiv, a, b)
	if anyNeedsGrad(a, b) {
		ad, bd := a.Detach(), b.Detach()
		out.record("div", func(g *Tensor) {
			if a.needsGrad() {
				a.accumulate(sumTo(binary("div", OpDiv, g, bd), a.shape))
			}
			if b.needsGrad() { // d(a/b)/db = -a/b²
				q := binary("div", OpDiv, binary("mul", OpMul, g, ad), binary("mul", OpMul, bd, bd))
				b.accumulate(sumTo(Scale(q, -1), b.shape))
			}
		}, a, b)
	}
	return out
}

// ---------------------------------------------------------------------------
// Unary ops
// ---------------------------------------------------------------------------

func unary(op UnaryOp, x *Tensor, p UnaryParams) *Tensor {
	wantF32(op.String(), x)
	xc := x.Contiguous()
	out := emptyOut(x.dev, x.shape...)
	if n := out.Numel(); n > 0 {
		x.dev.Unary(op, out.buf, xc.buf, n, p)
	}
	if xc.needsGrad() {
		xd := xc.Detach()
		out.record(op.String(), func(g *Tensor) {
			g = g.Contiguous()
			dx := emptyOut(g.dev, g.shape...) // written whole (TestFastUnaryAgainstReference)
			if n := dx.Numel(); n > 0 {
				g.dev.UnaryBackward(op, dx.buf, xd.buf, g.buf, n, p)
			}
			xc.accumulate(dx)
		}, xc)
	}
	return out
}

// Neg returns -x.
func Neg(x *Tensor) *Tensor { return unary(OpNeg, x, UnaryParams{}) }

// Exp returns eˣ.
func Exp(x *Tensor) *Tensor { return unary(OpExp, x, UnaryParams{}) }

// Log returns ln x.
func Log(x *Tensor) *Tensor { return unary(OpLog, x, UnaryParams{}) }

// Sqrt returns √x.
func Sqrt(x *Tensor) *Tensor { return unary(OpSqrt, x, UnaryParams{}) }

// Square returns x².
func Square(x *Tensor) *Tensor { return unary(OpSquare, x, UnaryParams{}) }

// SiLU returns x·σ(x).
func SiLU(x *Tensor) *Tensor { return unary(OpSiLU, x, UnaryParams{}) }

// GELU returns x·Φ(x) (exact, with erf).
func GELU(x *Tensor) *Tensor { return unary(OpGELU, x, UnaryParams{}) }

// ReLU returns max(x, 0).
func ReLU(x *Tensor) *Tensor { return unary(OpReLU, x, UnaryParams{}) }

// Sigmoid returns 1/(1+e⁻ˣ).
func Sigmoid(x *Tensor) *Tensor { return unary(OpSigmoid, x, UnaryParams{}) }

// Tanh returns tanh x.
func Tanh(x *Tensor) *Tensor { return unary(OpTanh, x, UnaryParams{}) }

// Affine returns α·x + β.
func Affine(x *Tensor, alpha, beta float32) *Tensor {
	return unary(OpAffine, x, UnaryParams{Alpha: alpha, Beta: beta})
}

// Clamp limits x to [lo, hi].
func Clamp(x *Tensor, lo, hi float32) *Tensor {
	return unary(OpClamp, x, UnaryParams{Alpha: lo, Beta: hi})
}

// Scale returns α·x.
func Scale(x *Tensor, alpha float32) *Tensor { return Affine(x, alpha, 0) }

// AddScalar returns x + β.
func AddScalar(x *Tensor, beta float32) *Tensor { return Affine(x, 1, beta) }

// Activation applies the activation named as in diffusers' act_fn
// ("silu"/"swish", "gelu", "relu", "sigmoid", "tanh").
func Activation(name string, x *Tensor) *Tensor {
	return unary(activationOp(name), x, UnaryParams{})
}

// ActivationInPlace is Activation for a tensor that the caller holds alone
// and does not use again, such as the fresh output of a normalization. When
// no gradient flows through x and x is dense, it overwrites x's buffer and
// returns x, which spares inference an allocation (and its zeroing) and a
// pass over memory; otherwise it is Activation.
func ActivationInPlace(name string, x *Tensor) *Tensor {
	op := activationOp(name)
	if x.needsGrad() || x.dtype != F32 || !x.IsDense() {
		return unary(op, x, UnaryParams{})
	}
	if n := x.Numel(); n > 0 {
		x.dev.Unary(op, x.buf, x.buf, n, UnaryParams{})
	}
	return x
}

func activationOp(name string) UnaryOp {
	switch name {
	case "silu", "swish":
		return OpSiLU
	case "gelu":
		return OpGELU
	case "relu":
		return OpReLU
	case "sigmoid":
		return OpSigmoid
	case "tanh":
		return OpTanh
	}
	fail("activation", "unknown activation %q (want silu, swish, gelu, relu, sigmoid or tanh)", name)
	return 0
}

// ---------------------------------------------------------------------------
// Reductions
// ---------------------------------------------------------------------------

// SumAxis sums along axis; keepDim keeps it as a size-1 axis.
func SumAxis(x *Tensor, axis int, keepDim bool) *Tensor {
	return reduce(ReduceSum, x, axis, keepDim)
}

// MeanAxis averages along axis; keepDim keeps it as a size-1 axis.
func MeanAxis(x *Tensor, axis int, keepDim bool) *Tensor {
	return reduce(ReduceMean, x, axis, keepDim)
}

func reduce(op ReduceOp, x *Tensor, axis int, keepDim bool) *Tensor {
	name := "sum"
	if op == ReduceMean {
		name = "mean"
	}
	wantF32(name, x)
	axis = x.axis(name, axis)
	xc := x.Contiguous()
	out := reduceAxis(op, xc.Detach(), axis)
	if xc.needsGrad() {
		n, shape := x.shape[axis], slices.Clone(x.shape)
		out.record(name, func(g *Tensor) {
			if op == ReduceMean {
				g = Scale(g, 1/float32(n))
			}
			xc.accumulate(expand(g, shape))
		}, xc)
	}
	if !keepDim {
		shape := slices.Delete(slices.Clone(x.shape), axis, axis+1)
		out = out.Reshape(shape...)
	}
	return out
}

// Sum returns the sum of all elements as a 0-d tensor.
func Sum(x *Tensor) *Tensor { return SumAxis(x.Reshape(-1), 0, false) }

// Mean returns the mean of all elements as a 0-d tensor.
func Mean(x *Tensor) *Tensor { return MeanAxis(x.Reshape(-1), 0, false) }

// MSELoss returns mean((a - b)²), as torch.nn.functional.mse_loss.
func MSELoss(a, b *Tensor) *Tensor {
	if !slices.Equal(a.shape, b.shape) {
		fail("mse_loss", "shapes %v and %v differ", a.shape, b.shape)
	}
	return Mean(Square(Sub(a, b)))
}

// SumSquares returns Σx² as a 0-d tensor, without recording (for norms).
func SumSquares(x *Tensor) *Tensor {
	xc := x.Contiguous().Reshape(-1).Detach()
	out := Empty(x.dev, F32)
	if xc.Numel() > 0 {
		x.dev.Reduce(ReduceSumSquares, out.buf, xc.buf, ReduceParams{Outer: 1, N: xc.Numel(), Inner: 1})
	}
	return out
}
