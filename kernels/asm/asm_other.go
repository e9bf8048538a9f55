//go:build !amd64 || noasm

package asm

import (
	"unsafe"
)

// Available reports whether the assembly kernels are built in.
const Available = false

func kernelGo(mr, nr, kc int, a, b, c *float32, ldc int, store bool) {
	kernelHGo(mr, mr, nr, kc, a, b, c, ldc, store)
}

// kernelHGo is kernelGo computing only the first h rows of the tile (the
// edge kernels).
func kernelHGo(mr, h, nr, kc int, a, b, c *float32, ldc int, store bool) {
	as := unsafe.Slice(a, kc*mr)
	bs := unsafe.Slice(b, kc*nr)
	cs := unsafe.Slice(c, (h-1)*ldc+nr)
	if store {
		for i := range h {
			clear(cs[i*ldc : i*ldc+nr])
		}
	}
	for p := range kc {
		for i := range h {
			ai := as[p*mr+i]
			for j := range nr {
				cs[i*ldc+j] += ai * bs[p*nr+j]
			}
		}
	}
}

// kernelRowsGo is kernelGo with row p of B at b + off[p].
func kernelRowsGo(mr, nr, kc int, a, b *float32, off *int, c *float32, ldc int, store bool) {
	kernelRowsHGo(mr, mr, nr, kc, a, b, off, c, ldc, store)
}

// kernelRowsHGo is kernelRowsGo computing only the first h rows of the tile.
func kernelRowsHGo(mr, h, nr, kc int, a, b *float32, off *int, c *float32, ldc int, store bool) {
	bs := make([]float32, max(1, kc*nr)) // packed copy, then the packed kernel
	packRowsGo(nr, kc, b, off, &bs[0])
	kernelHGo(mr, h, nr, kc, a, &bs[0], c, ldc, store)
}

// packRowsGo copies the kc rows of nr values from b + off[p] to bp (row p at bp + p·nr).
func packRowsGo(nr, kc int, b *float32, off *int, bp *float32) {
	offs := unsafe.Slice(off, kc)
	end := 0
	for _, o := range offs {
		end = max(end, o+nr)
	}
	src, dst := unsafe.Slice(b, end), unsafe.Slice(bp, kc*nr)
	for p, o := range offs {
		copy(dst[p*nr:(p+1)*nr], src[o:o+nr])
	}
}

// kernelRowsPackGo is the unpacked-B kernel that packs the rows it reads
// to bp, then multiplies them packed.
func kernelRowsPackGo(mr, nr, kc int, a, b *float32, off *int, c *float32, ldc int, bp *float32, store bool) {
	packRowsGo(nr, kc, b, off, bp)
	kernelGo(mr, nr, kc, a, bp, c, ldc, store)
}

// SgemmRowsPackKernelAVX512 is the plain-Go stand-in of the AVX-512
// unpacked-B kernel that packs the rows it reads.
func SgemmRowsPackKernelAVX512(kc int, a, b *float32, off *int, c *float32, ldc int, bp *float32) {
	kernelRowsPackGo(AVX512MR, AVX512NR, kc, a, b, off, c, ldc, bp, false)
}

// SgemmRowsPackKernelAVX512Store is SgemmRowsPackKernelAVX512 storing C.
func SgemmRowsPackKernelAVX512Store(kc int, a, b *float32, off *int, c *float32, ldc int, bp *float32) {
	kernelRowsPackGo(AVX512MR, AVX512NR, kc, a, b, off, c, ldc, bp, true)
}

// SgemmRowsPackKernelAVX2 is the plain-Go stand-in of the AVX2 unpacked-B
// kernel that packs the rows it reads.
func SgemmRowsPackKernelAVX2(kc int, a, b *float32, off *int, c *float32, ldc int, bp *float32) {
	kernelRowsPackGo(AVX2MR, AVX2NR, kc, a, b, off, c, ldc, bp, false)
}

// SgemmRowsPackKernelAVX2Store is SgemmRowsPackKernelAVX2 storing C.
func SgemmRowsPackKernelAVX2Store(kc int, a, b *float32, off *int, c *float32, ldc int, bp *float32) {
	kernelRowsPackGo(AVX2MR, AVX2NR, kc, a, b, off, c, ldc, bp, true)
}

