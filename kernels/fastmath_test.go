package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/godiffuse/godiffuse/kernels/asm"
	"github.com/godiffuse/godiffuse/tensor"
)

func ulps(a, b float32) float64 {
	if a == b {
		return 0
	}
	d := math.Abs(float64(a) - float64(b))
	return d / math.Abs(float64(math.Nextafter32(b, float32(math.Inf(1)))-b))
}

func TestExpfAgainstMathExp(t *testing.T) {
	worst := 0.0
	check := func(x float32) {
		want := float32(math.Exp(float64(x)))
		got := expf(x)
		if math.IsInf(float64(want), 0) || want == 0 {
			if got != want && !(want == 0 && got < 1e-44) {
				t.Fatalf("expf(%g) = %g, want %g", x, got, want)
			}
			return
		}
		if want < 1.2e-38 { // subnormal results: allow the last bits
			if math.Abs(float64(got-want)) > 3e-45 {
				t.Fatalf("expf(%g) = %g, want %g", x, got, want)
			}
			return
		}
		u := ulps(got, want)
		worst = max(worst, u)
		if u > 2 {
			t.Fatalf("expf(%g) = %g, want %g (%.1f ulp)", x, got, want, u)
		}
	}
	for x := float32(-110); x < 90; x += 0.0013 {
		check(x)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		check(float32(r.NormFloat64() * 10))
	}
	for _, x := range []float32{0, -0, 1, -1, expMax, expMin, 88.7, -87.3, float32(math.Inf(1)), float32(math.Inf(-1))} {
		check(x)
	}
	if v := expf(float32(math.NaN())); v == v {
		t.Fatal("expf(NaN) is not NaN")
	}
	t.Logf("worst error %.2f ulp", worst)
}

// TestFastUnaryAgainstReference compares each level's unary and softmax
// kernels with the generic (float64 math.Exp) reference.
func TestFastUnaryAgainstReference(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	n := 40013 // a tail after the 16- and 8-lane loops
	x, dy := randSlice(r, n), randSlice(r, n)
	for i := range x {
		x[i] *= 12
	}
	ref := NewCPULevel(2, Generic)
	for _, level := range Levels()[1:] {
		d := NewCPULevel(2, level)
		for _, op := range []tensor.UnaryOp{tensor.OpSiLU, tensor.OpSigmoid, tensor.OpExp, tensor.OpGELU, tensor.OpTanh} {
			run := func(dev *Device) ([]float32, []float32) {
				y, g := withGuard(dev, n), withGuard(dev, n)
				xb, gb := &Buffer{dev: dev, F: x}, &Buffer{dev: dev, F: dy}
				dev.Unary(op, y, xb, n, tensor.UnaryParams{})
				dev.UnaryBackward(op, g, xb, gb, n, tensor.UnaryParams{})
				checkGuard(t, op.String(), y, n)
				checkGuard(t, op.String(), g, n)
				return y.F[:n], g.F[:n]
			}
			y0, g0 := run(ref)
			y1, g1 := run(d)
			for i := range y0 {
				for _, pair := range [][2]float32{{y1[i], y0[i]}, {g1[i], g0[i]}} {
					if math.Abs(float64(pair[0]-pair[1])) > 2e-6*(1+math.Abs(float64(pair[1]))) {
						t.Fatalf("%s/%s at x=%g: %g, reference %g", level, op, x[i], pair[0], pair[1])
					}
				}
			}
		}
		// Softmax rows of awkward lengths.
		for _, cols := range []int{1, 2, 7, 8, 9, 16, 17, 24, 31, 32, 33, 49, 196, 257} {
			rows := 5
			xs := randSlice(r, rows*cols)
			for i := range xs[:cols] { // a first row of large logits: the max shift matters
				xs[i] *= 60
			}
			y0, y1 := withGuard(ref, rows*cols), withGuard(d, rows*cols)
			p := tensor.SoftmaxParams{Rows: rows, Cols: cols}
			ref.Softmax(y0, &Buffer{dev: ref, F: xs}, p)
			d.Softmax(y1, &Buffer{dev: d, F: xs}, p)
			checkGuard(t, "softmax", y1, rows*cols)
			closeTo(t, "softmax/"+level.String(), y1.F[:rows*cols], y0.F[:rows*cols], 1e-6)
		}
	}
}

