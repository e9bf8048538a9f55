package tensor

import "slices"

// ---------------------------------------------------------------------------
// Matrix products: MatMul (batched) and Linear.
// ---------------------------------------------------------------------------

// gemm issues C = op(A)·op(B) into a new (batch, M, N) tensor; a and b are dense.
func gemm(a, b *Tensor, p MatMulParams) *Tensor { return gemmShaped(a, b, p, p.Batch, p.M, p.N) }

// gemmShaped is gemm with the result in shape (Batch·M·N elements).
func gemmShaped(a, b *Tensor, p MatMulParams, shape ...int) *Tensor {
	var c *Tensor
	if p.K > 0 { // the product overwrites C (β = 0)
		c = emptyOut(a.dev, shape...)
	} else { // nothing to sum: C stays the zeros it is allocated as
		c = Empty(a.dev, F32, shape...)
	}
	if p.Batch*p.M*p.N > 0 {
		p.Alpha, p.StrideC = 1, p.M*p.N
		a.dev.MatMul(c.buf, a.buf, b.buf, p)
	}
	return c
}

// MatMul returns a·b. a is (..., M, K); b is (..., K, N) with the same
// leading axes, or (K, N) shared by every batch.
func MatMul(a, b *Tensor) *Tensor {
	wantF32("matmul", a, b)
	sameDevice("matmul", a, b)
	if a.Rank() < 2 || b.Rank() < 2 {
		fail("matmul", "want matrices, have %v and %v", a.shape, b.shape)
	}
	M, K, N := a.Dim(-2), a.Dim(-1), b.Dim(-1)
	if b.Dim(-2) != K {
		fail("matmul", "inner dimensions differ: %v · %v", a.shape, b.shape)
	}
	lead := a.shape[:a.Rank()-2]
	shared := b.Rank() == 2
	if !shared && !slices.Equal(lead, b.shape[:b.Rank()-2]) {
		fail("matmul", "batch axes differ: %v · %v", a.shape, b.shape)
	}
	batch := numel(lead)
	ac, bc := a.Contiguous(), b.Contiguous()
	p := MatMulParams{Batch: batch, M: M, N: N, K: K, StrideA: M * K, StrideB: K * N}
	if shared {
		p.StrideB = 0
	}
	out := gemm(ac, bc, p).Reshape(append(slices.Clone(lead), M, N)...)
	if anyNeedsGrad(ac, bc) {
		ad, bd := ac.Detach(), bc.Detach()
		out.record("matmul", func(g *Tensor) {
			g = g.Contiguous()
			if ac.needsGrad() { // dA = g·Bᵀ
				q := p
				q.K, q.N, q.TransB, q.StrideA = N, K, true, M*N
				ac.accumulate(gemm(g, bd, q).Reshape(ac.shape...))
			}
			if bc.needsGrad() { // dB = Aᵀ·g, summed over batches when B is shared
				q := MatMulParams{Batch: batch, M: K, N: N, K: M, TransA: true, StrideA: M * K, StrideB: M * N}
				if shared {
					q = MatMulParams{Batch: 1, M: K, N: N, K: batch * M, TransA: true}
				}
				bc.accumulate(gemm(ad, g, q).Reshape(bc.shape...))
			}
		}, ac, bc)
	}
	return out
}

// Linear returns x·wᵀ + b as torch.nn.functional.linear: x is (..., in),
// w is (out, in) and b is (out) or nil.
func Linear(x, w, b *Tensor) *Tensor {
	wantF32("linear", x, b)
	wantWeight("linear", w)
	sameDevice("linear", x, w, b)
	if w.Rank() != 2 || x.Rank() < 1 || x.Dim(-1) != w.Dim(1) {
		fail("linear", "input %v does not fit weight %v (want (..., in) and (out, in))", x.shape, w.shape)
	}
	if b != nil && (b.Rank() != 1 || b.Dim(0) != w.Dim(0)) {
		fail("linear", "bias %v for weight %v (want (out))", b.shape, w.shape)
	}
	in, outF := w.Dim(1), w.Dim(0)
	rows := x.Numel() / max(in, 1)
	xc, wc := x.Contiguous(), w.Contiguous()
	var dims [8]int // x's leading axes and outF: the result's shape, on the stack where it fits
	shape := append(append(dims[:0], x.shape[:x.Rank()-1]...), outF)
	y := gemmShaped(xc, wc, MatMulParams{Batch: 1, M: rows, N: outF, K: in, TransB: true}, shape...)
	if b != nil && y.Numel() > 0 {
		// Into the product's fresh storage: the backward below needs neither value.
		binaryView(y.dev, OpAdd, y.buf, y, b, y.shape)
	}
	if anyNeedsGrad(xc, wc, b) {
		xd, wd := xc.Detach(), wc.Detach()
		y.record("linear", func(g *Tensor) {
			g = g.Contiguous()
			if xc.needsGrad() { // dx = g·w
				xc.accumulate(gemm(g, wd, MatMulParams{Batch: 1, M: rows, N: in, K: outF}).Reshape(xc.shape...))
			}
			if wc.needsGrad() { // dw = gᵀ·x
				wc.accumulate(gemm(g, xd, MatMulParams{Batch: 1, M: outF, N: in, K: rows, TransA: true}).Reshape(wc.shape...))
			}
			if b != nil && b.needsGrad() {
				b.accumulate(reduceAxis(ReduceSum, g.Reshape(rows, outF).Detach(), 0).Reshape(outF))
			}
		}, xc, wc, b)
	}
	return y
}
