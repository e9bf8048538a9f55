package kernels

import (
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/klauspost/cpuid/v2"

	"github.com/godiffuse/godiffuse/kernels/asm"
)

// Level is an instruction-set level of the CPU kernels.
type Level int

// Levels, from the plain-Go reference up.
const (
	Generic Level = iota // plain Go, the reference
	AVX2                 // AVX2 + FMA
	AVX512               // AVX-512F
)

func (l Level) String() string { return [...]string{"generic", "avx2", "avx512"}[l] }

// ParseLevel reads "generic", "avx2" or "avx512".
func ParseLevel(s string) (Level, error) {
	for l := Generic; l <= AVX512; l++ {
		if strings.EqualFold(s, l.String()) {
			return l, nil
		}
	}
	return 0, fmt.Errorf("unknown CPU level %q (want generic, avx2 or avx512)", s)
}

// MaxLevel is the best level this CPU and build support.
func MaxLevel() Level {
	if !asm.Available {
		return Generic
	}
	switch {
	case cpuid.CPU.Supports(cpuid.AVX512F):
		return AVX512
	case cpuid.CPU.Supports(cpuid.AVX2, cpuid.FMA3):
		return AVX2
	}
	return Generic
}

// Levels lists every level this machine can run, for tests.
func Levels() []Level {
	var out []Level
	for l := Generic; l <= MaxLevel(); l++ {
		out = append(out, l)
	}
	return out
}

// DefaultLevel is MaxLevel unless the environment variable GODIFFUSE_CPU
// (generic, avx2 or avx512) asks for a lower one. A level the CPU lacks is
// refused (LevelNote says so), never executed.
func DefaultLevel() Level { l, _ := defaultLevel(); return l }

// LevelNote explains a GODIFFUSE_CPU that was not followed ("" when there is
// nothing to say); the library does not log, its callers may.
func LevelNote() string { _, note := defaultLevel(); return note }

var defaultLevel = sync.OnceValues(func() (Level, string) {
	best := MaxLevel()
	env := os.Getenv("GODIFFUSE_CPU")
	if env == "" {
		return best, ""
	}
	l, err := ParseLevel(env)
	if err != nil {
		return best, fmt.Sprintf("ignoring GODIFFUSE_CPU (%v), using %s", err, best)
	}
	if l > best {
		return best, fmt.Sprintf("GODIFFUSE_CPU=%s asks for a level this CPU or build lacks, using %s", l, best)
	}
	return l, ""
})

// simd reports whether the vector kernels of package asm run: at the AVX2
// level and above, when the assembly is built in. Every vector path asks
// this (the GEMM asks microKernel).
func (d *Device) simd() bool { return d.level >= AVX2 && asm.Available }

// wide reports whether the 16-lane AVX-512 forms of the elementwise vector
// kernels run (they give the bits of the 8-lane AVX2 forms lane by lane;
// only sums over lanes differ in their order).
func (d *Device) wide() bool { return d.level >= AVX512 && asm.Available }

// vecSplit runs a vector kernel on the longest prefix of n elements it
// covers: the AVX-512 form (wide, from 0) on a multiple of 16, then the
// AVX2 form (narrow, from the given offset) on a multiple of 8 of what is
// left; it returns the prefix length, where the caller's scalar tail starts.
func (d *Device) vecSplit(n int, wide func(), narrow func(lo int)) int {
	k := 0
	if d.wide() {
		wide()
		k = n / 16 * 16
	}
	if d.simd() && n-k >= 8 {
		narrow(k)
		k = n / 8 * 8
	}
	return k
}

// microKernel returns the level's micro-kernel (false at the generic level,
// which has the plain-Go reference GEMM instead).
func (d *Device) microKernel() (microKernel, bool) {
	var mk microKernel
	switch d.level {
	case AVX512:
		mk = kernelAVX512
	case AVX2:
		mk = kernelAVX2
	default:
		return microKernel{}, false
	}
	mk.tune = &d.tune
	return mk, true
}

// gemmA is the A operand of several products: prepacked when the level has
// a packed GEMM, else kept as it is for the reference.
type gemmA struct {
	pre    *prepackedA
	row0   int // g's first row in pre (a slab of its rows: rows)
	transA bool
	m, k   int
	a      []float32
	lda    int
}