// TestSoftmaxColumnsAgainstReference checks each level's softmax down the
// columns (the assembly, 16 or 8 columns a call) against its plain loop:
// the same exp algorithm (the assembly's multiply-adds fused, so within a
// few ulp), the sums in the same order, on every row count that takes the kernels' several-rows-a-step loop and
// its one-row tail, with a column of large logits (the shift matters) and
// a column that is all one value.
func TestSoftmaxColumnsAgainstReference(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 3))
	for _, level := range Levels() {
		d := NewCPULevel(1, level)
		for _, w := range []int{8, 16, 32} {
			for _, rows := range []int{1, 2, 3, 4, 5, 7, 9, 196} {
				s := randSlice(r, rows*w+1)
				for i := range rows {
					s[i*w] *= 80
					s[i*w+w-1] = 3
				}
				s[rows*w] = 42 // guard
				want, wantInv := append([]float32(nil), s[:rows*w]...), make([]float32, w)
				softmaxColumnsFrom(want, rows, w, 0, wantInv)
				inv := make([]float32, w+1)
				inv[w] = 42
				d.softmaxColumns(s, rows, w, inv)
				if s[rows*w] != 42 || inv[w] != 42 {
					t.Fatalf("%v w=%d rows=%d: wrote past the matrix or the sums", level, w, rows)
				}
				const ulps = 4e-7 // relative: about three units in the last place
				for i, v := range want {
					if math.Abs(float64(s[i]-v)) > ulps*math.Abs(float64(v))+1e-38 { // subnormals: a unit apart
						t.Fatalf("%v w=%d rows=%d: s[%d, %d] = %g, reference %g", level, w, rows, i/w, i%w, s[i], v)
					}
				}
				for j, v := range wantInv {
					if math.Abs(float64(inv[j]-v)) > 2*ulps*math.Abs(float64(v)) {
						t.Fatalf("%v w=%d rows=%d: inv[%d] = %g, reference %g", level, w, rows, j, inv[j], v)
					}
				}
				// The reference itself: each column's probabilities sum to one.
				for j := range w {
					var sum float64
					for i := range rows {
						sum += float64(want[i*w+j] * wantInv[j])
					}
					if math.Abs(sum-1) > 1e-5 {
						t.Fatalf("w=%d rows=%d: column %d sums to %g", w, rows, j, sum)
					}
				}
			}
		}
	}
}

// TestExpVecAgainstMathExp checks the vector exp (asm.ExpAVX2 plus the expf
// tail) on every length 0…40 (one vector at a time), on lengths that take
// the kernels' several-vectors-a-step loop (64…) and across [-87, 88], with
// guard cells.
func TestExpVecAgainstMathExp(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for _, level := range Levels() {
		d := NewCPULevel(1, level)
		for _, n := range append(rangeN(41), 64, 67, 100, 133) {
			x := make([]float32, n)
			for i := range x {
				x[i] = -87 + 175*r.Float32()
			}
			y := withGuard(d, n)
			d.expVec(y.F[:n], x)
			checkGuard(t, "expVec", y, n)
			for i, v := range x {
				if u := ulps(y.F[i], float32(math.Exp(float64(v)))); u > 2 {
					t.Fatalf("%s: exp(%g) = %g (%.1f ulp)", level, v, y.F[i], u)
				}
			}
		}
		nan := []float32{1, 2, 3, float32(math.NaN()), 4, 5, 6, 7}
		out := make([]float32, 8)
		d.expVec(out, nan)
		if out[3] == out[3] {
			t.Fatalf("%s: exp(NaN) = %g", level, out[3])
		}
	}
}

// TestFusedSiLUMatchesUnfused checks that the one-pass SiLU kernels give the
// bits of the sequence they replace (negate, vector exp, 1/(1+e), multiply),
// on every length 0…40 and a long one, extremes included.
func TestFusedSiLUMatchesUnfused(t *testing.T) {
	if MaxLevel() < AVX2 {
		t.Skip("no AVX2 here")
	}
	for _, level := range Levels()[AVX2:] {
		t.Run(level.String(), func(t *testing.T) { testFusedSiLU(t, NewCPULevel(1, level)) })
	}
}

