package kernels

import (
	"sync"

	"github.com/godiffuse/godiffuse/kernels/asm"
)

// ---------------------------------------------------------------------------
// The packed GEMM (GotoBLAS/BLIS structure) around the SIMD micro-kernels.
//
//	for jc in steps of NC over N:                 a KC×NC block of B fits in L3
//	  for pc in steps of KC over K:               (KC, MC, NC: microKernel.blocking)
//	    pack B[pc:pc+KC, jc:jc+NC] into panels of NR columns, k-major
//	    for ic in steps of MC over M:             an MC×KC block of A fits in L2
//	      pack α·A[ic:ic+MC, pc:pc+KC] into panels of MR rows, k-major
//	      for each NR-wide panel of B (split over goroutines):
//	        for each MR-high panel of A:
//	          micro-kernel: C[MR×NR tile] += A panel · B panel   (registers only)
//
// Packing makes every micro-kernel read contiguous memory and handles the
// transposes and the edges: panels are zero-padded to MR/NR, and a partial
// tile is computed into a scratch tile and only its valid part added to C.
// ---------------------------------------------------------------------------

// microKernel is one register-blocked kernel: C[mr×nr] += a[mr×kc]·b[kc×nr].
// store is the variant that overwrites the tile (C = a·b) instead of adding.
// rowsAdd and rowsStore, where the level has them, read B unpacked: row p
// of the kc×nr block starts at b + off[p]; rowsAAdd and rowsAStore read A
// unpacked: row i of the mr×kc block starts at a + off[i].
type microKernel struct {
	name                 string
	mr, nr               int
	add, store           func(kc int, a, b, c *float32, ldc int)
	storeBias            func(kc int, a, b, c *float32, ldc int, bias *float32)
	rowsAdd, rowsStore   func(kc int, a, b *float32, off *int, c *float32, ldc int)
	rowsStoreBias        func(kc int, a, b *float32, off *int, c *float32, ldc int, bias *float32)
	rowsAAdd, rowsAStore func(kc int, a *float32, off *int, b, c *float32, ldc int)
	// rowsPackAdd and rowsPackStore, where the level has them, are rowsAdd
	// and rowsStore that also write the B panel they read, packed: the first
	// tile of each panel packs it (runTilesPacking).
	rowsPackAdd, rowsPackStore func(kc int, a, b *float32, off *int, c *float32, ldc int, bp *float32)
	// narrow, where the level has one, is the same kernel one vector wide
	// (the same mr, so that prepacked A serves both): products of at most
	// narrow.nr columns take it instead of computing a full tile of which
	// half is thrown away.
	narrow *microKernel
	// edges, where the level has them, are the same kernel computing only
	// the first rows of a panel, fewest first: the last panel of a product
	// whose M is not a multiple of mr (64 channels leave 4 of 12 rows)
	// takes the first that covers it instead of a full tile computed into
	// scratch. height is the rows a kernel computes (mr, or fewer for an edge).
	edges  []microKernel
	height int
	// panelDot, where the level has it, is one column of B times four of
	// its A panels, each sum the chain of multiply-adds a tile computes
	// (prepackedA.column); dotLanes is its output's stride per panel.
	panelDot func(kc int, a0, a1, a2, a3, x *float32, xs int, y *float32)
	dotLanes int
	// plainKC, where set, is the most depth of a block of a product whose A
	// is packed at the call (blocking). The AVX-512 kernel takes up to 1,024
	// (its B panel, 128 KiB, then streams from L2 instead of staying in L1,
	// but C is written once instead of read and written every 256): on Zen
	// 5, 512² to 2,048² on two threads +3–4 %, on one +0.5–1.5 %, training's
	// weight-gradient products of depth 8,192 and more on two +5–12 %; the
	// AVX2 kernel measured no gain (bench/RESULTS.md, 2026-12-06, night).
	plainKC int
	tune    *Tuning // the device's thresholds (Device.microKernel sets them)
}

// forRows returns the kernel for a tile of the first rows rows of a panel:
// the fewest-row edge kernel that covers them, else mk.
func (mk microKernel) forRows(rows int) microKernel {
	for _, e := range mk.edges {
		if rows <= e.height {
			e.tune = mk.tune
			return e
		}
	}
	return mk
}

// rowPanels returns the row panels of mc rows, the rows of the last, and
// the kernel for it (forRows): only the last panel can be partial, so the
// tile loops choose its kernel once (the kernels are large structs, copied
// at each choice).
func (mk *microKernel) rowPanels(mc int) (panels, lastRows int, edge *microKernel) {
	panels = (mc + mk.mr - 1) / mk.mr
	lastRows = mc - (panels-1)*mk.mr
	edge = mk
	if lastRows < mk.mr {
		e := mk.forRows(lastRows)
		edge = &e
	}
	return panels, lastRows, edge
}

// forColumns returns the kernel for a product of n columns: the narrow one
// where n fits it.
func (mk microKernel) forColumns(n int) microKernel {
	if mk.narrow == nil || n > mk.narrow.nr {
		return mk
	}
	nk := *mk.narrow
	nk.tune = mk.tune
	return nk
}

