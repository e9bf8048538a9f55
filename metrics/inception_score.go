package metrics

import (
	"fmt"
	"math"
)

// InceptionScore is exp(E_x KL(p(y|x) ‖ p(y))) over `splits` consecutive,
// equal parts of the samples (the last N mod splits samples are left out, as
// in the original code), returning the mean and the population standard
// deviation over the parts. probs holds one row of class probabilities per
// sample; rows are renormalized, and a zero probability contributes zero.
func InceptionScore(probs *Features, splits int) (mean, std float64, err error) {
	if err := probs.check("inception score", 1); err != nil {
		return 0, 0, err
	}
	if splits < 1 || splits > probs.N {
		return 0, 0, fmt.Errorf("metrics: inception score: %d splits of %d samples (want 1 … N)", splits, probs.N)
	}
	k := probs.D
	p := make([]float64, len(probs.Data))
	for i := 0; i < probs.N; i++ {
		row := probs.Row(i)
		var s float64
		for _, v := range row {
			if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				return 0, 0, fmt.Errorf("metrics: inception score: sample %d has probability %v (want ≥ 0 and finite)", i, v)
			}
			s += v
		}
		if s == 0 {
			return 0, 0, fmt.Errorf("metrics: inception score: sample %d has all-zero probabilities", i)
		}
		for j, v := range row {
			p[i*k+j] = v / s
		}
	}
	part := probs.N / splits
	scores := make([]float64, splits)
	for s := range scores {
		rows := p[s*part*k : (s+1)*part*k]
		py := make([]float64, k)
		for i := 0; i < part; i++ {
			for j := 0; j < k; j++ {
				py[j] += rows[i*k+j]
			}
		}
		for j := range py {
			py[j] /= float64(part)
		}
		var kl float64
		for i := 0; i < part; i++ {
			for j := 0; j < k; j++ {
				if v := rows[i*k+j]; v > 0 {
					kl += v * (math.Log(v) - math.Log(py[j]))
				}
			}
		}
		scores[s] = math.Exp(kl / float64(part))
	}
	mean, std = meanStd(scores)
	return mean, std, nil
}

func meanStd(xs []float64) (mean, std float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		std += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(std / float64(len(xs)))
}
