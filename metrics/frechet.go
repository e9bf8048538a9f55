package metrics

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// Stats is the Gaussian fit of a feature set: the mean and the unbiased
// covariance (divided by N-1, as numpy.cov and pytorch-fid do).
type Stats struct {
	Feature string    // the feature network that produced the features
	N       int       // samples behind the fit
	Mu      []float64 // D
	Sigma   []float64 // D×D, row-major, symmetric
}

// Dim is the feature dimension.
func (s *Stats) Dim() int { return len(s.Mu) }

// ComputeStats fits a Gaussian to f (at least 2 samples).
func ComputeStats(feature string, f *Features) (*Stats, error) {
	if err := f.check("statistics", 2); err != nil {
		return nil, err
	}
	n, d := f.N, f.D
	mu := make([]float64, d)
	for i := 0; i < n; i++ {
		for j, v := range f.Row(i) {
			mu[j] += v
		}
	}
	for j := range mu {
		mu[j] /= float64(n)
	}
	centred := mat.NewDense(n, d, nil)
	for i := 0; i < n; i++ {
		row := f.Row(i)
		for j := range row {
			centred.Set(i, j, row[j]-mu[j])
		}
	}
	var cov mat.Dense
	cov.Mul(centred.T(), centred)
	cov.Scale(1/float64(n-1), &cov)
	sigma := make([]float64, d*d)
	for i := 0; i < d; i++ {
		for j := 0; j < d; j++ {
			sigma[i*d+j] = 0.5 * (cov.At(i, j) + cov.At(j, i))
		}
	}
	return &Stats{Feature: feature, N: n, Mu: mu, Sigma: sigma}, nil
}

func (s *Stats) check(what string) error {
	d := len(s.Mu)
	if d == 0 || len(s.Sigma) != d*d {
		return fmt.Errorf("metrics: %s statistics: mean of %d and covariance of %d values (want D and D×D)", what, d, len(s.Sigma))
	}
	for _, v := range s.Mu {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("metrics: %s statistics: the mean is not finite", what)
		}
	}
	for _, v := range s.Sigma {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("metrics: %s statistics: the covariance is not finite", what)
		}
	}
	return nil
}

// FrechetDistance is the squared Fréchet (2-Wasserstein) distance between
// the Gaussians N(μ₁, Σ₁) and N(μ₂, Σ₂):
//
//	‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁ Σ₂)^½
//
// The last term never forms the non-symmetric product Σ₁Σ₂ (which is what
// makes scipy.linalg.sqrtm need an ε offset for singular covariances): with
// factors Σ₁ = F₁F₁ᵀ and Σ₂ = F₂F₂ᵀ, Σ₁Σ₂ is similar to (F₁ᵀF₂)ᵀ(F₁ᵀF₂), so
// its eigenvalues are the squared singular values of F₁ᵀF₂ and
// tr (Σ₁Σ₂)^½ = Σᵢ σᵢ(F₁ᵀF₂), the nuclear norm. Singular values carry an
// absolute error of ε·‖F₁ᵀF₂‖, where eigenvalues of a symmetric product
// followed by a square root would carry √ε·‖·‖^½ ≈ 1e-8: that is what keeps
// ill-conditioned and singular covariances right (TraceSqrtProduct picks the
// factors). Both statistics must come from the same feature network.
func FrechetDistance(a, b *Stats) (float64, error) {
	if err := a.check("first"); err != nil {
		return 0, err
	}
	if err := b.check("second"); err != nil {
		return 0, err
	}
	if a.Feature != b.Feature {
		return 0, fmt.Errorf("metrics: statistics from different feature networks (%q and %q)", a.Feature, b.Feature)
	}
	if a.Dim() != b.Dim() {
		return 0, fmt.Errorf("metrics: %v: %d and %d", errDim, a.Dim(), b.Dim())
	}
	d := a.Dim()
	var dmu, tr1, tr2 float64
	for i := range a.Mu {
		dmu += (a.Mu[i] - b.Mu[i]) * (a.Mu[i] - b.Mu[i])
		tr1 += a.Sigma[i*d+i]
		tr2 += b.Sigma[i*d+i]
	}
	trSqrt, err := TraceSqrtProduct(d, a.Sigma, b.Sigma)
	if err != nil {
		return 0, err
	}
	return dmu + tr1 + tr2 - 2*trSqrt, nil
}