var (
	kernelAVX512 = microKernel{name: "avx512", mr: asm.AVX512MR, nr: asm.AVX512NR,
		add: asm.SgemmKernelAVX512, store: asm.SgemmKernelAVX512Store, storeBias: asm.SgemmKernelAVX512Bias,
		rowsAdd: asm.SgemmRowsKernelAVX512, rowsStore: asm.SgemmRowsKernelAVX512Store, rowsStoreBias: asm.SgemmRowsKernelAVX512Bias,
		rowsPackAdd: asm.SgemmRowsPackKernelAVX512, rowsPackStore: asm.SgemmRowsPackKernelAVX512Store,
		panelDot: asm.PanelDot4AVX512, dotLanes: 16,
		plainKC: 1024,
		narrow:  &kernelAVX512Narrow, height: asm.AVX512MR, edges: []microKernel{
			{name: "avx512-r4", mr: asm.AVX512MR, nr: asm.AVX512NR, height: 4,
				add: asm.SgemmKernelAVX512R4, store: asm.SgemmKernelAVX512R4Store, storeBias: asm.SgemmKernelAVX512R4Bias,
				rowsAdd: asm.SgemmRowsKernelAVX512R4, rowsStore: asm.SgemmRowsKernelAVX512R4Store, rowsStoreBias: asm.SgemmRowsKernelAVX512R4Bias},
			{name: "avx512-r8", mr: asm.AVX512MR, nr: asm.AVX512NR, height: 8,
				add: asm.SgemmKernelAVX512R8, store: asm.SgemmKernelAVX512R8Store, storeBias: asm.SgemmKernelAVX512R8Bias,
				rowsAdd: asm.SgemmRowsKernelAVX512R8, rowsStore: asm.SgemmRowsKernelAVX512R8Store, rowsStoreBias: asm.SgemmRowsKernelAVX512R8Bias},
		}}
	kernelAVX512Narrow = microKernel{name: "avx512-narrow", mr: asm.AVX512MR, nr: asm.AVX512NarrowNR, height: asm.AVX512MR,
		add: asm.SgemmKernelAVX512N16, store: asm.SgemmKernelAVX512N16Store, storeBias: asm.SgemmKernelAVX512N16Bias,
		rowsAdd: asm.SgemmRowsKernelAVX512N16, rowsStore: asm.SgemmRowsKernelAVX512N16Store, rowsStoreBias: asm.SgemmRowsKernelAVX512N16Bias, edges: []microKernel{
			{name: "avx512-narrow-r4", mr: asm.AVX512MR, nr: asm.AVX512NarrowNR, height: 4,
				add: asm.SgemmKernelAVX512N16R4, store: asm.SgemmKernelAVX512N16R4Store, storeBias: asm.SgemmKernelAVX512N16R4Bias,
				rowsAdd: asm.SgemmRowsKernelAVX512N16R4, rowsStore: asm.SgemmRowsKernelAVX512N16R4Store, rowsStoreBias: asm.SgemmRowsKernelAVX512N16R4Bias},
			{name: "avx512-narrow-r8", mr: asm.AVX512MR, nr: asm.AVX512NarrowNR, height: 8,
				add: asm.SgemmKernelAVX512N16R8, store: asm.SgemmKernelAVX512N16R8Store, storeBias: asm.SgemmKernelAVX512N16R8Bias,
				rowsAdd: asm.SgemmRowsKernelAVX512N16R8, rowsStore: asm.SgemmRowsKernelAVX512N16R8Store, rowsStoreBias: asm.SgemmRowsKernelAVX512N16R8Bias},
		}}
	kernelAVX2 = microKernel{name: "avx2", mr: asm.AVX2MR, nr: asm.AVX2NR, height: asm.AVX2MR,
		add: asm.SgemmKernelAVX2, store: asm.SgemmKernelAVX2Store, storeBias: asm.SgemmKernelAVX2Bias,
		rowsAdd: asm.SgemmRowsKernelAVX2, rowsStore: asm.SgemmRowsKernelAVX2Store, rowsStoreBias: asm.SgemmRowsKernelAVX2Bias,
		rowsAAdd: asm.SgemmRowsAKernelAVX2, rowsAStore: asm.SgemmRowsAKernelAVX2Store,
		rowsPackAdd: asm.SgemmRowsPackKernelAVX2, rowsPackStore: asm.SgemmRowsPackKernelAVX2Store,
		panelDot: asm.PanelDot4AVX2, dotLanes: 8, edges: []microKernel{
			{name: "avx2-r2", mr: asm.AVX2MR, nr: asm.AVX2NR, height: 2,
				add: asm.SgemmKernelAVX2R2, store: asm.SgemmKernelAVX2R2Store, storeBias: asm.SgemmKernelAVX2R2Bias,
				rowsAdd: asm.SgemmRowsKernelAVX2R2, rowsStore: asm.SgemmRowsKernelAVX2R2Store, rowsStoreBias: asm.SgemmRowsKernelAVX2R2Bias},
			{name: "avx2-r4", mr: asm.AVX2MR, nr: asm.AVX2NR, height: 4,
				add: asm.SgemmKernelAVX2R4, store: asm.SgemmKernelAVX2R4Store, storeBias: asm.SgemmKernelAVX2R4Bias,
				rowsAdd: asm.SgemmRowsKernelAVX2R4, rowsStore: asm.SgemmRowsKernelAVX2R4Store, rowsStoreBias: asm.SgemmRowsKernelAVX2R4Bias},
		}}
)

// rowsKC is the depth of one pass of the unpacked-B kernels.
const rowsKC = 128

// tileLen is the scratch of one micro-kernel tile at the widest level, and
// tileBiasLen more for the bias of a partial one (partialBias).
const tileLen = asm.AVX512MR*asm.AVX512NR + tileBiasLen

// tileBiasLen is the room for a partial tile's bias: mr values, zero past
// its rows.
const tileBiasLen = 16

// tiles keeps the edge-tile scratch of the GEMMs: a sync.Pool, local to
// each processor, so that threads running GEMMs side by side take no
// shared lock for it (1.5 KB a tile; one lost to a garbage collection
// costs nothing to make again).
var tiles = sync.Pool{New: func() any { return new([tileLen]float32) }}

const (
	packKC = 256  // depth of a block: a KC×NR panel of B stays in L1/L2 while A panels stream by
	packMC = 288  // rows of A per block (a multiple of both MRs; 288×256 floats = 288 KiB of the 1 MiB L2)
	packNC = 3072 // columns of B per block (a multiple of both NRs)
)

// blocks are the sizes of a packed GEMM's blocks: kc deep, mc rows of A,
// nc columns of B.
type blocks struct{ kc, mc, nc int }

// plainALen and plainBLen are the most floats of an A block (kc·mc) and
// of a B block (kc·nc) with the kernels' own depth (blocking): the A block
// of packKC and packMC (288 KiB; 72 rows 1,024 deep, which leaves room in
// L2 for a B panel of that depth), and 4 MiB (1,024 columns 1,024 deep).
const (
	plainALen = packKC * packMC
	plainBLen = 1 << 20
)

// blocking returns the blocks of mk's product of depth k: packKC, packMC
// and packNC where A comes prepacked (its blocks are laid out in them) or
// the kernel sets no plainKC; else the depth is k cut into the fewest
// equal blocks of at most mk.plainKC (rounded up to a multiple of 4, the
// kernels' unroll), and as many rows (at most packMC) and columns as keep
// the blocks within plainALen and plainBLen.
func (mk microKernel) blocking(prepacked bool, k int) blocks {
	if prepacked || mk.plainKC == 0 || k == 0 {
		return blocks{kc: packKC, mc: packMC, nc: packNC}
	}
	parts := (k + mk.plainKC - 1) / mk.plainKC
	kc := ((k+parts-1)/parts + 3) &^ 3
	return blocks{
		kc: kc,
		mc: max(mk.mr, min(packMC, plainALen/kc/mk.mr*mk.mr)),
		nc: max(mk.nr, plainBLen/kc/mk.nr*mk.nr),
	}
}

// minSplitMACs is the fewest multiply-adds of a product that its GEMM
// splits over threads: below, the parts' hand-over costs more than they save.
const minSplitMACs = 1 << 18

// rowOffsetsOf returns the offsets p·ld of k rows, and spare more that
// repeat the last row's (read ahead by a kernel's prefetches); hand them
// back to offsetPool.
func rowOffsetsOf(k, spare, ld int) *[]int {
	offs := getOffsets(k + spare)
	for p := range *offs {
		(*offs)[p] = min(p, k-1) * ld
	}
	return offs
}