// testFusedSiLU is TestFusedSiLUMatchesUnfused at one level (AVX-512: the
// 16-lane kernels, then the 8-lane ones and the scalar tail).
func testFusedSiLU(t *testing.T, d *Device) {
	r := rand.New(rand.NewPCG(11, 11))
	for _, n := range append(rangeN(41), 4099) {
		x, dy := randSlice(r, n), randSlice(r, n)
		for i := range x {
			x[i] *= 30
		}
		extremes := []float32{0, float32(math.Copysign(0, -1)), 100, -100, 88.8, -104, 1e-30, -1e-30}
		for i := 0; i < n && i < len(extremes); i++ {
			x[i] = extremes[i]
		}
		y, dx := withGuard(d, n), withGuard(d, n)
		d.unaryFast(tensor.OpSiLU, y.F[:n], x)
		d.unaryGradFast(tensor.OpSiLU, dx.F[:n], x, dy)
		checkGuard(t, "silu", y, n)
		checkGuard(t, "silu grad", dx, n)
		s := make([]float32, n)
		d.sigmoidVec(s, x)
		for i := range x {
			want, wantGrad := s[i]*x[i], dy[i]*s[i]*(1+x[i]*(1-s[i]))
			if y.F[i] != want || dx.F[i] != wantGrad {
				t.Fatalf("n=%d x=%g: silu %g, unfused %g; grad %g, unfused %g", n, x[i], y.F[i], want, dx.F[i], wantGrad)
			}
		}
	}
}

func rangeN(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// TestExpSameBitsAtEveryWidth checks that the 16-lane exp (its 2^n scaling
// one VSCALEFPS) gives the bits of the 8-lane one (two exact-then-rounding
// multiplies) across the whole clamped range: the subnormal results below
// e^−87.3, the overflow past e^88.7, ±Inf and NaN. (The scalar expf rounds
// n halfway cases up and flushes below −103.97 to 0: not the same bits.)
func TestExpSameBitsAtEveryWidth(t *testing.T) {
	if MaxLevel() < AVX512 {
		t.Skip("no AVX-512 here")
	}
	x := []float32{float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)), -87.33655, 88.72283, 88.7229,
		float32(math.NaN())}
	for v := -110.0; v < 95; v += 0.00731 {
		x = append(x, float32(v))
	}
	x = x[:len(x)/16*16] // whole vectors: no scalar tail
	y8, y16 := make([]float32, len(x)), make([]float32, len(x))
	asm.ExpAVX2(y8, x)
	asm.ExpAVX512(y16, x)
	for i := range x {
		if math.Float32bits(y16[i]) != math.Float32bits(y8[i]) {
			t.Fatalf("exp(%g): 16 lanes %g (%#x), 8 lanes %g (%#x)", x[i], y16[i], math.Float32bits(y16[i]), y8[i], math.Float32bits(y8[i]))
		}
	}
}

// TestAffineSiLUMatchesUnfused checks that a normalization's fused affine map
// and SiLU (one vector pass) gives the bits of affine then SiLU, at every
// level, on every length 0…40 and on lengths past several vectors.
func TestAffineSiLUMatchesUnfused(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 21))
	for _, level := range Levels() {
		d := NewCPULevel(1, level)
		for _, n := range append(rangeN(41), 64, 67, 133, 4099) {
			x := randSlice(r, n)
			a, b := 3*r.Float32()-1.5, 2*r.Float32()-1
			if n > 3 {
				x[0], x[1], x[2] = 40, -40, 0 // σ saturating both ways
			}
			got, want := withGuard(d, n), make([]float32, n)
			d.affineSiLU(got.F[:n], x, a, b)
			checkGuard(t, "affineSiLU", got, n)
			d.affine(want, x, a, b)
			d.unaryRange(tensor.OpSiLU, want, want, tensor.UnaryParams{})
			for i := range want {
				if math.Float32bits(got.F[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%s n=%d x=%g a=%g b=%g: fused %g, affine then SiLU %g", level, n, x[i], a, b, got.F[i], want[i])
				}
			}
		}
	}
}
