package kernels

import (
	"sync"

	"github.com/godiffuse/godiffuse/kernels/asm"
	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// GEMM.
//
// MatMul runs Sgemm once per batch. Sgemm is the plain-Go reference: it packs
// op(B) into a dense row-major K×N panel, then each goroutine takes a block of
// rows of C and walks it in column chunks that keep four rows of B in L1,
// updating one row of C with four rows of B at a time (four multiply-adds per
// load/store of C). The SIMD GEMM in kernels/asm is tested against it.
// ---------------------------------------------------------------------------

// MatMul implements tensor.Device (see tensor.MatMulParams).
func (d *Device) MatMul(c, a, b tensor.Buffer, p tensor.MatMulParams) {
	as, releaseA := d.floats(a) // F16 weights are widened
	defer releaseA()
	bs, releaseB := d.floats(b)
	defer releaseB()
	cs := f32(c)
	lda, ldb := p.K, p.N
	if p.TransA {
		lda = p.M
	}
	if p.TransB {
		ldb = p.K
	}
	if p.Batch == 1 && p.M == 1 && p.TransB && p.Alpha == 1 && p.Beta == 0 && !p.TransA {
		// A vector times a weight matrix stored N×K (a Linear layer at
		// batch 1): N dot products along the weights' rows, read where
		// they are. As a GEMM the vector was one column of a 12×16 tile
		// (1/16 of its multiply-adds used), 4 µs per product of
		// tiny-mnist's; 0.3–0.5 µs so (bench/RESULTS.md, 2026-12-06 evening).
		d.dotRows(cs[:p.N], bs, p.K, as[:p.K], p.N, p.K)
		return
	}
	one := func(i, threads int) {
		d.sgemm(threads, gemm{M: p.M, N: p.N, K: p.K, Alpha: p.Alpha, TransA: p.TransA, A: as[i*p.StrideA:], LdA: lda, B: operandB{b: bs[i*p.StrideB:], ld: ldb, trans: p.TransB}, Beta: p.Beta, C: cs[i*p.StrideC:], LdC: p.N})
	}
	// Many small products: one goroutine per batch range; else parallel GEMMs.
	if p.Batch >= d.nThreads() && p.M*p.N*p.K < minSplitMACs {
		d.parallelFor(p.Batch, 1, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				one(i, 1)
			}
		})
		return
	}
	for i := range p.Batch {
		one(i, d.nThreads())
	}
}

const (
	gemmKC = 256 // rows of B per pass (a K×NC block of B stays in L2)
	gemmNC = 512 // columns of C per chunk (four B rows of it stay in L1)
)

var panelPool = sync.Pool{New: func() any { return new([]float32) }}

// Sgemm computes C = α·op(A)·op(B) + β·C with op(A) M×K and op(B) K×N,
// row-major with leading dimensions lda, ldb, ldc, on up to threads goroutines:
//
//	C[i][j] = α·Σ_p A(i,p)·B(p,j) + β·C[i][j],   A(i,p) = A[i·lda+p] or A[p·lda+i] when transA
func Sgemm(threads int, transA, transB bool, m, n, k int, alpha float32,
	a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	scaleC(c, m, n, ldc, beta) // C = β·C first
	if k == 0 || alpha == 0 {
		return
	}
	// Dense K×N panel of op(B).
	bp, ldp := b, ldb
	var held *[]float32
	if transB || ldb != n {
		held = panelPool.Get().(*[]float32)
		if cap(*held) < k*n {
			*held = make([]float32, k*n)
		}
		bp, ldp = (*held)[:k*n], n
		for p := range k {
			row := bp[p*n : p*n+n]
			if transB {
				for j := range row {
					row[j] = b[j*ldb+p]
				}
			} else {
				copy(row, b[p*ldb:p*ldb+n])
			}
		}
		defer panelPool.Put(held)
	}
	aAt := func(i, p int) float32 {
		if transA {
			return alpha * a[p*lda+i]
		}
		return alpha * a[i*lda+p]
	}
	work := func(lo, hi int) {
		for j0 := 0; j0 < n; j0 += gemmNC {
			j1 := min(j0+gemmNC, n)
			for p0 := 0; p0 < k; p0 += gemmKC {
				p1 := min(p0+gemmKC, k)
				for i := lo; i < hi; i++ {
					crow := c[i*ldc+j0 : i*ldc+j1]
					p := p0
					for ; p+4 <= p1; p += 4 {
						a0, a1, a2, a3 := aAt(i, p), aAt(i, p+1), aAt(i, p+2), aAt(i, p+3)
						b0 := bp[p*ldp+j0 : p*ldp+j1]
						b1 := bp[(p+1)*ldp+j0 : (p+1)*ldp+j1]
						b2 := bp[(p+2)*ldp+j0 : (p+2)*ldp+j1]
						b3 := bp[(p+3)*ldp+j0 : (p+3)*ldp+j1]
						b0, b1, b2, b3 = b0[:len(crow)], b1[:len(crow)], b2[:len(crow)], b3[:len(crow)]
						for j := range crow {
							crow[j] += a0*b0[j] + a1*b1[j] + a2*b2[j] + a3*b3[j]
						}
					}
					for ; p < p1; p++ {
						a0 := aAt(i, p)
						b0 := bp[p*ldp+j0 : p*ldp+j1][:len(crow)]
						for j := range crow {
							crow[j] += a0 * b0[j]
						}
					}
				}
			}
		}
	}
	parts := min(threads, m)
	if threads <= 1 || m*n*k < 1<<15 || parts <= 1 {
		work(0, m)
		return
	}
	runParts(parts, func(t int) { work(t*m/parts, (t+1)*m/parts) })
}