// offsetPool holds row offsets: of a B read in place (sgemmLoop), of a
// shifted-rows plan's rows.
var offsetPool = sync.Pool{New: func() any { return new([]int) }}

func getOffsets(n int) *[]int {
	p := offsetPool.Get().(*[]int)
	if cap(*p) < n {
		*p = make([]int, n)
	}
	*p = (*p)[:n]
	return p
}

// packA writes α·op(A)[i0:i0+mc, p0:p0+kc] as ⌈mc/mr⌉ panels of kc×mr values
// (for each p, the mr values of rows i..i+mr), zero past row m. Both layouts
// are read along their contiguous axis.
func packA(dst, a []float32, lda int, transA bool, m, i0, mc, p0, kc, mr int, alpha float32) {
	panels := (mc + mr - 1) / mr
	for ip := range panels {
		panel := dst[ip*mr*kc : (ip+1)*mr*kc]
		row0 := i0 + ip*mr
		rows := min(mr, mc-ip*mr, m-row0)
		if transA { // A stored K×M: the mr rows of op(A) at depth p are contiguous
			if rows == 6 && mr == 6 && alpha == 1 { // a whole AVX2 panel: two moves per depth
				for p := range kc {
					src, dst := a[(p0+p)*lda+row0:][:6], panel[p*6:][:6]
					*(*[4]float32)(dst) = *(*[4]float32)(src) // 16 + 8 bytes, inline moves
					*(*[2]float32)(dst[4:]) = *(*[2]float32)(src[4:])
				}
				continue
			}
			if mr == 12 && asm.Available && kc > 0 && rows > 0 {
				// Only the AVX-512 kernel packs 12 rows: one masked load,
				// multiply and store a depth (the loop below took 2.4 of
				// attention's 8.4 µs of packing a 196-token call).
				_ = a[(p0+kc-1)*lda+row0+rows-1]
				asm.PackATAVX512(&panel[0], mr, &a[p0*lda+row0], lda, kc, rows, alpha)
				continue
			}
			for p := range kc {
				out := panel[p*mr : (p+1)*mr]
				src := a[(p0+p)*lda+row0 : (p0+p)*lda+row0+rows]
				for r, v := range src {
					out[r] = alpha * v
				}
				clear(out[rows:])
			}
			continue
		}
		if rows == mr && mr == 6 && asm.Available { // whole AVX2 panel: eight steps at a time in assembly
			blocks := kc / 8
			asm.PackA6AVX2(&panel[0], &a[row0*lda+p0], lda, blocks, alpha)
			for r := range 6 {
				src := a[(row0+r)*lda+p0:][:kc]
				for p := 8 * blocks; p < kc; p++ {
					panel[p*mr+r] = alpha * src[p]
				}
			}
			continue
		}
		if rows >= 8 && mr == 12 && alpha == 1 && asm.Available {
			// An AVX-512 panel of 8–12 rows, eight steps at a time: a whole
			// one by PackA12AVX2; a partial one by two 8×8 transposes, rows
			// 0–7 and rows−8 … rows−1 (overlapping unless rows is 8), the
			// rows past the edge cleared (F = 32 leaves an 8-row last panel).
			blocks := kc / 8
			switch {
			case blocks == 0:
			case rows == 12:
				asm.PackA12AVX2(&panel[0], &a[row0*lda+p0], lda, blocks)
			default:
				asm.PackBT8AVX2(&panel[0], mr, &a[row0*lda+p0], lda, blocks)
				if rows > 8 {
					asm.PackBT8AVX2(&panel[rows-8], mr, &a[(row0+rows-8)*lda+p0], lda, blocks)
				}
			}
			for r := range rows {
				src := a[(row0+r)*lda+p0:][:kc]
				for p := 8 * blocks; p < kc; p++ {
					panel[p*mr+r] = src[p]
				}
			}
			if rows < mr {
				for p := range kc {
					clear(panel[p*mr+rows : (p+1)*mr])
				}
			}
			continue
		}
		if rows == mr && mr%6 == 0 { // whole panel: six rows at a time, six consecutive stores per p
			for r := 0; r < mr; r += 6 {
				s0 := a[(row0+r)*lda+p0:][:kc]
				s1 := a[(row0+r+1)*lda+p0:][:kc]
				s2 := a[(row0+r+2)*lda+p0:][:kc]
				s3 := a[(row0+r+3)*lda+p0:][:kc]
				s4 := a[(row0+r+4)*lda+p0:][:kc]
				s5 := a[(row0+r+5)*lda+p0:][:kc]
				for p := range kc {
					o := panel[p*mr+r:][:6]
					o[0], o[1], o[2] = alpha*s0[p], alpha*s1[p], alpha*s2[p]
					o[3], o[4], o[5] = alpha*s3[p], alpha*s4[p], alpha*s5[p]
				}
			}
			continue
		}
		// A partial panel of few rows: depth by depth, so that each step
		// writes its mr values (the rows past the edge cleared) together.
		base := row0*lda + p0
		for p := range kc {
			out := panel[p*mr : (p+1)*mr]
			for r := range rows {
				out[r] = alpha * a[base+r*lda+p]
			}
			clear(out[rows:])
		}
	}
}

// operandB is the B operand of a packed GEMM: op(B)(p, j) is b[p·ld + j],
// or b[j·ld + p] when trans. With off, the rows (columns when trans) start
// at arbitrary places instead: op(B)(p, j) = b[off[p] + j], or b[off[j] + p].
// A stride-1 convolution reads its input image this way without im2col:
// every row of the im2col matrix is a shifted window of the padded image.
type operandB struct {
	b     []float32
	ld    int
	trans bool
	off   []int
}

// start is where row p (column j when trans) of op(B) begins in b.
func (o operandB) start(i int) int {
	if o.off != nil {
		return o.off[i]
	}
	return i * o.ld
}

// cols returns the operand from column j0 of op(B) on.
func (o operandB) cols(j0 int) operandB {
	switch {
	case !o.trans:
		o.b = o.b[j0:]
	case o.off != nil:
		o.off = o.off[j0:]
	default:
		o.b = o.b[j0*o.ld:]
	}
	return o
}

