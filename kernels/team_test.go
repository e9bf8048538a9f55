package kernels

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRunParts checks that every part runs exactly once and has finished
// when runParts returns: plain sections, sections that start sections
// (members busy: new goroutines take the parts), several callers at once,
// and sections after the members fell asleep.
func TestRunParts(t *testing.T) {
	check := func(parts int) {
		runs := make([]atomic.Int32, parts)
		runParts(parts, func(p int) { runs[p].Add(1) })
		for p := range runs {
			if n := runs[p].Load(); n != 1 {
				t.Errorf("%d parts: part %d ran %d times", parts, p, n)
				return
			}
		}
	}
	for _, parts := range []int{0, 1, 2, 3, 7, 64} {
		check(parts)
	}

	var total atomic.Int64
	runParts(4, func(int) { // nested: members are busy with the outer parts
		runParts(3, func(int) { total.Add(1) })
	})
	if total.Load() != 12 {
		t.Fatalf("nested sections ran %d inner parts, want 12", total.Load())
	}

	var wg sync.WaitGroup
	for range 8 { // concurrent callers compete for the members
		wg.Go(func() {
			for range 200 {
				check(3)
			}
		})
	}
	wg.Wait()

	time.Sleep(3 * teamSpin) // the members are asleep now
	check(5)
}