// SgemmRowsKernelAVX512 is the plain-Go stand-in of the AVX-512 unpacked-B kernel.
func SgemmRowsKernelAVX512(kc int, a, b *float32, off *int, c *float32, ldc int) {
	kernelRowsGo(AVX512MR, AVX512NR, kc, a, b, off, c, ldc, false)
}

// SgemmRowsKernelAVX512Store is the plain-Go stand-in of the AVX-512 unpacked-B store kernel.
func SgemmRowsKernelAVX512Store(kc int, a, b *float32, off *int, c *float32, ldc int) {
	kernelRowsGo(AVX512MR, AVX512NR, kc, a, b, off, c, ldc, true)
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

// The assembly kernels below are never called without assembly: package
// kernels runs its plain-Go loops (the specification) whenever Available is
// false. They exist so that the package builds everywhere.

func unreachable(name string) { panic("asm: " + name + " called without the assembly kernels") }

func MaxAVX2(x []float32) float32 {
	unreachable("MaxAVX2")
	return 0
}

func ExpShiftSumAVX2(y, x []float32, m float32) float32 {
	unreachable("ExpShiftSumAVX2")
	return 0
}

func ScaleAVX2(y []float32, s float32) {
	unreachable("ScaleAVX2")
}

func AffineAVX2(dst, src []float32, a, b float32) {
	unreachable("AffineAVX2")
}

func binaryGo(y, a []float32, b func(i int) float32, f func(x, y float32) float32) {
	unreachable("binaryGo")
}

func AddAVX2(y, a, b []float32) {
	unreachable("AddAVX2")
}

func SubAVX2(y, a, b []float32) {
	unreachable("SubAVX2")
}

func MulAVX2(y, a, b []float32) {
	unreachable("MulAVX2")
}

func DivAVX2(y, a, b []float32) {
	unreachable("DivAVX2")
}

func AddScalarAVX2(y, a []float32, b float32) {
	unreachable("AddScalarAVX2")
}

func SubScalarAVX2(y, a []float32, b float32) {
	unreachable("SubScalarAVX2")
}

func MulScalarAVX2(y, a []float32, b float32) {
	unreachable("MulScalarAVX2")
}

func DivScalarAVX2(y, a []float32, b float32) {
	unreachable("DivScalarAVX2")
}

func NormGradAVX2(dx, dy, x []float32, k *[4]float32) {
	unreachable("NormGradAVX2")
}

func ExpAVX2(dst, src []float32) {
	unreachable("ExpAVX2")
}

func AdamAVX2(p, g, m, v []float32, c *[9]float32) {
	unreachable("AdamAVX2")
}

func SiLUAVX2(dst, src []float32) {
	unreachable("SiLUAVX2")
}

func SiLUGradAVX2(dx, x, dy []float32) {
	unreachable("SiLUGradAVX2")
}

func WinoInputAVX2(v *float32, vs int, in *float32, ins int, blocks int) {
	unreachable("WinoInputAVX2")
}

func WinoOutputAVX2(top, bot, m *float32, ms int, blocks int, bias float32) {
	unreachable("WinoOutputAVX2")
}

func WinoDyAVX2(y *float32, ys int, top, bot *float32, blocks int) {
	unreachable("WinoDyAVX2")
}

func WinoWeightGradAVX2(dw *float32, ds int, m *float32, ms int, blocks int) {
	unreachable("WinoWeightGradAVX2")
}

func WinoDy4AVX2(y *float32, ys int, r0, r1, r2, r3 *float32, blocks int) {
	unreachable("WinoDy4AVX2")
}

func WinoWeightGrad4AVX2(dw *float32, ds int, m *float32, ms int, blocks int) {
	unreachable("WinoWeightGrad4AVX2")
}

func WinoWeight2AVX2(u *float32, us int, w *float32, off *int32, blocks int) {
	unreachable("WinoWeight2AVX2")
}

func WinoWeight2FlippedAVX2(u *float32, us int, w *float32, off *int32, blocks int) {
	unreachable("WinoWeight2FlippedAVX2")
}

func WinoWeight4AVX2(u *float32, us int, w *float32, off *int32, blocks int) {
	unreachable("WinoWeight4AVX2")
}

func WinoWeight4FlippedAVX2(u *float32, us int, w *float32, off *int32, blocks int) {
	unreachable("WinoWeight4FlippedAVX2")
}

func GELUAVX2(dst, src []float32) {
	unreachable("GELUAVX2")
}

func GELUGradAVX2(dx, x, dy []float32) {
	unreachable("GELUGradAVX2")
}

func GELUAVX512(dst, src []float32) {
	unreachable("GELUAVX512")
}

func GELUGradAVX512(dx, x, dy []float32) {
	unreachable("GELUGradAVX512")
}

func HalfToFloatAVX2(dst []float32, src []uint16) {
	unreachable("HalfToFloatAVX2")
}

func ExpAVX512(dst, src []float32) {
	unreachable("ExpAVX512")
}

func SiLUAVX512(dst, src []float32) {
	unreachable("SiLUAVX512")
}

func SiLUGradAVX512(dx, x, dy []float32) {
	unreachable("SiLUGradAVX512")
}

func CopyRowsAVX512(dst *float32, dstStride int, src *float32, srcStride, rows, cols int) {
	unreachable("CopyRowsAVX512")
}

func SoftmaxRowAVX512(y, x []float32) {
	unreachable("SoftmaxRowAVX512")
}

func SoftmaxColumnsAVX2(s *float32, rows, ld int, inv *float32) {
	unreachable("SoftmaxColumnsAVX2")
}

func SoftmaxColumnsAVX512(s *float32, rows, ld int, inv *float32) {
	unreachable("SoftmaxColumnsAVX512")
}

func MomentsAVX2(x []float32, k float64) (s, ss float64) {
	unreachable("MomentsAVX2")
	return 0, 0
}

func SumDotAVX2(y, x []float32) (sy, syx float64) {
	unreachable("SumDotAVX2")
	return 0, 0
}

func MomentsAVX512(x []float32, k float64) (s, ss float64) {
	unreachable("MomentsAVX512")
	return 0, 0
}

func SumDotAVX512(y, x []float32) (sy, syx float64) {
	unreachable("SumDotAVX512")
	return 0, 0
}

func AffineSiLUAVX2(dst, src []float32, a, b float32) {
	unreachable("AffineSiLUAVX2")
}

func AffineSiLUAVX512(dst, src []float32, a, b float32) {
	unreachable("AffineSiLUAVX512")
}

func WinoInput4AVX2(v *float32, vs int, in *float32, ins int, blocks int) {
	unreachable("WinoInput4AVX2")
}

func WinoOutput4AVX2(y0, y1, y2, y3, m *float32, ms int, cols int, bias float32) {
	unreachable("WinoOutput4AVX2")
}

// addRowBias adds bias[i] to row i of an mr×nr tile of c.
func addRowBias(mr, nr int, c *float32, ldc int, bias *float32) {
	cs, bs := unsafe.Slice(c, (mr-1)*ldc+nr), unsafe.Slice(bias, mr)
	for i, v := range bs {
		for j := range nr {
			cs[i*ldc+j] += v
		}
	}
}

// SgemmKernelAVX512Bias is the plain-Go stand-in of the store kernel with a bias per row.
func SgemmKernelAVX512Bias(kc int, a, b, c *float32, ldc int, bias *float32) {
	kernelGo(AVX512MR, AVX512NR, kc, a, b, c, ldc, true)
	addRowBias(AVX512MR, AVX512NR, c, ldc, bias)
}

// SgemmKernelAVX2Bias is the plain-Go stand-in of the store kernel with a bias per row.
func SgemmKernelAVX2Bias(kc int, a, b, c *float32, ldc int, bias *float32) {
	kernelGo(AVX2MR, AVX2NR, kc, a, b, c, ldc, true)
	addRowBias(AVX2MR, AVX2NR, c, ldc, bias)
}

// SgemmRowsKernelAVX512Bias is the plain-Go stand-in of the unpacked-B store kernel with a bias per row.
func SgemmRowsKernelAVX512Bias(kc int, a, b *float32, off *int, c *float32, ldc int, bias *float32) {
	kernelRowsGo(AVX512MR, AVX512NR, kc, a, b, off, c, ldc, true)
	addRowBias(AVX512MR, AVX512NR, c, ldc, bias)
}

// SgemmRowsKernelAVX2Bias is the plain-Go stand-in of the unpacked-B store kernel with a bias per row.
func SgemmRowsKernelAVX2Bias(kc int, a, b *float32, off *int, c *float32, ldc int, bias *float32) {
	kernelRowsGo(AVX2MR, AVX2NR, kc, a, b, off, c, ldc, true)
	addRowBias(AVX2MR, AVX2NR, c, ldc, bias)
}

// SgemmKernelAVX512N16 is the plain-Go stand-in of the narrow AVX-512 kernel.
func SgemmKernelAVX512N16(kc int, a, b, c *float32, ldc int) {
	kernelGo(AVX512MR, AVX512NarrowNR, kc, a, b, c, ldc, false)
}

// SgemmKernelAVX512N16Store is the plain-Go stand-in of the narrow AVX-512 store kernel.
func SgemmKernelAVX512N16Store(kc int, a, b, c *float32, ldc int) {
	kernelGo(AVX512MR, AVX512NarrowNR, kc, a, b, c, ldc, true)
}

// SgemmKernelAVX512N16Bias is the plain-Go stand-in of the narrow AVX-512 store kernel with a bias per row.
func SgemmKernelAVX512N16Bias(kc int, a, b, c *float32, ldc int, bias *float32) {
	kernelGo(AVX512MR, AVX512NarrowNR, kc, a, b, c, ldc, true)
	addRowBias(AVX512MR, AVX512NarrowNR, c, ldc, bias)
}

// SgemmRowsKernelAVX512N16 is the plain-Go stand-in of the narrow AVX-512 unpacked-B kernel.
func SgemmRowsKernelAVX512N16(kc int, a, b *float32, off *int, c *float32, ldc int) {
	kernelRowsGo(AVX512MR, AVX512NarrowNR, kc, a, b, off, c, ldc, false)
}

// SgemmRowsKernelAVX512N16Store is the plain-Go stand-in of the narrow AVX-512 unpacked-B store kernel.
func SgemmRowsKernelAVX512N16Store(kc int, a, b *float32, off *int, c *float32, ldc int) {
	kernelRowsGo(AVX512MR, AVX512NarrowNR, kc, a, b, off, c, ldc, true)
}

// SgemmRowsKernelAVX512N16Bias is the plain-Go stand-in of the narrow AVX-512 unpacked-B store kernel with a bias per row.
func SgemmRowsKernelAVX512N16Bias(kc int, a, b *float32, off *int, c *float32, ldc int, bias *float32) {
	kernelRowsGo(AVX512MR, AVX512NarrowNR, kc, a, b, off, c, ldc, true)
	addRowBias(AVX512MR, AVX512NarrowNR, c, ldc, bias)
}

// The edge kernels' plain-Go stand-ins: the tile's first h rows, adding,
// storing and storing with a bias per row, with B packed or read in place.
var (
	SgemmKernelAVX512R4, SgemmKernelAVX512R4Store, SgemmKernelAVX512R4Bias             = edgeGo(AVX512MR, 4, AVX512NR)
	SgemmRowsKernelAVX512R4, SgemmRowsKernelAVX512R4Store, SgemmRowsKernelAVX512R4Bias = edgeRowsGo(AVX512MR, 4, AVX512NR)
	SgemmKernelAVX512R8, SgemmKernelAVX512R8Store, SgemmKernelAVX512R8Bias             = edgeGo(AVX512MR, 8, AVX512NR)
	SgemmRowsKernelAVX512R8, SgemmRowsKernelAVX512R8Store, SgemmRowsKernelAVX512R8Bias = edgeRowsGo(AVX512MR, 8, AVX512NR)

	SgemmKernelAVX512N16R4, SgemmKernelAVX512N16R4Store, SgemmKernelAVX512N16R4Bias             = edgeGo(AVX512MR, 4, AVX512NarrowNR)
	SgemmRowsKernelAVX512N16R4, SgemmRowsKernelAVX512N16R4Store, SgemmRowsKernelAVX512N16R4Bias = edgeRowsGo(AVX512MR, 4, AVX512NarrowNR)
	SgemmKernelAVX512N16R8, SgemmKernelAVX512N16R8Store, SgemmKernelAVX512N16R8Bias             = edgeGo(AVX512MR, 8, AVX512NarrowNR)
	SgemmRowsKernelAVX512N16R8, SgemmRowsKernelAVX512N16R8Store, SgemmRowsKernelAVX512N16R8Bias = edgeRowsGo(AVX512MR, 8, AVX512NarrowNR)

	SgemmKernelAVX2R2, SgemmKernelAVX2R2Store, SgemmKernelAVX2R2Bias             = edgeGo(AVX2MR, 2, AVX2NR)
	SgemmRowsKernelAVX2R2, SgemmRowsKernelAVX2R2Store, SgemmRowsKernelAVX2R2Bias = edgeRowsGo(AVX2MR, 2, AVX2NR)
	SgemmKernelAVX2R4, SgemmKernelAVX2R4Store, SgemmKernelAVX2R4Bias             = edgeGo(AVX2MR, 4, AVX2NR)
	SgemmRowsKernelAVX2R4, SgemmRowsKernelAVX2R4Store, SgemmRowsKernelAVX2R4Bias = edgeRowsGo(AVX2MR, 4, AVX2NR)
)

// edgeGo returns the adding, storing and bias forms of the edge kernel of
// h rows of an mr×nr tile, B packed.
func edgeGo(mr, h, nr int) (add, store func(kc int, a, b, c *float32, ldc int), bias func(kc int, a, b, c *float32, ldc int, bias *float32)) {
	add = func(kc int, a, b, c *float32, ldc int) { kernelHGo(mr, h, nr, kc, a, b, c, ldc, false) }
	store = func(kc int, a, b, c *float32, ldc int) { kernelHGo(mr, h, nr, kc, a, b, c, ldc, true) }
	bias = func(kc int, a, b, c *float32, ldc int, bias *float32) {
		kernelHGo(mr, h, nr, kc, a, b, c, ldc, true)
		addRowBias(h, nr, c, ldc, bias)
	}
	return add, store, bias
}

// edgeRowsGo is edgeGo with row p of B at b + off[p].
func edgeRowsGo(mr, h, nr int) (add, store func(kc int, a, b *float32, off *int, c *float32, ldc int), bias func(kc int, a, b *float32, off *int, c *float32, ldc int, bias *float32)) {
	add = func(kc int, a, b *float32, off *int, c *float32, ldc int) {
		kernelRowsHGo(mr, h, nr, kc, a, b, off, c, ldc, false)
	}
	store = func(kc int, a, b *float32, off *int, c *float32, ldc int) {
		kernelRowsHGo(mr, h, nr, kc, a, b, off, c, ldc, true)
	}
	bias = func(kc int, a, b *float32, off *int, c *float32, ldc int, bias *float32) {
		kernelRowsHGo(mr, h, nr, kc, a, b, off, c, ldc, true)
		addRowBias(h, nr, c, ldc, bias)
	}
	return add, store, bias
}

// convDirectGo is the plain-Go stand-in of the direct 3×3 kernels: 16
// output channels of a rows × width tile (see ConvDirect3x3AVX512W7R4).
func convDirectGo(width, rows int, x *float32, rs, cs, c int, w, bias, y *float32, ys *int32, lanes uint16, valid int) {
	xs := unsafe.Slice(x, max(0, c-1)*cs+(rows+1)*rs+width+2)
	ws := unsafe.Slice(w, c*9*16)
	bs := unsafe.Slice(bias, 16)
	offs := unsafe.Slice(ys, 16)
	for j := range 16 {
		if lanes&(1<<j) == 0 {
			continue
		}
		yj := unsafe.Slice((*float32)(unsafe.Add(unsafe.Pointer(y), 4*int(offs[j]))), min(rows, valid)*width)
		for r := range min(rows, valid) {
			for px := range width {
				s := bs[j]
				for ch := range c {
					for t := range 9 {
						s += ws[(ch*9+t)*16+j] * xs[ch*cs+(r+t/3)*rs+px+t%3]
					}
				}
				yj[r*width+px] = s
			}
		}
	}
}

// ConvDirect3x3AVX512W4R4 is the plain-Go stand-in of the direct 3×3 kernel of a 4×4 tile.
func ConvDirect3x3AVX512W4R4(x *float32, rs, cs, c int, w, bias, y *float32, ys *int32, lanes uint16, rows int) {
	convDirectGo(4, 4, x, rs, cs, c, w, bias, y, ys, lanes, rows)
}

// ConvDirect3x3AVX512W7R4 is the plain-Go stand-in of the direct 3×3 kernel of a 4×7 tile.
func ConvDirect3x3AVX512W7R4(x *float32, rs, cs, c int, w, bias, y *float32, ys *int32, lanes uint16, rows int) {
	convDirectGo(7, 4, x, rs, cs, c, w, bias, y, ys, lanes, rows)
}

// ConvDirect3x3AVX512W7R3 is the plain-Go stand-in of the direct 3×3 kernel of a 3×7 tile.
func ConvDirect3x3AVX512W7R3(x *float32, rs, cs, c int, w, bias, y *float32, ys *int32, lanes uint16, rows int) {
	convDirectGo(7, 3, x, rs, cs, c, w, bias, y, ys, lanes, rows)
}

func PackA12AVX2(dst, a *float32, lda, blocks int) {
	if blocks <= 0 {
		return
	}
	d := unsafe.Slice(dst, 96*blocks)
	s := unsafe.Slice(a, 11*lda+8*blocks)
	for p := range 8 * blocks {
		for r := range 12 {
			d[12*p+r] = s[r*lda+p]
		}
	}
}

func ConvTapsAVX2(y *float32, n int, x *float32, off *int, w *float32, taps int, bias float32) {
	unreachable("ConvTapsAVX2")
}

func ConvTapsAVX512(y *float32, n int, x *float32, off *int, w *float32, taps int, bias float32) {
	unreachable("ConvTapsAVX512")
}

func DotRows4AVX2(groups int, w *float32, ldw int, x *float32, k int, y *float32) {
	unreachable("DotRows4AVX2")
}

func DotRows4AVX512(groups int, w *float32, ldw int, x *float32, k int, y *float32) {
	unreachable("DotRows4AVX512")
}

func DownRowsAVX512(d0, d1, d2 *float32, ds int, src *float32, ss, rows int, load, shifted uint32, store uint16) {
	unreachable("DownRowsAVX512")
}

// PackATAVX512 is the plain-Go stand-in of the transposed panel packing.
func PackATAVX512(dst *float32, mr int, src *float32, lda, kc, rows int, alpha float32) {
	if kc == 0 {
		return
	}
	d := unsafe.Slice(dst, kc*mr)
	s := unsafe.Slice(src, (kc-1)*lda+rows)
	for p := range kc {
		for r := range mr {
			d[p*mr+r] = 0
			if r < rows {
				d[p*mr+r] = alpha * s[p*lda+r]
			}
		}
	}
}

// panelDotGo is the plain-Go stand-in of the four-panel column products:
// panels of mr rows, y holding lanes values a panel.
func panelDotGo(mr, lanes, kc int, a [4]*float32, x *float32, xs int, y *float32) {
	ys := unsafe.Slice(y, 4*lanes)
	for q, a := range a {
		as := unsafe.Slice(a, kc*mr)
		for r := range lanes {
			var s float32
			if r < mr {
				for p := range kc {
					s += as[p*mr+r] * *(*float32)(unsafe.Add(unsafe.Pointer(x), 4*p*xs))
				}
			}
			ys[lanes*q+r] = s
		}
	}
}

// PanelDot4AVX512 is the plain-Go stand-in of the four-panel column product.
func PanelDot4AVX512(kc int, a0, a1, a2, a3, x *float32, xs int, y *float32) {
	panelDotGo(AVX512MR, 16, kc, [4]*float32{a0, a1, a2, a3}, x, xs, y)
}

// PanelDot4AVX2 is the plain-Go stand-in of the four-panel column product at AVX2.
func PanelDot4AVX2(kc int, a0, a1, a2, a3, x *float32, xs int, y *float32) {
	panelDotGo(AVX2MR, 8, kc, [4]*float32{a0, a1, a2, a3}, x, xs, y)
}