// packB writes op(B)[p0:p0+kc, j0:j0+nc] as ⌈nc/nr⌉ panels of kc×nr values
// (for each p, nr consecutive columns), zero past column j0+nc.
func packB(dst []float32, ob operandB, p0, kc, j0, nc, nr int) {
	b := ob.b
	panels := (nc + nr - 1) / nr
	if !ob.trans {
		// Row by row: each source row is read once, front to back (walking a
		// panel down its rows instead jumps a whole row of B per 16 values,
		// a new page each time when B is wide), and its whole-panel chunks
		// go out as fixed-size array copies.
		full := nc / nr
		for p := range kc {
			src := b[ob.start(p0+p)+j0:][:nc]
			switch nr {
			case 16:
				for jp := range full {
					*(*[16]float32)(dst[jp*nr*kc+p*nr:]) = *(*[16]float32)(src[jp*nr:])
				}
			case 32:
				for jp := range full {
					*(*[32]float32)(dst[jp*nr*kc+p*nr:]) = *(*[32]float32)(src[jp*nr:])
				}
			default:
				for jp := range full {
					copy(dst[jp*nr*kc+p*nr:][:nr], src[jp*nr:])
				}
			}
			if full < panels {
				row := dst[full*nr*kc+p*nr:][:nr]
				copy(row, src[full*nr:])
				clear(row[nc-full*nr:])
			}
		}
		return
	}
	for jp := range panels {
		panel := dst[jp*nr*kc : (jp+1)*nr*kc]
		cols := min(nr, nc-jp*nr)
		col0 := j0 + jp*nr
		packTransposed(panel, b, ob, p0, kc, col0, cols, nr) // column col of op(B) is contiguous in b
	}
}

// packTransposed fills one B panel from columns col0..col0+cols of op(B)
// that are contiguous in b (transposed or offset storage): a transpose,
// done eight columns at a time so that each depth p gets eight consecutive
// stores (one column at a time, every store lands in another cache line;
// this runs 2.3× faster on the backward-weight shapes).
func packTransposed(panel, b []float32, ob operandB, p0, kc, col0, cols, nr int) {
	cc := 0
	if ob.off == nil && asm.Available && nr >= 8 && kc >= 8 {
		// Evenly spaced columns: eight depths at a time by an 8×8 transpose
		// in assembly, the last kc mod 8 below.
		blocks := kc / 8
		for ; cc+8 <= cols; cc += 8 {
			src := b[ob.start(col0+cc)+p0:][:7*ob.ld+kc]
			asm.PackBT8AVX2(&panel[cc], nr, &src[0], ob.ld, blocks)
			for p := 8 * blocks; p < kc; p++ {
				for j := range 8 {
					panel[p*nr+cc+j] = src[j*ob.ld+p]
				}
			}
		}
	}
	for ; cc+8 <= cols; cc += 8 {
		s0 := b[ob.start(col0+cc)+p0:][:kc]
		s1 := b[ob.start(col0+cc+1)+p0:][:kc]
		s2 := b[ob.start(col0+cc+2)+p0:][:kc]
		s3 := b[ob.start(col0+cc+3)+p0:][:kc]
		s4 := b[ob.start(col0+cc+4)+p0:][:kc]
		s5 := b[ob.start(col0+cc+5)+p0:][:kc]
		s6 := b[ob.start(col0+cc+6)+p0:][:kc]
		s7 := b[ob.start(col0+cc+7)+p0:][:kc]
		for p := range kc {
			o := panel[p*nr+cc:][:8]
			o[0], o[1], o[2], o[3] = s0[p], s1[p], s2[p], s3[p]
			o[4], o[5], o[6], o[7] = s4[p], s5[p], s6[p], s7[p]
		}
	}
	for ; cc < nr; cc++ {
		if cc >= cols {
			for p := range kc {
				panel[p*nr+cc] = 0
			}
			continue
		}
		for p, v := range b[ob.start(col0+cc)+p0:][:kc] {
			panel[p*nr+cc] = v
		}
	}
}

// sgemmPacked computes C = α·op(A)·op(B) + β·C like Sgemm, with micro-kernel
// mk. With several threads the problem is cut into independent slabs of C,
// by columns (each thread packs its own B panels and a copy of A) or, when C
// is too narrow for that, by rows; a slab boundary falls on a tile edge.
func sgemmPacked(mk microKernel, threads int, g gemm) {
	m, n, k, transA, lda := g.M, g.N, g.K, g.TransA, g.LdA
	if m == 0 || n == 0 {
		return
	}
	if gemmPath(mk, m, n, k, transA, g.B.trans, g.Alpha, false) == GemmUnpackedA {
		g.biasByFill()
		offs := getOffsets(m)
		offA := *offs
		for i := range offA {
			offA[i] = i * lda
		}
		sgemmRowsAThreads(mk, threads, m, n, k, g.A, offA, g.B, g.Beta, g.C, g.LdC)
		offsetPool.Put(offs)
		return
	}
	if threads <= 1 || m*n*k < minSplitMACs {
		sgemmLoop(mk, nil, 0, g)
		return
	}
	sgemmPackedParts(mk, threads, g)
}

// sgemmPackedParts is sgemmPacked's split over threads, a function of its
// own so that the closures' capture of g costs the one-goroutine calls
// nothing (g escaped to the heap at every call, 16 KB per batch-1 forward).
func sgemmPackedParts(mk microKernel, threads int, g gemm) {
	m, n, transA, lda := g.M, g.N, g.TransA, g.LdA
	nPanels, mPanels := (n+mk.nr-1)/mk.nr, (m+mk.mr-1)/mk.mr
	if nPanels >= 2*threads || nPanels >= mPanels {
		parts := min(threads, nPanels)
		runParts(parts, func(t int) {
			j0, j1 := t*nPanels/parts*mk.nr, min(n, (t+1)*nPanels/parts*mk.nr)
			slab := g
			slab.N, slab.B, slab.C = j1-j0, g.B.cols(j0), g.C[j0:]
			sgemmLoop(mk, nil, 0, slab)
		})
		return
	}
	parts := min(threads, mPanels)
	runParts(parts, func(t int) {
		i0, i1 := t*mPanels/parts*mk.mr, min(m, (t+1)*mPanels/parts*mk.mr)
		ao := i0 * lda // row i0 of op(A)
		if transA {
			ao = i0
		}
		slab := g
		slab.M, slab.A, slab.C, slab.PlanM = i1-i0, g.A[ao:], g.C[i0*g.LdC:], m
		if g.Bias != nil {
			slab.Bias = g.Bias[i0:i1]
		}
		sgemmLoop(mk, nil, 0, slab)
	})
}

// prepackedA is α·op(A) packed once, block by block, for many products with
// the same A: a convolution multiplies its weights with every image's
// columns, and packing the weights once per call instead of once per image
// removes what dominated the low-resolution layers (the per-element cost of
// packing is that of ~50–100 flops, and a 4×4 layer does only 32 flops per
// weight per image).
type prepackedA struct {
	mk       microKernel
	m, k     int
	blocks   [][]float32 // [pc block][ic block] → panels
	icBlocks int
}