// TraceSqrtProduct returns tr (Σ₁ Σ₂)^½ for symmetric positive
// semi-definite d×d matrices (row-major), as FrechetDistance explains.
//
// Any factors with Σ₁ = F₁F₁ᵀ and Σ₂ = F₂F₂ᵀ give Σ₁Σ₂ similar to
// (F₁ᵀF₂)ᵀ(F₁ᵀF₂), so tr (Σ₁Σ₂)^½ = Σᵢ σᵢ(F₁ᵀF₂). When both matrices are
// numerically positive definite the factors are their Cholesky factors
// (d³/3 flops each; 2048-d Inception statistics take seconds, where
// eigen-decompositions take minutes in pure Go). Otherwise they are the
// symmetric square roots from eigen-decompositions, whose eigenvalues below
// the rounding floor count as the zeros they are: a Cholesky factor of a
// singular matrix would carry pivots of √ε and bias the trace by as much.
func TraceSqrtProduct(d int, sigma1, sigma2 []float64) (float64, error) {
	s1 := mat.NewSymDense(d, symmetrized(d, sigma1))
	s2 := mat.NewSymDense(d, symmetrized(d, sigma2))
	f1, ok1 := cholFactor(s1)
	f2, ok2 := cholFactor(s2)
	if !ok1 || !ok2 {
		var err error
		if f1, err = sqrtPSD(s1); err != nil {
			return 0, err
		}
		if f2, err = sqrtPSD(s2); err != nil {
			return 0, err
		}
	}
	// Dense copies: gonum multiplies *Dense operands with its blocked GEMM, but
	// falls back to element-wise access for triangular ones (50 s at d = 2048).
	var p mat.Dense
	p.Mul(mat.DenseCopyOf(f1).T(), mat.DenseCopyOf(f2))
	var svd mat.SVD
	if !svd.Factorize(&p, mat.SVDNone) {
		return 0, fmt.Errorf("metrics: the singular value decomposition of F₁ᵀ·F₂ did not converge")
	}
	var tr float64
	for _, s := range svd.Values(nil) {
		tr += s
	}
	return tr, nil
}

// cholFactor returns the lower Cholesky factor L (Σ = LLᵀ) when Σ is
// numerically positive definite: every pivot² above the rounding floor.
func cholFactor(s *mat.SymDense) (mat.Matrix, bool) {
	var ch mat.Cholesky
	if !ch.Factorize(s) {
		return nil, false
	}
	var l mat.TriDense
	ch.LTo(&l)
	d, _ := s.Dims()
	var top float64
	for i := range d {
		top = max(top, s.At(i, i))
	}
	floor := float64(d) * 0x1p-52 * top
	for i := range d {
		if v := l.At(i, i); v*v <= floor {
			return nil, false
		}
	}
	return &l, true
}

func symmetrized(d int, a []float64) []float64 {
	out := make([]float64, d*d)
	for i := 0; i < d; i++ {
		for j := 0; j < d; j++ {
			out[i*d+j] = 0.5 * (a[i*d+j] + a[j*d+i])
		}
	}
	return out
}

// sqrtPSD is the principal square root U·max(Λ,0)^½·Uᵀ of a symmetric
// positive semi-definite matrix; eigenvalues under the rounding floor count
// as zero.
func sqrtPSD(a *mat.SymDense) (mat.Matrix, error) {
	var eig mat.EigenSym
	if !eig.Factorize(a, true) {
		return nil, fmt.Errorf("metrics: the symmetric eigen-decomposition of a covariance did not converge")
	}
	vals := eig.Values(nil)
	var u mat.Dense
	eig.VectorsTo(&u)
	d := len(vals)
	floor := noiseFloor(vals)
	scaled := mat.DenseCopyOf(&u)
	for j, l := range vals {
		r := 0.0
		if l > floor {
			r = math.Sqrt(l)
		}
		for i := 0; i < d; i++ {
			scaled.Set(i, j, scaled.At(i, j)*r)
		}
	}
	var root mat.Dense
	root.Mul(scaled, u.T())
	return &root, nil
}

// noiseFloor is the size below which an eigenvalue of a d×d symmetric matrix
// is indistinguishable from rounding (d·ε·|λ|max). Square roots amplify such
// noise (√1e-16 = 1e-8), so those eigenvalues count as the zeros they are:
// then a singular covariance compared with itself gives FD ≈ 1e-15, not 1e-7.
// A true eigenvalue that small moves the trace term by at most its square
// root either way.
func noiseFloor(vals []float64) float64 {
	var top float64
	for _, l := range vals {
		top = max(top, math.Abs(l))
	}
	return float64(len(vals)) * 0x1p-52 * top
}