// nr is the width of the column panels its products are computed in (16
// for the plain-Go GEMM, whose results do not depend on them): a split of
// the columns at multiples of it leaves every value's sums as they were.
func (g gemmA) nr() int {
	if g.pre != nil {
		return g.pre.mk.nr
	}
	return 16
}

func (d *Device) newGemmA(transA bool, m, k int, a []float32, lda int) gemmA {
	g := gemmA{transA: transA, m: m, k: k, a: a, lda: lda}
	if mk, ok := d.microKernel(); ok {
		g.pre = prepackA(mk, transA, m, k, 1, a, lda)
	}
	return g
}

// rows is rows [i0, i1) of g (prepacked: i0 a multiple of the panel
// height, one row block; see prepackedA.block); all of them is g itself.
func (g gemmA) rows(i0, i1 int) gemmA {
	if i0 == 0 && i1 == g.m {
		return g
	}
	s := g
	s.m = i1 - i0
	switch {
	case g.pre != nil:
		s.row0 = g.row0 + i0
	case g.transA:
		s.a = g.a[i0:]
	default:
		s.a = g.a[i0*g.lda:]
	}
	return s
}

// sgemmA runs C = A·op(B) + β·C with a shared A (α = 1). B with offsets
// (operandB.off) needs the packed GEMM.
func (d *Device) sgemmA(threads int, g gemmA, n int, ob operandB, beta float32, c []float32, ldc int) {
	d.sgemmABias(threads, g, n, ob, beta, nil, c, ldc)
}

// sgemmABias is sgemmA plus a bias per row of C (nil: none; β must be 0).
func (d *Device) sgemmABias(threads int, g gemmA, n int, ob operandB, beta float32, bias, c []float32, ldc int) {
	if g.pre != nil {
		sgemmPrepacked(g.pre, g.row0, g.m, threads, n, 0, ob, beta, bias, c, ldc)
		return
	}
	d.sgemm(threads, gemm{M: g.m, N: n, K: g.k, Alpha: 1, TransA: g.transA, A: g.a, LdA: g.lda, B: ob, Beta: beta, Bias: bias, C: c, LdC: ldc})
}

// gemm describes one product C = α·op(A)·op(B) + β·C on row-major slices:
// op(A) is M×K, op(B) K×N and C M×N, each with its leading dimension (row
// stride). B may be read through row offsets (operandB.off), which needs
// the packed GEMM.
type gemm struct {
	M, N, K     int
	Alpha, Beta float32
	TransA      bool
	A           []float32
	LdA         int
	B           operandB
	C           []float32
	LdC         int
	// PlanM, when not 0, is the M of the whole product this is a slab of
	// rows of: the path (B packed or read in place) is chosen for it, so
	// that every thread count groups the sums the same way.
	PlanM int
	// PlanN, when not 0, is the N of the whole product this is a slab of
	// columns of (a thread's column panels, a band of a convolution's
	// output rows), for the same choice.
	PlanN int
	// Bias, when not nil, is added to row i of C (M values): with Beta 0,
	// C = α·A·op(B) + Bias, the bias the micro-kernels' first values.
	Bias []float32
}

// biasByFill turns a bias into C's prior contents (each row filled with its
// bias, then β = 1), for the paths whose kernels take no bias.
func (g *gemm) biasByFill() {
	if g.Bias == nil {
		return
	}
	for i, v := range g.Bias[:g.M] {
		fillF32(g.C[i*g.LdC:i*g.LdC+g.N], v)
	}
	g.Beta, g.Bias = 1, nil
}

// sgemm runs g at the device's level (the path: PlanGemm).
func (d *Device) sgemm(threads int, g gemm) {
	if mk, ok := d.microKernel(); ok {
		sgemmPacked(mk, threads, g)
		return
	}
	if g.B.off != nil {
		panic("kernels: a B operand with offsets needs the packed GEMM")
	}
	g.biasByFill()
	Sgemm(threads, g.TransA, g.B.trans, g.M, g.N, g.K, g.Alpha, g.A, g.LdA, g.B.b, g.B.ld, g.Beta, g.C, g.LdC)
}