func prepackA(mk microKernel, transA bool, m, k int, alpha float32, a []float32, lda int) *prepackedA {
	return prepackAIn(mk, transA, m, k, alpha, a, lda, make([]float32, prepackedLen(mk, m, k)))
}

// prepackAIn is prepackA with the blocks cut from buf (prepackedLen floats).
func prepackAIn(mk microKernel, transA bool, m, k int, alpha float32, a []float32, lda int, buf []float32) *prepackedA {
	pa := prepackedIn(mk, m, k, buf)
	for pc := 0; pc < k; pc += packKC {
		kc := min(packKC, k-pc)
		for ic := 0; ic < m; ic += packMC {
			mc := min(packMC, m-ic)
			packA(pa.blocks[pc/packKC*pa.icBlocks+ic/packMC], a, lda, transA, m, ic, mc, pc, kc, mk.mr, alpha)
		}
	}
	return pa
}

// newPrepackedA allocates the blocks of an m×k prepackedA, zeroed: block
// (pc, ic) holds ⌈mc/mr⌉ panels of kc×mr values, A(ic + mr·i + r, pc + p)
// at [i·mr·kc + p·mr + r].
func newPrepackedA(mk microKernel, m, k int) *prepackedA {
	return prepackedIn(mk, m, k, make([]float32, prepackedLen(mk, m, k)))
}

// prepackedLen is the number of floats of an m×k prepackedA's blocks.
func prepackedLen(mk microKernel, m, k int) int { return (m + mk.mr - 1) / mk.mr * mk.mr * k }

// prepackedIn is newPrepackedA with the blocks cut from buf (at least
// prepackedLen floats), whose contents are kept.
func prepackedIn(mk microKernel, m, k int, buf []float32) *prepackedA {
	pa := &prepackedA{mk: mk, m: m, k: k, icBlocks: (m + packMC - 1) / packMC}
	for pc := 0; pc < k; pc += packKC {
		kc := min(packKC, k-pc)
		for ic := 0; ic < m; ic += packMC {
			mc := min(packMC, m-ic)
			off, n := prepackedOffset(mk, m, pc, ic, kc), (mc+mk.mr-1)/mk.mr*mk.mr*kc
			pa.blocks = append(pa.blocks, buf[off:off+n:off+n])
		}
	}
	return pa
}

// prepackedOffset is where prepackedIn puts the panel of rows row0… (a
// multiple of mr) of the depth block pc (kc deep) of an m-row A: the depth
// blocks before it (each of all the rows, padded to mr), then the rows
// above it in its block.
func prepackedOffset(mk microKernel, m, pc, row0, kc int) int {
	return pc*((m+mk.mr-1)/mk.mr*mk.mr) + row0*kc
}

// block is the packed block (pc, ic) of pa, from row row0 of it on: row0
// is a multiple of mr, nonzero only where pa has one row block (m ≤
// packMC) — a slab of the same panels, for a product of some of pa's rows
// (a thread's band of a convolution's output channels).
func (pa *prepackedA) block(pc, ic, row0 int) []float32 {
	b := pa.blocks[pc/packKC*pa.icBlocks+ic/packMC]
	if row0 > 0 {
		b = b[row0*min(packKC, pa.k-pc):]
	}
	return b
}

// column sets y[i·ys] = Σ_p A(row0 + i, p)·x[p·xs] for i < m: rows of pa
// times one column of B, each sum the chain of multiply-adds from zero that
// a micro-kernel tile computes for it, so that the column is bit for bit
// what the GEMM would give it. It needs a kernel with panelDot
// (hasColumn), one depth pass (k ≤ rowsKC: no pass whose partial sums a
// tile would add) and one row block (row0 + m ≤ packMC, or row0 = 0 and
// m ≤ packMC). out is its scratch, the four panels' sums (a local array
// escaped through the panelDot func value: an allocation at every call, 45 %
// of a batch-1 tiny-mnist forward's).
func (pa *prepackedA) column(row0, m int, x []float32, xs int, y []float32, ys int, out *[4 * 16]float32) {
	mr, kc := pa.mk.mr, pa.k
	if m == 0 || kc == 0 {
		for i := range m {
			y[i*ys] = 0
		}
		return
	}
	blk := pa.block(0, 0, row0)
	panels := (m + mr - 1) / mr
	_, _ = x[(kc-1)*xs], blk[panels*mr*kc-1] // the assembly reads these unchecked
	panel := func(q int) *float32 { return &blk[min(q, panels-1)*mr*kc] }
	w := pa.mk.dotLanes
	for q0 := 0; q0 < panels; q0 += 4 {
		pa.mk.panelDot(kc, panel(q0), panel(q0+1), panel(q0+2), panel(q0+3), &x[0], xs, &out[0])
		for q := q0; q < min(q0+4, panels); q++ {
			for r := range min(mr, m-q*mr) {
				y[(q*mr+r)*ys] = out[w*(q-q0)+r]
			}
		}
	}
}

// readsInPlace reports whether sgemmPrepacked's one-thread product of pa
// (any of its rows) by an n-column B of row stride ld is one depth pass
// over B read where it is, in whole panels of the kernel that n selects:
// then productInPlace computes it with the same kernel calls.
func (pa *prepackedA) readsInPlace(n, ld int) bool {
	if pa.icBlocks != 1 || pa.k > rowsKC || pa.k == 0 || n == 0 || !readsBUnpacked(pa.mk, true, pa.m, n, ld) {
		return false
	}
	mk := pa.mk.forColumns(n)
	rest := n % mk.nr
	return rest == 0 || rest == mk.forColumns(rest).nr
}

// productInPlace sets C = A·B for the m rows of pa from row0 on (as in
// gemmA.rows) and the n columns of B, where readsInPlace(n, ld) holds:
// row p of B starts at b[off[p]]. It makes sgemmPrepacked's kernel calls,
// in its order, without its setup: a batch-1 Winograd convolution makes
// 36 such products of a few microseconds per chunk, and the generic path's
// blocks, pools and row offsets had cost a fifth of tiny-mnist's 28×28
// convolution (bench/RESULTS.md, 2026-12-07). tile is micro-kernel scratch.
func (pa *prepackedA) productInPlace(row0, m, n int, b []float32, off []int, c []float32, ldc int, tile []float32) {
	mk := pa.mk.forColumns(n)
	blk, ob := pa.block(0, 0, row0), operandB{b: b, off: off}
	full := n / mk.nr * mk.nr
	runTilesRows(mk, true, nil, blk, ob, 0, c, ldc, 0, 0, m, full, pa.k, tile)
	if full < n {
		runTilesRows(mk.forColumns(n-full), true, nil, blk, ob, 0, c, ldc, 0, full, m, n-full, pa.k, tile)
	}
}

// hasColumn reports whether column takes pa's panels.
func (pa *prepackedA) hasColumn() bool { return asm.Available && pa.mk.panelDot != nil }

