package kernels

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/godiffuse/godiffuse/tensor"
)

// TestRepeatedSettlesOnTheFasterWay drives a repeated key's choice with
// made-up timings: three calls on all threads and three on one (the first
// of each run untimed), then the faster; runs of the other way at doubling
// intervals while the choice holds; the other way taken when its run is
// faster; long work left on all threads.
func TestRepeatedSettlesOnTheFasterWay(t *testing.T) {
	ms := time.Millisecond
	steady := func(all, one time.Duration) func(int, repeatStep) time.Duration {
		return func(_ int, s repeatStep) time.Duration { return map[int]time.Duration{wayAll: all, wayOne: one}[s.way] }
	}
	run := func(r *repeated, cost func(call int, s repeatStep) time.Duration, calls int) []repeatStep {
		var steps []repeatStep
		for c := range calls {
			s := r.next()
			steps = append(steps, s)
			r.record(s, cost(c, s))
		}
		return steps
	}
	ways := func(steps []repeatStep) []int {
		var w []int
		for _, s := range steps {
			w = append(w, s.way)
		}
		return w
	}

	// One thread a little faster: taken after the first runs.
	r := &repeated{}
	steps := run(r, steady(10*ms, 9*ms), 8)
	want := []repeatStep{{wayAll, false}, {wayAll, true}, {wayAll, true}, {wayOne, false}, {wayOne, true}, {wayOne, true}, {wayOne, true}, {wayOne, true}}
	if !slices.Equal(steps, want) {
		t.Fatalf("first calls ran %v, want %v", steps, want)
	}

	// All threads faster: one thread tried in runs at doubling intervals.
	r = &repeated{}
	steps = run(r, steady(10*ms, 14*ms), 3000)
	var tries []int // the calls that begin a run of one thread
	for c := 6; c < len(steps); c++ {
		if steps[c].way == wayOne && steps[c-1].way == wayAll {
			tries = append(tries, c)
		}
	}
	// Here at calls 38, 105, 234, 491, 1004, …
	if len(tries) < 5 || tries[0] > 6+repeatFirstTry {
		t.Fatalf("runs of one thread begin at calls %v: want the first within %d calls", tries, repeatFirstTry)
	}
	for i := 2; i < len(tries); i++ {
		prev, gap := tries[i-1]-tries[i-2], tries[i]-tries[i-1]
		if gap < prev || gap > repeatMaxTry+repeatRun || (gap < repeatMaxTry && gap < 2*prev-repeatRun) {
			t.Fatalf("runs of one thread begin at calls %v: want the gaps doubling up to %d", tries, repeatMaxTry)
		}
	}
	if n := countOf(ways(steps), wayOne); n > 6*repeatRun+len(steps)*repeatRun/repeatMaxTry {
		t.Fatalf("%d of %d calls ran on the slower way", n, len(steps))
	}

	// The spell changes at call 200: one thread becomes faster and is taken
	// at its next run.
	r = &repeated{}
	steps = run(r, func(c int, s repeatStep) time.Duration {
		if c < 200 {
			return steady(10*ms, 13*ms)(c, s)
		}
		return steady(10*ms, 7*ms)(c, s)
	}, 200+2*repeatMaxTry)
	if tail := ways(steps[200+repeatMaxTry:]); r.choice != wayOne || len(tail)-countOf(tail, wayOne) > 2*len(tail)/repeatFirstTry {
		t.Fatalf("after the change the choice is %d, the calls ran %v", r.choice, tail)
	}

	// Long work stays on all threads, untried.
	r = &repeated{}
	steps = run(r, steady(2*repeatMaxLen, repeatMaxLen), 20)
	if w := ways(steps); slices.Contains(w, wayOne) {
		t.Fatalf("long work ran %v, want all threads", w)
	}
}

// TestRepeatCapsThreads checks that a Repeat call run on one thread caps
// the device's ops at one, and that the cap ends with the call.
func TestRepeatCapsThreads(t *testing.T) {
	d := NewCPU(2)
	if d.Threads() < 2 {
		t.Skip("one thread")
	}
	seen := map[int]bool{}
	for range 8 {
		d.Repeat("k", func() { seen[d.nThreads()] = true })
	}
	if !seen[1] || !seen[2] {
		t.Fatalf("thread counts inside the calls %v, want both 1 and 2", seen)
	}
	if d.nThreads() != 2 {
		t.Fatalf("after the calls the device runs %d threads, want 2", d.nThreads())
	}
}

// TestConvForwardSameOnAnyThreads holds a forward convolution's values to
// one result, bit for bit, whether the device runs one thread, two, or two
// capped at one (a tensor.Repeat call timing one thread): the batch-1
// paths split the work differently on each (bands of output rows, column
// panels, output channels, Winograd chunks), and Repeat hands a sampler's
// steps to either. Found different before 2026-12-07: a stride-2 im2col
// convolution of one image (its bands' partial tiles added the bias after
// their sums, whole tiles began at it), a 256-channel 1×1 at 16×16 (each
// thread's half of the columns chose B packed, the whole product B read in
// place).
func TestConvForwardSameOnAnyThreads(t *testing.T) {
	for _, l := range Levels() {
		devs := func() []*Device {
			capped := NewCPULevel(2, l)
			capped.single.Add(1)
			return []*Device{NewCPULevel(1, l), NewCPULevel(2, l), capped}
		}()
		for _, n := range []int{1, 2} {
			for _, c := range []int{3, 32, 96, 256} {
				for _, f := range []int{1, 48, 256} {
					for _, side := range []int{4, 7, 16, 28} {
						for _, ks := range [][2]int{{1, 1}, {3, 1}, {3, 2}} {
							k, st := ks[0], ks[1]
							pad := k / 2
							o := (side+2*pad-k)/st + 1
							p := tensor.ConvParams{N: n, C: c, H: side, W: side, F: f, KH: k, KW: k, StrideH: st, StrideW: st,
								PadTop: pad, PadBottom: pad, PadLeft: pad, PadRight: pad, OH: o, OW: o}
							r := rand.New(rand.NewPCG(uint64(c), uint64(f*side)))
							x, w, bias := randSlice(r, n*c*side*side), randSlice(r, f*c*k*k), randSlice(r, f)
							var want []float32
							for i, d := range devs {
								wb := &Buffer{dev: d, F: w}
								wb.Freeze() // as in sampling: prepared weights kept
								y := make([]float32, n*f*o*o)
								d.Conv2D(&Buffer{dev: d, F: y}, &Buffer{dev: d, F: x}, wb, &Buffer{dev: d, F: bias}, p)
								if i == 0 {
									want = y
								} else if !slices.Equal(y, want) {
									t.Fatalf("%s: %d images, %d→%d channels at %d², %d×%d stride %d (%s): device %d differs from one thread",
										l, n, c, f, side, k, k, st, d.PlanConv2D(p).Forward, i)
								}
							}
						}
					}
				}
			}
		}
	}
}

func countOf(ws []int, w int) int {
	n := 0
	for _, x := range ws {
		if x == w {
			n++
		}
	}
	return n
}
