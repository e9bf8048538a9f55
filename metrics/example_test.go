package metrics_test

import (
	"fmt"

	"github.com/godiffuse/godiffuse/metrics"
)

// The Fréchet distance between two sets of feature vectors (here 2-d, four
// each): the second set is the first shifted by (3, 4), so the distance is
// |Δμ|² = 25.
func ExampleFrechetDistance() {
	a, _ := metrics.NewFeatures(4, 2, []float32{0, 0, 1, 0, 0, 1, 1, 1})
	b, _ := metrics.NewFeatures(4, 2, []float32{3, 4, 4, 4, 3, 5, 4, 5})
	sa, _ := metrics.ComputeStats("example", a)
	sb, _ := metrics.ComputeStats("example", b)
	d, err := metrics.FrechetDistance(sa, sb)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%.3f\n", d)
	// Output: 25.000
}