// sgemmPrepacked is sgemmPacked with A packed beforehand; threads split C
// by columns (A's blocks are shared read-only), or by rows when C has fewer
// column panels than threads (the 4×4 and 8×8 levels of a batch-1 U-Net).
// bias, when not nil (β must then be 0), is added to each row of C. The
// product takes rows [row0, row0+m) of pa (row0 a multiple of mr, nonzero
// only where pa has one row block); its path (B packed or read in place) is
// planned for all of pa's rows, so that a product split by output channels
// (convRowParts, winoRowParts) groups each value's sums as the whole one.
func sgemmPrepacked(pa *prepackedA, row0, m int, threads int, n, planN int, ob operandB, beta float32, bias, c []float32, ldc int) {
	mk, k := pa.mk, pa.k
	if m == 0 || n == 0 {
		return
	}
	if planN == 0 {
		planN = n
	}
	nPanels, mPanels := (n+mk.nr-1)/mk.nr, (m+mk.mr-1)/mk.mr
	if m*n*k < minSplitMACs || threads <= 1 {
		// One goroutine, without the closures below (an allocation each,
		// hundreds per batch-1 forward).
		sgemmLoop(mk, pa, row0, gemm{M: m, N: n, K: k, Alpha: 1, B: ob, Beta: beta, Bias: bias, C: c, LdC: ldc, PlanM: pa.m, PlanN: planN})
		return
	}
	j := prepackedJobs.Get().(*prepackedJob)
	*j = prepackedJob{pa: pa, row0: row0, m: m, n: n, planN: planN, ob: ob, beta: beta, bias: bias, c: c, ldc: ldc}
	if threads > nPanels && mPanels > nPanels && pa.icBlocks == 1 {
		j.byRows = true
		inParts(threads, mPanels, 1, j.part)
	} else {
		inParts(threads, nPanels, 1, j.part)
	}
	*j = prepackedJob{}
	prepackedJobs.Put(j)
}

// prepackedJob is a split sgemmPrepacked call, from a pool: its parts all
// read it (a closure capturing the operands had been a heap object of
// ~250 bytes at every split call, 5 KB a batch-1 tiny-mnist forward).
type prepackedJob struct {
	pa         *prepackedA
	row0, m, n int
	planN      int
	ob         operandB
	beta       float32
	bias, c    []float32
	ldc        int
	byRows     bool // parts are row panels of C, else column panels
}

var prepackedJobs = sync.Pool{New: func() any { return new(prepackedJob) }}

// part computes the row panels (byRows) or column panels [lo, hi) of C.
func (j *prepackedJob) part(lo, hi int) {
	mk, k := j.pa.mk, j.pa.k
	if j.byRows {
		i0, i1 := lo*mk.mr, min(j.m, hi*mk.mr)
		g := gemm{M: i1 - i0, N: j.n, K: k, Alpha: 1, B: j.ob, Beta: j.beta, C: j.c[i0*j.ldc:], LdC: j.ldc, PlanM: j.pa.m, PlanN: j.planN}
		if j.bias != nil {
			g.Bias = j.bias[i0:i1]
		}
		sgemmLoop(mk, j.pa, j.row0+i0, g)
		return
	}
	j0, j1 := lo*mk.nr, min(j.n, hi*mk.nr)
	sgemmLoop(mk, j.pa, j.row0, gemm{M: j.m, N: j1 - j0, K: k, Alpha: 1, B: j.ob.cols(j0), Beta: j.beta, Bias: j.bias, C: j.c[j0:], LdC: j.ldc, PlanM: j.pa.m, PlanN: j.planN})
}

