package metrics

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// PrecisionRecall is the improved precision and recall of Kynkäänniemi et
// al. (2019). Each set is a manifold: the union of balls around its samples
// whose radius is the distance to the sample's k-th nearest neighbour in the
// same set (itself excluded). Precision is the share of generated samples
// inside the real manifold, recall the share of real samples inside the
// generated one. k = 3 is the paper's choice.
func PrecisionRecall(real, fake *Features, k int) (precision, recall float64, err error) {
	if err := real.check("precision/recall (real set)", k+1); err != nil {
		return 0, 0, err
	}
	if err := fake.check("precision/recall (generated set)", k+1); err != nil {
		return 0, 0, err
	}
	if real.D != fake.D {
		return 0, 0, fmt.Errorf("metrics: precision/recall: %v: %d and %d", errDim, real.D, fake.D)
	}
	if k < 1 {
		return 0, 0, fmt.Errorf("metrics: precision/recall: k = %d (want ≥ 1)", k)
	}
	rRad := kthRadii(real, k)
	fRad := kthRadii(fake, k)
	inReal := covered(fake, real, rRad) // generated samples inside some real ball
	inFake := covered(real, fake, fRad) // real samples inside some generated ball
	return float64(inReal) / float64(fake.N), float64(inFake) / float64(real.N), nil
}

// distBlock is how many rows of squared distances are held at once:
// 256 × 10,000 float64 = 20 MB, where whole matrices of 10,000 samples
// would take 800 MB each.
const distBlock = 256

// blocks calls fn with each block of a's rows and its squared distances to
// every row of b (rows × b.N).
func blocks(a, b *Features, fn func(r0 int, d []float64)) {
	nb := sqNorms(b)
	bm := mat.NewDense(b.N, b.D, b.Data)
	for r0 := 0; r0 < a.N; r0 += distBlock {
		rows := min(distBlock, a.N-r0)
		sub := &Features{N: rows, D: a.D, Data: a.Data[r0*a.D : (r0+rows)*a.D]}
		fn(r0, sqDistancesTo(sub, bm, nb))
	}
}

// kthRadii returns, per sample, the squared distance to its k-th nearest
// neighbour in the same set (itself, at distance zero, is the 0-th).
func kthRadii(f *Features, k int) []float64 {
	out := make([]float64, f.N)
	smallest := make([]float64, k+1)
	blocks(f, f, func(r0 int, d []float64) {
		for i := range len(d) / f.N {
			row := d[i*f.N : (i+1)*f.N]
			row[r0+i] = -1 // itself, always first
			for j := range smallest {
				smallest[j] = math.Inf(1)
			}
			for _, v := range row { // keep the k+1 smallest, sorted
				if v >= smallest[k] {
					continue
				}
				j := k
				for j > 0 && smallest[j-1] > v {
					smallest[j] = smallest[j-1]
					j--
				}
				smallest[j] = v
			}
			out[r0+i] = smallest[k]
		}
	})
	return out
}

// covered counts the samples of a within squared radius rad[j] of some
// sample j of b.
func covered(a, b *Features, rad []float64) int {
	n := 0
	blocks(a, b, func(_ int, d []float64) {
		for i := range len(d) / b.N {
			for j, v := range d[i*b.N : (i+1)*b.N] {
				if v <= rad[j] {
					n++
					break
				}
			}
		}
	})
	return n
}

// sqDistancesTo returns the a.N×b.N squared Euclidean distances, through
// ‖a‖² + ‖b‖² − 2aᵀb (clipped at zero); bm and nb are b as a matrix and its
// squared norms.
func sqDistancesTo(a *Features, bm *mat.Dense, nb []float64) []float64 {
	n, _ := bm.Dims()
	out := make([]float64, a.N*n)
	g := mat.NewDense(a.N, n, out)
	g.Mul(mat.NewDense(a.N, a.D, a.Data), bm.T())
	na := sqNorms(a)
	for i := range a.N {
		row := out[i*n : (i+1)*n]
		for j, v := range row {
			row[j] = max(na[i]+nb[j]-2*v, 0)
		}
	}
	return out
}

func sqNorms(f *Features) []float64 {
	out := make([]float64, f.N)
	for i := range out {
		for _, v := range f.Row(i) {
			out[i] += v * v
		}
	}
	return out
}
