package bench

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/godiffuse/godiffuse/features"
	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/metrics"
)

// BenchmarkFeatures times the feature networks of diffuse eval on 28×28 grey
// images, in images per second: the judge always, InceptionV3 (resized to
// 299×299) when GODIFFUSE_INCEPTION_FIXTURE names a folder with
// weights.safetensors (any weights of the right shapes time the same).
func BenchmarkFeatures(b *testing.B) {
	r := rand.New(rand.NewPCG(4, 4))
	imgs := func(n int) []float32 {
		v := make([]float32, n*28*28)
		for i := range v {
			v[i] = -1 // background, as Fashion-MNIST mostly is
			if r.IntN(3) == 0 {
				v[i] = 2*r.Float32() - 1
			}
		}
		return v
	}
	judge, err := features.LoadJudge(kernels.CPU())
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		ext   func(b *testing.B) features.Extractor
		batch int
	}{
		{"judge", func(*testing.B) features.Extractor { return judge }, 256},
		{"inception", func(b *testing.B) features.Extractor {
			dir := os.Getenv("GODIFFUSE_INCEPTION_FIXTURE")
			if dir == "" {
				b.Skip("set GODIFFUSE_INCEPTION_FIXTURE to time InceptionV3")
			}
			m, err := features.LoadInception(filepath.Join(dir, "weights.safetensors"), kernels.CPU())
			if err != nil {
				b.Fatal(err)
			}
			return m
		}, 8},
	} {
		b.Run(fmt.Sprintf("net=%s/batch=%d", c.name, c.batch), func(b *testing.B) {
			ext := c.ext(b)
			x := imgs(c.batch)
			for b.Loop() {
				if _, _, err := ext.Extract(x, c.batch, 1, 28, 28); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(c.batch*b.N)/b.Elapsed().Seconds(), "img/s")
		})
	}
}

// BenchmarkFrechet times the Fréchet distance of two D-dimensional Gaussian
// fits (two symmetric eigen-decompositions and one SVD of D×D, float64):
// D = 128 is the judge's width, 2048 Inception's pool3.
func BenchmarkFrechet(b *testing.B) {
	for _, d := range []int{128, 2048} {
		b.Run(fmt.Sprintf("d=%d", d), func(b *testing.B) {
			r := rand.New(rand.NewPCG(8, uint64(d)))
			stats := func() *metrics.Stats {
				f := &metrics.Features{N: d + 10, D: d, Data: make([]float64, (d+10)*d)}
				for i := range f.Data {
					f.Data[i] = r.NormFloat64()
				}
				s, err := metrics.ComputeStats("bench", f)
				if err != nil {
					b.Fatal(err)
				}
				return s
			}
			s1, s2 := stats(), stats()
			for b.Loop() {
				if _, err := metrics.FrechetDistance(s1, s2); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
