package metrics

import (
	"fmt"
	"slices"

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
	rr := sqDistances(real, real)
	ff := sqDistances(fake, fake)
	rf := sqDistances(real, fake)
	rRad := kthRadii(rr, real.N, k)
	fRad := kthRadii(ff, fake.N, k)
	var inReal, inFake int
	for j := 0; j < fake.N; j++ { // generated sample j inside some real ball?
		for i := 0; i < real.N; i++ {
			if rf[i*fake.N+j] <= rRad[i] {
				inReal++
				break
			}
		}
	}
	for i := 0; i < real.N; i++ { // real sample i inside some generated ball?
		for j := 0; j < fake.N; j++ {
			if rf[i*fake.N+j] <= fRad[j] {
				inFake++
				break
			}
		}
	}
	return float64(inReal) / float64(fake.N), float64(inFake) / float64(real.N), nil
}

// sqDistances returns the a.N×b.N squared Euclidean distances, through
// ‖a‖² + ‖b‖² − 2aᵀb (clipped at zero).
func sqDistances(a, b *Features) []float64 {
	var g mat.Dense
	g.Mul(mat.NewDense(a.N, a.D, a.Data), mat.NewDense(b.N, b.D, b.Data).T())
	na, nb := sqNorms(a), sqNorms(b)
	out := make([]float64, a.N*b.N)
	for i := range a.N {
		for j := range b.N {
			out[i*b.N+j] = max(na[i]+nb[j]-2*g.At(i, j), 0)
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

// kthRadii returns, per sample, the squared distance to its k-th nearest
// neighbour in the same set (the zero self-distance is the 0-th).
func kthRadii(d []float64, n, k int) []float64 {
	out := make([]float64, n)
	row := make([]float64, n)
	for i := range n {
		copy(row, d[i*n:(i+1)*n])
		row[i] = -1 // itself, always first
		slices.Sort(row)
		out[i] = row[k]
	}
	return out
}
