package metrics

import (
	"fmt"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// KIDOptions chooses the subsets of KID; zero values take the usual defaults
// (100 subsets of 1000 samples, or of all samples when there are fewer).
type KIDOptions struct {
	Subsets    int
	SubsetSize int
	Seed       uint64
}

// KID is the Kernel Inception Distance (Bińkowski et al., 2018): the unbiased
// estimate of the squared MMD between x and y with the kernel
// k(a, b) = (aᵀb / D + 1)³, averaged over random subsets of SubsetSize
// samples drawn without replacement from each side. It returns the mean and
// the population standard deviation over the subsets.
func KID(x, y *Features, o KIDOptions) (mean, std float64, err error) {
	if err := x.check("KID (first set)", 2); err != nil {
		return 0, 0, err
	}
	if err := y.check("KID (second set)", 2); err != nil {
		return 0, 0, err
	}
	if x.D != y.D {
		return 0, 0, fmt.Errorf("metrics: KID: %v: %d and %d", errDim, x.D, y.D)
	}
	if o.Subsets == 0 {
		o.Subsets = 100
	}
	if o.SubsetSize == 0 {
		o.SubsetSize = min(1000, x.N, y.N)
	}
	if o.Subsets < 1 || o.SubsetSize < 2 || o.SubsetSize > x.N || o.SubsetSize > y.N {
		return 0, 0, fmt.Errorf("metrics: KID: %d subsets of %d from sets of %d and %d (want subset size 2 … smaller set)",
			o.Subsets, o.SubsetSize, x.N, y.N)
	}
	r := rand.New(rand.NewPCG(o.Seed, 0x6b6964))
	vals := make([]float64, o.Subsets)
	for s := range vals {
		vals[s] = MMD2Unbiased(subset(x, r.Perm(x.N)[:o.SubsetSize]), subset(y, r.Perm(y.N)[:o.SubsetSize]))
	}
	mean, std = meanStd(vals)
	return mean, std, nil
}

func subset(f *Features, idx []int) *Features {
	out := &Features{N: len(idx), D: f.D, Data: make([]float64, len(idx)*f.D)}
	for i, j := range idx {
		copy(out.Row(i), f.Row(j))
	}
	return out
}

// MMD2Unbiased is the unbiased squared MMD between all of x and all of y with
// the cubic polynomial kernel of KID (m = x.N, n = y.N):
//
//	Σ_{i≠j} k(xᵢ,xⱼ)/(m(m−1)) + Σ_{i≠j} k(yᵢ,yⱼ)/(n(n−1)) − 2 Σ_{i,j} k(xᵢ,yⱼ)/(mn)
func MMD2Unbiased(x, y *Features) float64 {
	m, n := float64(x.N), float64(y.N)
	kxx, trx := kernelSum(x, x)
	kyy, try := kernelSum(y, y)
	kxy, _ := kernelSum(x, y)
	return (kxx-trx)/(m*(m-1)) + (kyy-try)/(n*(n-1)) - 2*kxy/(m*n)
}

// kernelSum returns Σᵢⱼ k(aᵢ, bⱼ) and, for square Gram matrices, its trace.
func kernelSum(a, b *Features) (sum, trace float64) {
	am := mat.NewDense(a.N, a.D, a.Data)
	bm := mat.NewDense(b.N, b.D, b.Data)
	var g mat.Dense
	g.Mul(am, bm.T())
	inv := 1 / float64(a.D)
	for i := 0; i < a.N; i++ {
		for j := 0; j < b.N; j++ {
			v := g.At(i, j)*inv + 1
			k := v * v * v
			sum += k
			if i == j && a.N == b.N {
				trace += k
			}
		}
	}
	return sum, trace
}