// sgemmLoop is the loop nest; with pa it takes A's blocks from pa, rows
// [paRow0, paRow0+g.M) of it, instead of packing them (then g.TransA, g.A
// and g.LdA are unused and g.Alpha is 1).
func sgemmLoop(mk microKernel, pa *prepackedA, paRow0 int, g gemm) {
	// The blocks are the full kernel's, also where the columns take the
	// narrow one: a product split over threads by columns sums each value
	// in the same blocks whatever width its slab has.
	bl := mk.blocking(pa != nil, g.K)
	mk = mk.forColumns(g.N)
	if g.K == 0 || g.Alpha == 0 {
		g.biasByFill()
	}
	transA, m, n, k, alpha, a, lda, ob, beta, c, ldc := g.TransA, g.M, g.N, g.K, g.Alpha, g.A, g.LdA, g.B, g.Beta, g.C, g.LdC
	if k == 0 || alpha == 0 || (beta != 0 && beta != 1) {
		scaleC(c, m, n, ldc, beta)
	}
	if k == 0 || alpha == 0 {
		return
	}
	// With β = 0 the first depth block overwrites C (plus the bias), so C
	// is never cleared or read.
	overwrite := beta == 0
	// rowBias is the bias of rows [ic, ic+mc) for the first depth block.
	rowBias := func(pc, ic, mc int) []float32 {
		if g.Bias == nil || pc != 0 {
			return nil
		}
		return g.Bias[ic : ic+mc]
	}
	mr, nr := mk.mr, mk.nr
	ncMax := min(bl.nc, (n+nr-1)/nr*nr)
	kcMax := min(bl.kc, k)
	mcMax := min(bl.mc, (m+mr-1)/mr*mr)
	// B's block is taken only where B is packed: a product that reads B
	// unpacked in whole panels (Winograd's at batch 1) then touches no lock
	// shared with the other threads.
	var bp []float32
	packBlock := func() []float32 {
		if bp == nil {
			bp = packArrays.get(kcMax * ncMax)
		}
		return bp
	}
	defer func() {
		if bp != nil {
			packArrays.put(bp)
		}
	}()
	tp := tiles.Get().(*[tileLen]float32)
	defer tiles.Put(tp)
	tile := tp[:]
	var ap []float32
	if pa == nil {
		ap = packArrays.get(kcMax * mcMax)
		defer packArrays.put(ap)
	}
	// aBlock is the packed MC×KC block of A at (ic, pc): prepacked, or packed now.
	aBlock := func(pc, kc, ic, mc int) []float32 {
		if pa != nil {
			return pa.block(pc, ic, paRow0)
		}
		packA(ap, a, lda, transA, m, ic, mc, pc, kc, mr, alpha)
		return ap
	}
	planM, planN := m, n
	if g.PlanM > 0 {
		planM = g.PlanM
	}
	if g.PlanN > 0 {
		planN = g.PlanN
	}
	ld := ob.ld
	if ob.off != nil {
		ld = 0
	}
	unpacked := !ob.trans && readsBUnpacked(mk, pa != nil, planM, planN, ld)
	// Where B is packed, a plain B at a level with the packing kernels is
	// packed by the first row of tiles as it reads it (runTilesPacking),
	// not in a pass of its own (but for a first depth block with a bias).
	packWhileReading := !unpacked && mk.rowsPackAdd != nil && !ob.trans && ob.off == nil && min(bl.mc, m) >= mr && n >= nr
	var rowOffs []int // B's row offsets for runTilesPacking, and asm.PackAhead more for its prefetches
	switch {
	case unpacked && ob.off == nil:
		offs := rowOffsetsOf(k, 0, ob.ld)
		defer offsetPool.Put(offs)
		ob.off = *offs
	case packWhileReading:
		offs := rowOffsetsOf(k, asm.PackAhead, ob.ld)
		defer offsetPool.Put(offs)
		rowOffs = *offs
	}
	for jc := 0; jc < n; jc += bl.nc {
		nc := min(bl.nc, n-jc)
		for pc := 0; pc < k; pc += bl.kc {
			kc := min(bl.kc, k-pc)
			if unpacked {
				// Whole panels read B where it is. The columns past them
				// take the narrow kernel where they fit it (a 1×1
				// convolution of a 14×14 image has 4 columns past six
				// panels): read in place when they fill it, else packed.
				full := nc / nr * nr
				tail, tailPacked := mk.forColumns(nc-full), false
				if full < nc && nc-full < tail.nr {
					packB(packBlock(), ob, pc, kc, jc+full, nc-full, tail.nr)
					tailPacked = true
				}
				for ic := 0; ic < m; ic += bl.mc {
					mc := min(bl.mc, m-ic)
					blk := aBlock(pc, kc, ic, mc)
					store, bias := overwrite && pc == 0, rowBias(pc, ic, mc)
					runTilesRows(mk, store, bias, blk, ob, pc, c, ldc, ic, jc, mc, full, kc, tile)
					switch {
					case tailPacked:
						// Packed, but summed in runTilesRows' passes: a
						// column's value then does not depend on whether it
						// falls in a whole panel or in the tail, which
						// moves when the columns are split (over threads,
						// or by bands of a convolution's output rows).
						for p0 := 0; p0 < kc; p0 += rowsKC {
							first := store && p0 == 0
							runTilesDepth(tail, first, tileBias(bias, 0, mc, first), blk, bp, c, ldc, ic, jc+full, mc, nc-full, kc, p0, min(rowsKC, kc-p0), tile)
						}
					case full < nc:
						runTilesRows(tail, store, bias, blk, ob, pc, c, ldc, ic, jc+full, mc, nc-full, kc, tile)
					}
				}
				continue
			}
			// B packed by the first row of tiles (runTilesPacking) where the
			// kernels can: the packing then costs no pass of its own over B.
			fused := packWhileReading && (g.Bias == nil || pc != 0) && nc >= nr
			full := nc / nr * nr
			switch {
			case !fused:
				packB(packBlock(), ob, pc, kc, jc, nc, nr)
			case full < nc: // the last, partial panel as before
				packB(packBlock()[full*kc:], ob, pc, kc, jc+full, nc-full, nr)
			default:
				packBlock()
			}
			for ic := 0; ic < m; ic += bl.mc {
				mc := min(bl.mc, m-ic)
				blk := aBlock(pc, kc, ic, mc)
				store := overwrite && pc == 0
				if fused && ic == 0 {
					runTilesPacking(mk, store, blk, operandB{b: ob.b, ld: ob.ld, off: rowOffs}, pc, bp, c, ldc, jc, full, kc)
					runTiles(mk, store, nil, blk[mr*kc:], bp, c, ldc, mr, jc, mc-mr, full, kc, tile)
					if full < nc {
						runTiles(mk, store, nil, blk, bp[full*kc:], c, ldc, 0, jc+full, mc, nc-full, kc, tile)
					}
					continue
				}
				runTiles(mk, store, rowBias(pc, ic, mc), blk, bp, c, ldc, ic, jc, mc, nc, kc, tile)
			}
		}
	}
}

// runTilesPacking computes the first row of tiles (rows 0…mr−1, a whole
// panel of ap) of the whole nr-wide panels [jc, jc+nc) with B read where it
// is (row p of the panel at column j starts at ob.b[ob.off[pc+p] + j]), and
// packs each B panel into bp as it goes, for runTiles to take for the other
// rows. Packing B in a pass of its own cost ~3 % of a one-thread 1,024²
// product (bench/RESULTS.md, 2026-12-06).
func runTilesPacking(mk microKernel, store bool, ap []float32, ob operandB, pc int, bp, c []float32, ldc, jc, nc, kc int) {
	fn := mk.rowsPackAdd
	if store {
		fn = mk.rowsPackStore
	}
	nr := mk.nr
	for jp := range nc / nr {
		fn(kc, &ap[0], &ob.b[jc+jp*nr], &ob.off[pc], &c[jc+jp*nr], ldc, &bp[jp*nr*kc])
	}
}

// runTilesRows is runTiles for whole nr-wide panels of B read unpacked:
// row p of the panel at column j starts at ob.b[ob.off[pc+p] + j]. The depth
// is taken rowsKC at a time so that the rows of one B panel (two cache lines
// each when unaligned) stay in L1 while the A panels stream past them.
func runTilesRows(mk microKernel, store bool, bias, ap []float32, ob operandB, pc int, c []float32, ldc, ic, jc, mc, nc, kc int, tile []float32) {
	mr, nr := mk.mr, mk.nr
	panels, lastRows, edge := mk.rowPanels(mc)
	for jp := range nc / nr {
		b := &ob.b[jc+jp*nr]
		for p0 := 0; p0 < kc; p0 += rowsKC {
			ks := min(rowsKC, kc-p0)
			first := store && p0 == 0
			off := &ob.off[pc+p0]
			for ip := range panels {
				k, rows := &mk, mr
				if ip == panels-1 {
					k, rows = edge, lastRows
				}
				pa := &ap[ip*mr*kc+p0*mr] // panels are p-major: depth p0 on is contiguous
				ci := (ic+ip*mr)*ldc + jc + jp*nr
				switch {
				case rows < k.height:
					t := tile[:mr*nr]
					if tb := partialBias(tile, bias, ip*mr, rows, first); tb != nil {
						k.rowsStoreBias(ks, pa, b, off, &t[0], nr, tb)
					} else {
						k.rowsStore(ks, pa, b, off, &t[0], nr)
					}
					mergeTile(c[ci:], ldc, t, nr, rows, nr, first)
				case first && bias != nil:
					k.rowsStoreBias(ks, pa, b, off, &c[ci], ldc, &bias[ip*mr])
				case first:
					k.rowsStore(ks, pa, b, off, &c[ci], ldc)
				default:
					k.rowsAdd(ks, pa, b, off, &c[ci], ldc)
				}
			}
		}
	}
}

