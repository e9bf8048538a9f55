package metrics

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// The reference values in testdata/reference.json were computed with
// numpy/scipy by testdata/make_reference.py, independently of this code.
type refCase struct {
	X, Y       [][]float64
	FD         float64
	FDEig      float64     `json:"fd_eig"`
	FDExact    float64     `json:"fd_exact"`
	MuX        []float64   `json:"mu_x"`
	SigmaX     [][]float64 `json:"sigma_x"`
	Probs      [][]float64
	Splits     int
	Mean, Std  float64
	MMD2       float64
	Real, Fake [][]float64
	K          int
	Precision  float64
	Recall     float64
}

func loadRef(t *testing.T) map[string]refCase {
	t.Helper()
	raw, err := os.ReadFile("testdata/reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]refCase
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func feats(rows [][]float64) *Features {
	f := &Features{N: len(rows), D: len(rows[0])}
	for _, r := range rows {
		f.Data = append(f.Data, r...)
	}
	return f
}

func mustStats(t *testing.T, rows [][]float64) *Stats {
	t.Helper()
	s, err := ComputeStats("test", feats(rows))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func relClose(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if d := math.Abs(got-want) / math.Max(math.Abs(want), 1e-300); d > tol || math.IsNaN(got) {
		t.Errorf("%s = %.15g, want %.15g (relative error %.2g > %.2g)", what, got, want, d, tol)
	}
}

func TestStatsMatchNumpy(t *testing.T) {
	c := loadRef(t)["fd"]
	s := mustStats(t, c.X)
	d := s.Dim()
	for i := range d {
		relClose(t, "mu", s.Mu[i], c.MuX[i], 1e-12)
		for j := range d {
			if math.Abs(s.Sigma[i*d+j]-c.SigmaX[i][j]) > 1e-13 {
				t.Fatalf("sigma[%d][%d] = %g, numpy.cov %g", i, j, s.Sigma[i*d+j], c.SigmaX[i][j])
			}
		}
	}
}

func TestFrechetDistanceMatchesReference(t *testing.T) {
	ref := loadRef(t)
	for _, name := range []string{"fd", "fd_illcond", "fd_singular"} {
		c := ref[name]
		a, b := mustStats(t, c.X), mustStats(t, c.Y)
		got, err := FrechetDistance(a, b)
		if err != nil {
			t.Fatal(err)
		}
		if c.FDExact != 0 {
			// Condition number 1e10, and rank 9 in 24-D: scipy's sqrtm
			// (pytorch-fid's route) is off by 9e-10 and 2e-8 relative here,
			// numpy's eigvals by 5e-10 and 2e-8; we must match the 50-digit
			// value to 1e-12.
			relClose(t, name+" vs mpmath", got, c.FDExact, 1e-12)
			relClose(t, name+" vs scipy sqrtm", got, c.FD, 5e-8)
		} else {
			// Well conditioned: scipy's sqrtm and numpy's eigvals agree to
			// 1e-15, and so must we.
			relClose(t, name+" vs scipy sqrtm", got, c.FD, 1e-12)
			relClose(t, name+" vs eigvals", got, c.FDEig, 1e-12)
		}
		self, err := FrechetDistance(a, a)
		if err != nil {
			t.Fatal(err)
		}
		// FD(a, a) = 2 tr Σ − 2 tr Σ: zero up to the rounding of tr Σ.
		var tr float64
		for i := range a.Dim() {
			tr += a.Sigma[i*a.Dim()+i]
		}
		if math.Abs(self) > 1e-12*tr {
			t.Errorf("%s: FD of a set with itself = %g (tr Σ = %g)", name, self, tr)
		}
	}
}

// For commuting (here diagonal) covariances the trace term has a closed form,
// Σᵢ √(aᵢ bᵢ), which also covers exactly singular matrices.
func TestTraceSqrtDiagonalExact(t *testing.T) {
	a := []float64{4, 0, 1e-12, 9, 2.5}
	b := []float64{1, 7, 1e-4, 0, 3}
	d := len(a)
	s1, s2 := make([]float64, d*d), make([]float64, d*d)
	var want float64
	for i := range d {
		s1[i*d+i], s2[i*d+i] = a[i], b[i]
		want += math.Sqrt(a[i] * b[i])
	}
	// Rotate both by the same orthogonal matrix so the routine sees dense
	// matrices: tr √(Q A Qᵀ Q B Qᵀ) = tr √(AB).
	q := randomOrthogonal(d, 7)
	got, err := TraceSqrtProduct(d, rotate(q, s1, d), rotate(q, s2, d))
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(got-want) > 1e-7*want {
		t.Errorf("tr √(Σ₁Σ₂) = %.12g, want %.12g", got, want)
	}
}

func randomOrthogonal(d int, seed uint64) []float64 {
	r := rand.New(rand.NewPCG(seed, 1))
	q := make([]float64, d*d)
	for i := range q {
		q[i] = r.NormFloat64()
	}
	// Gram–Schmidt on the rows.
	for i := range d {
		row := q[i*d : (i+1)*d]
		for j := range i {
			prev := q[j*d : (j+1)*d]
			var dot float64
			for k := range d {
				dot += row[k] * prev[k]
			}
			for k := range d {
				row[k] -= dot * prev[k]
			}
		}
		var n float64
		for _, v := range row {
			n += v * v
		}
		for k := range row {
			row[k] /= math.Sqrt(n)
		}
	}
	return q
}

func rotate(q, a []float64, d int) []float64 { // Q A Qᵀ
	tmp, out := make([]float64, d*d), make([]float64, d*d)
	for i := range d {
		for j := range d {
			for k := range d {
				tmp[i*d+j] += q[i*d+k] * a[k*d+j]
			}
		}
	}
	for i := range d {
		for j := range d {
			for k := range d {
				out[i*d+j] += tmp[i*d+k] * q[j*d+k]
			}
		}
	}
	return out
}

func TestInceptionScoreMatchesNumpy(t *testing.T) {
	c := loadRef(t)["is"]
	mean, std, err := InceptionScore(feats(c.Probs), c.Splits)
	if err != nil {
		t.Fatal(err)
	}
	relClose(t, "IS mean", mean, c.Mean, 1e-12)
	relClose(t, "IS std", std, c.Std, 1e-10)
	// One certain class per sample, all classes equally often: IS = #classes.
	k := 4
	p := &Features{N: 8, D: k, Data: make([]float64, 8*k)}
	for i := range 8 {
		p.Data[i*k+i%k] = 1
	}
	if m, _, _ := InceptionScore(p, 1); math.Abs(m-float64(k)) > 1e-12 {
		t.Errorf("IS of confident balanced predictions = %g, want %d", m, k)
	}
}

func TestKIDMatchesNumpy(t *testing.T) {
	c := loadRef(t)["kid"]
	x, y := feats(c.X), feats(c.Y)
	relClose(t, "MMD²", MMD2Unbiased(x, y), c.MMD2, 1e-11)
	// Subsets of the smaller set's full size from the larger one are random;
	// with one subset each as large as the sets, KID is the full MMD².
	m, s, err := KID(x, subset(y, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}), KIDOptions{Subsets: 1, SubsetSize: 10})
	if err != nil || s != 0 || math.IsNaN(m) {
		t.Fatalf("KID = %g ± %g, %v", m, s, err)
	}
	// Two samples of one distribution: KID ≈ 0 within its spread; a shifted
	// distribution: clearly positive.
	r := rand.New(rand.NewPCG(3, 4))
	gauss := func(n int, shift float64) *Features {
		f := &Features{N: n, D: 8, Data: make([]float64, n*8)}
		for i := range f.Data {
			f.Data[i] = r.NormFloat64() + shift
		}
		return f
	}
	a, b, far := gauss(400, 0), gauss(400, 0), gauss(400, 0.5)
	same, sameStd, err := KID(a, b, KIDOptions{Subsets: 20, SubsetSize: 200, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	shifted, _, _ := KID(a, far, KIDOptions{Subsets: 20, SubsetSize: 200, Seed: 1})
	if math.Abs(same) > 3*sameStd+1e-3 || shifted < 10*math.Abs(same) || shifted < 0.05 {
		t.Errorf("KID same distribution %g ± %g, shifted by 0.5: %g", same, sameStd, shifted)
	}
	if _, _, err := KID(x, y, KIDOptions{Subsets: 3, SubsetSize: 55}); err == nil {
		t.Error("a subset larger than the 50-sample set was accepted")
	}
}

func TestPrecisionRecallMatchesNumpy(t *testing.T) {
	c := loadRef(t)["pr"]
	p, r, err := PrecisionRecall(feats(c.Real), feats(c.Fake), c.K)
	if err != nil {
		t.Fatal(err)
	}
	if p != c.Precision || r != c.Recall {
		t.Errorf("precision, recall = %g, %g; numpy %g, %g", p, r, c.Precision, c.Recall)
	}
	p, r, _ = PrecisionRecall(feats(c.Real), feats(c.Real), c.K)
	if p != 1 || r != 1 {
		t.Errorf("a set against itself: precision, recall = %g, %g, want 1, 1", p, r)
	}
}

func TestStatsFileRoundTrip(t *testing.T) {
	c := loadRef(t)["fd"]
	s := mustStats(t, c.X)
	s.Feature = "judge-fmnist-v1"
	path := filepath.Join(t.TempDir(), "real.stats.safetensors")
	if err := SaveStats(path, s); err != nil {
		t.Fatal(err)
	}
	back, err := LoadStats(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.Feature != s.Feature || back.N != s.N {
		t.Errorf("metadata: %q %d, want %q %d", back.Feature, back.N, s.Feature, s.N)
	}
	for i := range s.Sigma {
		if back.Sigma[i] != s.Sigma[i] {
			t.Fatalf("sigma[%d] changed in the round trip", i)
		}
	}
	other := mustStats(t, c.Y)
	other.Feature = "inception-fid-pool3"
	if _, err := FrechetDistance(back, other); err == nil {
		t.Error("statistics of two feature networks were compared without an error")
	}
	bad := filepath.Join(t.TempDir(), "bad.safetensors")
	os.WriteFile(bad, []byte("not a safetensors file"), 0o644)
	if _, err := LoadStats(bad); err == nil {
		t.Error("a corrupt statistics file loaded")
	}
}

func TestBadInput(t *testing.T) {
	if _, err := ComputeStats("x", &Features{N: 1, D: 3, Data: make([]float64, 3)}); err == nil {
		t.Error("statistics of one sample accepted")
	}
	if _, err := NewFeatures(2, 3, make([]float32, 5)); err == nil {
		t.Error("5 values for 2×3 accepted")
	}
	p := &Features{N: 2, D: 2, Data: []float64{0.5, 0.5, -1, 2}}
	if _, _, err := InceptionScore(p, 1); err == nil {
		t.Error("a negative probability accepted")
	}
	a := &Features{N: 5, D: 2, Data: make([]float64, 10)}
	b := &Features{N: 5, D: 3, Data: make([]float64, 15)}
	if _, _, err := PrecisionRecall(a, b, 3); err == nil {
		t.Error("mismatched dimensions accepted")
	}
}
