package metrics

import (
	"errors"
	"fmt"
)

// Features is a row-major matrix of features: N samples of dimension D.
type Features struct {
	N, D int
	Data []float64
}

// NewFeatures wraps float32 rows (as feature networks produce them) as a
// float64 matrix.
func NewFeatures(n, d int, data []float32) (*Features, error) {
	if n < 0 || d <= 0 || len(data) != n*d {
		return nil, fmt.Errorf("metrics: %d values for %d×%d features", len(data), n, d)
	}
	f := &Features{N: n, D: d, Data: make([]float64, n*d)}
	for i, v := range data {
		f.Data[i] = float64(v)
	}
	return f, nil
}

// Row returns sample i.
func (f *Features) Row(i int) []float64 { return f.Data[i*f.D : (i+1)*f.D] }

func (f *Features) check(what string, minN int) error {
	if f == nil {
		return fmt.Errorf("metrics: %s: no features", what)
	}
	if f.D <= 0 || len(f.Data) != f.N*f.D {
		return fmt.Errorf("metrics: %s: %d values for %d×%d features", what, len(f.Data), f.N, f.D)
	}
	if f.N < minN {
		return fmt.Errorf("metrics: %s: %d samples, need at least %d", what, f.N, minN)
	}
	return nil
}

var errDim = errors.New("feature dimensions differ")