// tileBias is the bias of the rows [i0, i0+rows) of a block when its
// values are stored (nil otherwise).
func tileBias(bias []float32, i0, rows int, store bool) []float32 {
	if !store || bias == nil {
		return nil
	}
	return bias[i0 : i0+rows]
}

// partialBias returns, for a partial tile computed into tile's scratch
// whose values are stored, its rows' bias [i0, i0+rows) copied into
// the last tileBiasLen values of tile (tileLen long), zero past rows, for the kernel's
// storeBias; nil when there is no bias to store. A partial tile thus starts
// its sums at the bias as a whole tile does, instead of adding it after: a
// value then does not depend on whether its tile is whole, which changes
// when the columns are split over threads or by bands of output rows.
func partialBias(tile, bias []float32, i0, rows int, store bool) *float32 {
	b := tileBias(bias, i0, rows, store)
	if b == nil {
		return nil
	}
	pad := tile[tileLen-tileBiasLen : tileLen]
	clear(pad[copy(pad, b):])
	return &pad[0]
}

// sgemmRowsA computes C = A·op(B) + β·C on one goroutine with A read
// unpacked: A(i, p) = a[offA[i] + p], so that a convolution's weight
// gradient reads the im2col matrix straight from the padded image, row by
// row (six sequential streams per micro-kernel), and packs only op(B), the
// much smaller output gradient. It needs mk.rowsAAdd.
func sgemmRowsA(mk microKernel, m, n, k int, a []float32, offA []int, ob operandB, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || (beta != 0 && beta != 1) {
		scaleC(c, m, n, ldc, beta)
		if k == 0 {
			return
		}
		beta = 1
	}
	mr, nr := mk.mr, mk.nr
	ncMax := min(packNC, (n+nr-1)/nr*nr)
	kcMax := min(packKC, k)
	bp := packArrays.get(kcMax * ncMax)
	defer packArrays.put(bp)
	var offs [asm.AVX512MR]int
	var tile [asm.AVX512MR * asm.AVX512NR]float32
	for jc := 0; jc < n; jc += packNC {
		nc := min(packNC, n-jc)
		for pc := 0; pc < k; pc += packKC {
			kc := min(packKC, k-pc)
			packB(bp, ob, pc, kc, jc, nc, nr)
			store := beta == 0 && pc == 0
			fn := mk.rowsAAdd
			if store {
				fn = mk.rowsAStore
			}
			for i0 := 0; i0 < m; i0 += mr {
				rows := min(mr, m-i0)
				for r := range mr { // rows past m repeat the last: computed, never written
					offs[r] = offA[i0+min(r, rows-1)] + pc
				}
				for jp := range (nc + nr - 1) / nr {
					cols := min(nr, nc-jp*nr)
					pb := &bp[jp*nr*kc]
					ci := i0*ldc + jc + jp*nr
					if rows == mr && cols == nr {
						fn(kc, &a[0], &offs[0], pb, &c[ci], ldc)
						continue
					}
					t := tile[:mr*nr]
					mk.rowsAStore(kc, &a[0], &offs[0], pb, &t[0], nr)
					mergeTile(c[ci:], ldc, t, nr, rows, cols, store)
				}
			}
		}
	}
}

// sgemmRowsAThreads is sgemmRowsA with the rows of C split over threads
// goroutines (whole micro-panels each).
func sgemmRowsAThreads(mk microKernel, threads, m, n, k int, a []float32, offA []int, ob operandB, beta float32, c []float32, ldc int) {
	panels := (m + mk.mr - 1) / mk.mr
	parts := max(1, min(threads, panels))
	if m*n*k < minSplitMACs {
		parts = 1
	}
	if parts == 1 {
		sgemmRowsA(mk, m, n, k, a, offA, ob, beta, c, ldc)
		return
	}
	runParts(parts, func(t int) {
		i0, i1 := t*panels/parts*mk.mr, min(m, (t+1)*panels/parts*mk.mr)
		sgemmRowsA(mk, i1-i0, n, k, a, offA[i0:i1], ob, beta, c[i0*ldc:], ldc)
	})
}

// mergeTile writes the rows×cols corner of the scratch tile t (row stride
// nr) into c (row stride ldc): copied when store, else added.
func mergeTile(c []float32, ldc int, t []float32, nr, rows, cols int, store bool) {
	for r := range rows {
		dst := c[r*ldc : r*ldc+cols]
		if store {
			copy(dst, t[r*nr:r*nr+cols])
			continue
		}
		for j := range dst {
			dst[j] += t[r*nr+j]
		}
	}
}

func scaleC(c []float32, m, n, ldc int, beta float32) {
	for i := range m {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
		} else if beta != 1 {
			for j := range row {
				row[j] *= beta
			}
		}
	}
}

// runTiles applies the micro-kernel to every MR×NR tile of one packed block
// (overwriting C when store, else adding). The B panel stays hot in L1 while
// the A panels stream past it. Partial tiles at the edges go through tile,
// tileLen floats of the caller's scratch (an array here escaped through the
// micro-kernel func values and cost an allocation per call).
func runTiles(mk microKernel, store bool, bias, ap, bp, c []float32, ldc, ic, jc, mc, nc, kc int, tile []float32) {
	runTilesDepth(mk, store, bias, ap, bp, c, ldc, ic, jc, mc, nc, kc, 0, kc, tile)
}

// runTilesDepth is runTiles over the depths [p0, p0+ks) of the panels
// (kc deep) only.
func runTilesDepth(mk microKernel, store bool, bias, ap, bp, c []float32, ldc, ic, jc, mc, nc, kc, p0, ks int, tile []float32) {
	mr, nr := mk.mr, mk.nr
	panels, lastRows, edge := mk.rowPanels(mc)
	for jp := range (nc + nr - 1) / nr {
		cols := min(nr, nc-jp*nr)
		for ip := range panels {
			k, rows := &mk, mr
			if ip == panels-1 {
				k, rows = edge, lastRows
			}
			pa, pb := &ap[ip*mr*kc+p0*mr], &bp[jp*nr*kc+p0*nr] // panels are p-major
			ci := (ic+ip*mr)*ldc + jc + jp*nr
			switch {
			case rows < k.height || cols < nr:
				t := tile[:mr*nr]
				if b := partialBias(tile, bias, ip*mr, rows, store); b != nil {
					k.storeBias(ks, pa, pb, &t[0], nr, b)
				} else {
					k.store(ks, pa, pb, &t[0], nr)
				}
				mergeTile(c[ci:], ldc, t, nr, rows, cols, store)
			case store && bias != nil:
				k.storeBias(ks, pa, pb, &c[ci], ldc, &bias[ip*mr])
			case store:
				k.store(ks, pa, pb, &c[ci], ldc)
			default:
				k.add(ks, pa, pb, &c[ci], ldc)
			}
		}
	}
}