// SgemmNaive is the definition with no tricks: C = α·A·B + β·C, row-major,
// no transposes, one dot product per element of C. It is the first rung of
// the benchmark ladder (bench: BenchmarkSgemmLadder).
func SgemmNaive(m, n, k int, alpha float32, a, b []float32, beta float32, c []float32) {
	for i := range m {
		for j := range n {
			var s float32
			for p := range k {
				s += a[i*k+p] * b[p*n+j]
			}
			c[i*n+j] = alpha*s + beta*c[i*n+j]
		}
	}
}

// dotRows sets y[i] = Σ_p w[i·ldw + p]·x[p] for i < n, p < k: a vector
// times a matrix stored row by row. The assembly takes four rows and the
// whole vectors of each at a time; the rows are split over threads when
// the matrix is large enough (MinParallelMACs).
func (d *Device) dotRows(y, w []float32, ldw int, x []float32, n, k int) {
	if n == 0 {
		return
	}
	if k > 0 {
		_, _ = w[(n-1)*ldw+k-1], x[k-1] // the assembly reads these unchecked
	}
	groups := n / 4
	if d.oneThread(n*k) || groups < 2 {
		d.dotRowRange(y, w, ldw, x, k, 0, n)
		return
	}
	d.dotRowParts(y, w, ldw, x, n, k, groups)
}

// dotRowParts is dotRows split over threads by groups of four rows (the
// last part takes the rows past them), a function of its own so that the
// one-thread calls make no closure.
func (d *Device) dotRowParts(y, w []float32, ldw int, x []float32, n, k, groups int) {
	d.parallelFor(groups, 1, func(lo, hi int) {
		end := 4 * hi
		if hi == groups {
			end = n
		}
		d.dotRowRange(y, w, ldw, x, k, 4*lo, end)
	})
}

// dotRowRange is dotRows for the rows [lo, hi) on the calling goroutine.
func (d *Device) dotRowRange(y, w []float32, ldw int, x []float32, k, lo, hi int) {
	i, vec := lo, 0
	if d.simd() {
		lanes := 8
		if d.wide() {
			lanes = 16
		}
		vec = k / lanes * lanes
		if groups := (hi - lo) / 4; groups > 0 && vec > 0 {
			if lanes == 16 {
				asm.DotRows4AVX512(groups, &w[lo*ldw], ldw, &x[0], vec, &y[lo])
			} else {
				asm.DotRows4AVX2(groups, &w[lo*ldw], ldw, &x[0], vec, &y[lo])
			}
			for ; i < lo+4*groups; i++ { // the rest of each row
				y[i] += dot(w[i*ldw+vec:i*ldw+k], x[vec:k])
			}
		}
	}
	for ; i < hi; i++ {
		y[i] = dot(w[i*ldw:i*ldw+k], x[:k])
	}
}

// dot is Σ a[p]·b[p] in order, the plain-Go reference of DotRows4.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s float32
	for p, v := range a {
		s += v * b[p]
	}
	return s
}
