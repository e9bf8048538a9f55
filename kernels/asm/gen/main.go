// Command gen writes kernels/asm/asm_amd64.s and its Go stubs with avo.
// It lives in a module of its own so that avo stays out of the library's
// import graph. Run it through `go generate ./kernels/asm`.
//
// Each kernel is a GEMM micro-kernel in the GotoBLAS/BLIS sense: it adds the
// product of a packed MR×kc panel of A and a packed kc×NR panel of B to an
// MR×NR tile of row-major C, keeping the whole tile in vector registers:
//
//	for p := 0; p < kc; p++ {          // a: MR values per p, b: NR values per p
//		for i := 0; i < MR; i++ {
//			for j := 0; j < NR; j++ {
//				C[i*ldc+j] += a[p*MR+i] * b[p*NR+j]
//			}
//		}
//	}
//
// Per p it loads NR/lanes vectors of B once, broadcasts each of the MR
// values of A, and issues MR·NR/lanes fused multiply-adds into the
// accumulators, so every load feeds several FMAs.
package main

import (
	"fmt"
	"strings"

	"github.com/mmcloughlin/avo/gotypes"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// packAhead is how many steps p ahead the packing kernels prefetch B's rows.
const packAhead = 16

// kernel describes one micro-kernel.
type kernel struct {
	name  string
	store bool // C = A·B instead of C += A·B (no load of C)
	bias  bool // with store: C = A·B + bias[i] in row i (bias: mr values)
	rows  bool // B unpacked: row p of the kc×NR panel starts at b + off[p] (elements)
	rowsA bool // A unpacked: row i of the MR×kc panel starts at a + off[i] (elements)
	// packOut (with rows): each row of B read is also stored to the packed
	// panel bp (NR values per step p), so that the product that reads a B
	// panel first packs it for the products after it at no pass of its own.
	packOut bool
	isa     string
	mr, nr  int // tile rows and columns
	// height, when not 0, is the number of the tile's first rows the kernel
	// computes and writes (an edge kernel, for the last panel of a product
	// whose M is not a multiple of mr): A is still packed mr values a step.
	height int
	edges  []int // the heights of the edge kernels generated beside it
	lanes  int   // float32 lanes per vector register
	vec    func() VecVirtual
}

func main() {
	ConstraintExpr("amd64,!noasm")
	// Packed and unpacked-B (row offsets) kernels at both widths, each
	// adding to C, storing, and storing with a bias per row; and their edge
	// kernels, computing only the first 4 or 8 of the AVX-512 tile's 12 rows
	// (2 or 4 of the AVX2 tile's 6): 32, 64 and 128 channels leave 8, 4 and
	// 8 rows in their last panel (2, 4 and 2), which the full kernel
	// computed into a scratch tile, a third to two thirds of it thrown away.
	edges512, edges2 := []int{4, 8}, []int{2, 4}
	for _, k := range []kernel{
		{name: "SgemmKernelAVX512", isa: "AVX-512F", mr: 12, nr: 32, lanes: 16, vec: ZMM, edges: edges512},
		{name: "SgemmKernelAVX2", isa: "AVX2+FMA", mr: 6, nr: 16, lanes: 8, vec: YMM, edges: edges2},
		{name: "SgemmRowsKernelAVX512", rows: true, isa: "AVX-512F", mr: 12, nr: 32, lanes: 16, vec: ZMM, edges: edges512},
		{name: "SgemmRowsKernelAVX2", rows: true, isa: "AVX2+FMA", mr: 6, nr: 16, lanes: 8, vec: YMM, edges: edges2},
		// The narrow AVX-512 tile, one vector wide, for products of at most
		// 16 columns (a head of 16 channels, the 16 tiles of an 8×8 image):
		// the full tile would compute as many columns again and throw them away.
		{name: "SgemmKernelAVX512N16", isa: "AVX-512F", mr: 12, nr: 16, lanes: 16, vec: ZMM, edges: edges512},
		{name: "SgemmRowsKernelAVX512N16", rows: true, isa: "AVX-512F", mr: 12, nr: 16, lanes: 16, vec: ZMM, edges: edges512},
	} {
		generateVariants(k)
		for _, h := range k.edges {
			e := k
			e.name, e.height = fmt.Sprintf("%sR%d", k.name, h), h
			generateVariants(e)
		}
	}
	// The unpacked-B kernels that pack the panel they read, adding and
	// storing (the first row of tiles of a depth block without bias).
	for _, packing := range []kernel{
		{name: "SgemmRowsPackKernelAVX512", rows: true, packOut: true, isa: "AVX-512F", mr: 12, nr: 32, lanes: 16, vec: ZMM},
		{name: "SgemmRowsPackKernelAVX2", rows: true, packOut: true, isa: "AVX2+FMA", mr: 6, nr: 16, lanes: 8, vec: YMM},
	} {
		generate(packing)
		packing.name, packing.store = packing.name+"Store", true
		generate(packing)
	}
	// The unpacked-A kernels, AVX2 only: at 12 rows the AVX-512 tile's row
	// offsets would need more general registers than amd64 has.
	rowsA := kernel{name: "SgemmRowsAKernelAVX2", rowsA: true, isa: "AVX2+FMA", mr: 6, nr: 16, lanes: 8, vec: YMM}
	generate(rowsA)
	rowsA.name += "Store"
	rowsA.store = true
	generate(rowsA)
	declareExpConsts()
	generateExp()
	generateSiLU()
	generateGELU()
	generateHalf()
	generateAdam()
	generatePackA6()
	generatePackBT8()
	generatePackA12()
	generatePackAT()
	generateCopyRows()
	generateDownRows()
	generateSoftmax()
	generateSoftmaxRow()
	generateSoftmaxColumns()
	generateAffine()
	generateBinary()
	generateNormGrad()
	generateMoments()
	generateSumDot()
	generateGemv()
	generatePanelDot()
	declareWino4Consts() // the F(4×4) constants; the F(2×2) output transform takes its store masks too
	generateWinoInput()
	generateWinoOutput()
	generateWinoDy()
	generateWinoWeightGrad()
	declareWinoWeightConsts()
	for _, m := range []int{2, 4} {
		generateWinoWeights(m, false)
		generateWinoWeights(m, true)
	}
	generateWinoInput4()
	generateWinoOutput4()
	generateWinoDy4()
	generateWinoWeightGrad4()
	generateConvDirect()
	generateConvTaps()
	Generate()
}

// generateVariants generates k adding to C, storing, and storing with a
// bias per row.
func generateVariants(k kernel) {
	generate(k)
	name := k.name
	k.name, k.store = name+"Store", true
	generate(k)
	k.name, k.bias = name+"Bias", true
	generate(k)
}

func generate(k kernel) {
	verb := "adds the product of"
	h := k.mr // rows computed
	if k.height > 0 {
		h = k.height
	}
	doc := func(lines ...string) {
		if k.height > 0 {
			lines = append(lines, fmt.Sprintf("Edge kernel: only the first %d rows of the tile are computed and written (a is still packed %d values a step).", h, k.mr))
		}
		Doc(lines...)
	}
	if k.store {
		verb = "stores (without reading c) the product of"
	}
	switch {
	case k.rowsA:
		TEXT(k.name, NOSPLIT, "func(kc int, a *float32, off *int, b, c *float32, ldc int)")
		Pragma("noescape")
		doc(fmt.Sprintf("%s %s the %d×kc block of A whose row i is the kc values from a + off[i]", k.name, verb, k.mr),
			fmt.Sprintf("(elements; A is never packed) and a packed kc×%d panel b to the %d×%d tile of row-major c", k.nr, k.mr, k.nr),
			fmt.Sprintf("with row stride ldc (elements). %s.", k.isa))
	case k.rows && k.bias:
		TEXT(k.name, NOSPLIT, "func(kc int, a, b *float32, off *int, c *float32, ldc int, bias *float32)")
		Pragma("noescape")
		doc(fmt.Sprintf("%s stores (without reading c) bias[i] plus the product of a packed %d×kc panel a and the", k.name, k.mr),
			fmt.Sprintf("kc×%d block of B whose row p is the %d values from b + off[p] (elements; B is never packed)", k.nr, k.nr),
			fmt.Sprintf("in row i of the %d×%d tile of row-major c with row stride ldc (elements). %s.", k.mr, k.nr, k.isa))
	case k.bias:
		TEXT(k.name, NOSPLIT, "func(kc int, a, b, c *float32, ldc int, bias *float32)")
		Pragma("noescape")
		doc(fmt.Sprintf("%s stores (without reading c) bias[i] plus the product of a packed %d×kc panel a", k.name, k.mr),
			fmt.Sprintf("and a packed kc×%d panel b in row i of the %d×%d tile of row-major c with row stride ldc", k.nr, k.mr, k.nr),
			fmt.Sprintf("(elements). %s.", k.isa))
	case k.packOut:
		TEXT(k.name, NOSPLIT, "func(kc int, a, b *float32, off *int, c *float32, ldc int, bp *float32)")
		Pragma("noescape")
		doc(fmt.Sprintf("%s is %s, and stores each row of B it reads to the packed panel bp", k.name, strings.Replace(k.name, "RowsPack", "Rows", 1)),
			fmt.Sprintf("(bp[%d·p + j] = b[off[p] + j]); off has %d entries past kc (rows it prefetches). %s.", k.nr, packAhead, k.isa))
	case k.rows:
		TEXT(k.name, NOSPLIT, "func(kc int, a, b *float32, off *int, c *float32, ldc int)")
		Pragma("noescape")
		doc(fmt.Sprintf("%s %s a packed %d×kc panel a and the kc×%d block of B whose row p is the %d", k.name, verb, k.mr, k.nr, k.nr),
			fmt.Sprintf("values from b + off[p] (elements; B is never packed) to the %d×%d tile of row-major c", k.mr, k.nr),
			fmt.Sprintf("with row stride ldc (elements). %s.", k.isa))
	default:
		TEXT(k.name, NOSPLIT, "func(kc int, a, b, c *float32, ldc int)")
		Pragma("noescape")
		doc(fmt.Sprintf("%s %s a packed %d×kc panel a and a packed kc×%d panel b", k.name, verb, k.mr, k.nr),
			fmt.Sprintf("to the %d×%d tile of row-major c with row stride ldc (elements). %s.", k.mr, k.nr, k.isa))
	}
	nv := k.nr / k.lanes // vectors per row of the tile
	kc := Load(Param("kc"), GP64())
	a := Load(Param("a"), GP64())
	b := Load(Param("b"), GP64())
	var off, bp Register
	if k.rows {
		off = Load(Param("off"), GP64())
	}
	if k.packOut {
		bp = Load(Param("bp"), GP64())
	}
	var aRow []Register // the MR row offsets of A, in bytes
	if k.rowsA {
		po := Load(Param("off"), GP64())
		for i := range k.mr {
			r := GP64()
			MOVQ(Mem{Base: po, Disp: 8 * i}, r)
			SHLQ(U8(2), r)
			aRow = append(aRow, r)
		}
	}
	c := Load(Param("c"), GP64())
	ldc := Load(Param("ldc"), GP64())
	SHLQ(U8(2), ldc) // elements -> bytes

	Comment("Prefetch the tile of C (every cache line of each row), which is read or written",
		"only at the end: the loads have the whole k loop to arrive.")
	pc := GP64()
	MOVQ(c, pc)
	for i := range h {
		for off := 0; off < 4*k.nr; off += 64 {
			PREFETCHT0(Mem{Base: pc, Disp: off})
		}
		PREFETCHT0(Mem{Base: pc, Disp: 4*k.nr - 4}) // the last line when the row is not aligned
		if i < h-1 {
			ADDQ(ldc, pc)
		}
	}

	// The next tile down (rows mr … 2mr−1 from c) is what runTiles hands
	// the next call: one of its rows is prefetched per iteration of the main
	// loop, pn cycling through its mr rows. C's tiles were the loop's one
	// cost beyond the multiply-adds (the same loop on one tile of C ran 8 %
	// faster); spread like this the next tile arrives in time, where a
	// second burst at the start measured slower (bench/RESULTS.md,
	// 2026-12-04 late). The unpacked-A kernels have no registers left for it,
	// and an edge kernel's tile is the last of its column panel.
	nextTile := !k.rowsA && k.height == 0
	var pn, pend, pstart Register
	if nextTile {
		pn, pend, pstart = GP64(), GP64(), GP64()
		ADDQ(ldc, pc)
		MOVQ(pc, pn)
		MOVQ(pc, pstart)
		MOVQ(ldc, pend)
		IMUL3Q(U8(byte(k.mr)), pend, pend)
		ADDQ(pc, pend)
	}

	acc := make([][]VecVirtual, h)
	var bias Register
	if k.bias {
		Comment(fmt.Sprintf("The %d×%d tile of C lives in %d accumulators, each row starting at its bias.", h, k.nr, h*nv))
		bias = Load(Param("bias"), GP64())
	} else {
		Comment(fmt.Sprintf("The %d×%d tile of C lives in %d accumulators, zeroed here.", h, k.nr, h*nv))
	}
	for i := range acc {
		acc[i] = make([]VecVirtual, nv)
		for j := range acc[i] {
			acc[i][j] = k.vec()
			switch {
			case k.bias && j == 0:
				VBROADCASTSS(Mem{Base: bias, Disp: 4 * i}, acc[i][0])
			case k.bias:
				VMOVAPS(acc[i][0], acc[i][j])
			case k.lanes == 16:
				VPXORD(acc[i][j], acc[i][j], acc[i][j]) // AVX-512F (VXORPS on ZMM would need DQ)
			default:
				VXORPS(acc[i][j], acc[i][j], acc[i][j])
			}
		}
	}
	// step emits one step p at byte offsets (da, db) from a and b (db: from
	// off when B comes by rows).
	step := func(da, db int) {
		bv := make([]VecVirtual, nv)
		row := Mem{Base: b}
		dbp := 0 // byte offset of this step's row in bp (packOut)
		if k.rows {
			r := GP64()
			MOVQ(Mem{Base: off, Disp: db}, r)
			row = Mem{Base: b, Index: r, Scale: 4}
			dbp = db / 8 * 4 * k.nr
			if k.packOut {
				// The row packAhead steps on, on its way from L3: the rows
				// are a matrix row apart, too far for the prefetchers (off
				// holds packAhead entries past kc).
				ra := GP64()
				MOVQ(Mem{Base: off, Disp: db + 8*packAhead}, ra)
				for d := 0; d < 4*k.nr; d += 64 {
					PREFETCHT0(Mem{Base: b, Index: ra, Scale: 4, Disp: d})
				}
			}
			db = 0
		}
		for j := range bv {
			bv[j] = k.vec()
			m := row
			m.Disp = db + 4*k.lanes*j
			VMOVUPS(m, bv[j])
			if k.packOut {
				VMOVUPS(bv[j], Mem{Base: bp, Disp: dbp + 4*k.lanes*j})
			}
		}
		for i := range h {
			t := k.vec()
			if k.rowsA {
				VBROADCASTSS(Mem{Base: a, Index: aRow[i], Scale: 1, Disp: da}, t)
			} else {
				VBROADCASTSS(Mem{Base: a, Disp: da + 4*i}, t)
			}
			for j := range nv {
				VFMADD231PS(bv[j], t, acc[i][j])
			}
		}
	}
	const unroll = 4
	Comment(fmt.Sprintf("Main loop, %d steps p per iteration. One step: load the %d values of B's row p,", unroll, k.nr),
		fmt.Sprintf("then broadcast each of the %d values of A's column p and multiply-add it into that", h),
		"row of accumulators.")
	n4 := GP64()
	MOVQ(kc, n4)
	SHRQ(U8(2), n4)
	JZ(LabelRef(k.name + "_tail"))
	Label(k.name + "_loop4")
	bStep := 4 * k.nr // bytes per step p: of b, or of off (8) when B comes by rows
	bPtr := b
	if k.rows {
		bStep, bPtr = 8, off
	}
	aStep := 4 * k.mr // bytes per step p of a; 4 when A comes by rows
	if k.rowsA {
		aStep = 4
	}
	for u := range unroll {
		step(aStep*u, bStep*u)
	}
	if nextTile {
		for off := 0; off < 4*k.nr; off += 64 {
			PREFETCHT0(Mem{Base: pn, Disp: off})
		}
		PREFETCHT0(Mem{Base: pn, Disp: 4*k.nr - 4})
		ADDQ(ldc, pn)
		CMPQ(pn, pend)
		CMOVQEQ(pstart, pn)
	}
	ADDQ(U32(aStep*unroll), a)
	ADDQ(U32(bStep*unroll), bPtr)
	if k.packOut {
		ADDQ(U32(4*k.nr*unroll), bp)
	}
	DECQ(n4)
	JNZ(LabelRef(k.name + "_loop4"))

	Label(k.name + "_tail")
	Comment("The remaining kc mod 4 steps.")
	ANDQ(U32(unroll-1), kc)
	JZ(LabelRef(k.name + "_store"))
	Label(k.name + "_loop1")
	step(0, 0)
	ADDQ(U32(aStep), a)
	ADDQ(U32(bStep), bPtr)
	if k.packOut {
		ADDQ(U32(4*k.nr), bp)
	}
	DECQ(kc)
	JNZ(LabelRef(k.name + "_loop1"))

	Label(k.name + "_store")
	if k.store {
		Comment("C = accumulators, one row of the tile at a time.")
	} else {
		Comment("C += accumulators, one row of the tile at a time.")
	}
	for i := range h {
		for j := range nv {
			m := Mem{Base: c, Disp: 4 * k.lanes * j}
			if !k.store {
				VADDPS(m, acc[i][j], acc[i][j])
			}
			VMOVUPS(acc[i][j], m)
		}
		if i < h-1 {
			ADDQ(ldc, c)
		}
	}
	VZEROUPPER()
	RET()
}

// paramMem is the stack address of a scalar argument or result. The kernels
// move floats in and out with VEX instructions only (VBROADCASTSS, VMOVSS,
// VMOVSD): avo's Load and Store would emit legacy-SSE MOVSS/MOVSD, and a
// legacy-SSE instruction while the upper halves of the vector registers are
// dirty costs a state transition on some CPUs — about 300 ns per call of
// the AVX-512 softmax kernel (then ExpShiftSumAVX512) on the 2-vCPU Xeon of
// bench/RESULTS.md (2026-12-03, late), three times the kernel's own time on
// a 196-key softmax row.
func paramMem(c gotypes.Component) Mem {
	b, err := c.Resolve()
	if err != nil {
		panic(err)
	}
	return b.Addr
}
