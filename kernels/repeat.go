package kernels

import (
	"sync"
	"time"
)

// ---------------------------------------------------------------------------
// Repeated work on all threads or on one (tensor.Repeat).
//
// A batch-1 forward pass of a small U-Net splits its larger convolutions,
// its norms and its attention over the cores, and each split costs a
// hand-over and, worse, leaves the op's output half in the other core's
// cache for the next op to fetch. Whether the second core pays for that
// depends on the machine and, on the 2-vCPU virtual machines here, on the
// spell: tiny-mnist's batch-1 forward once ran 1.63× as fast on two threads
// as on one (bench/RESULTS.md, 2026-12-06), and on 2026-12-07 one thread
// was the faster in 36 of 40 alternated rounds (~500 against ~430 img/s),
// while ddpm-cifar10-32's batch-1 forward gained 1.42× from the second
// thread in the same hour. No fixed threshold is right in every spell. So
// work that repeats the same way — a model's inference forward pass at
// one input shape, called once per sampling step — is timed: the first
// calls run on all threads, the next repeatRun on one, then the faster of
// the two (its fastest timing of the run against the other's; the first
// call of a run is not timed), and every so often a run of the other way is
// timed against the choice's latest calls, after repeatFirstTry calls at
// first and at doubling intervals (up to repeatMaxTry) while the choice
// holds. Work that takes longer than repeatMaxLen on all threads is left on
// all threads: its ops are large enough for their splits to pay (cifar's
// batch-1 forward, ~35 ms), and a run on one thread would cost a short
// sampling run more than it could save.
//
// The one-thread way caps the whole device while the work runs
// (Device.single): ops started meanwhile by other goroutines on the same
// device run on one thread too. The kernels' results do not depend on the
// thread count, so the cap changes only the speed.
// ---------------------------------------------------------------------------

const (
	repeatRun      = 3                     // calls of a way when it is timed: the first untimed, then timings
	repeatFirstTry = 32                    // calls before the way not taken is tried again
	repeatMaxTry   = 512                   // … at most, doubling while the choice holds
	repeatMaxLen   = 20 * time.Millisecond // longer work (on all threads) is not tuned
	repeatMaxKeys  = 256                   // keys remembered; beyond, all are forgotten
)

// repeatWindow is the timings kept of each way, the fastest of which counts:
// those of one run.
const repeatWindow = repeatRun - 1

// The ways to run a repeated call.
const (
	wayAll = iota // all the device's threads
	wayOne        // one thread
)

// repeatStep is how one call runs: its way, and whether it is timed. A call
// is timed when the call before it ran the same way: the first call of a
// way after the other pays for moving the data the other way left in the
// other core's cache (and, the first time, for preparing that way's
// scratch), which the later ones do not.
type repeatStep struct {
	way   int
	timed bool
}

// repeats is what a device knows of the work handed to Repeat, by key.
type repeats struct {
	mu   sync.Mutex
	keys map[any]*repeated
}

// repeated is the timings of one key's calls.
type repeated struct {
	calls   int                            // calls begun
	last    int                            // the way of the call before
	times   [2][repeatWindow]time.Duration // recent timings of wayAll and wayOne
	n       [2]int                         // timings taken of each way
	queue   []int                          // the ways of the calls planned next
	settled bool                           // both ways timed once
	choice  int                            // the way that runs (once settled)
	try     int                            // the call that next tries the other way
	every   int                            // calls between tries
	off     bool                           // too long to tune: always all threads
}

// Repeat implements tensor.Repeater: fn runs on all the device's threads or
// on one, whichever has run key's calls faster.
func (d *Device) Repeat(key any, fn func()) {
	if d.threads <= 1 {
		fn()
		return
	}
	d.repeats.mu.Lock()
	if d.repeats.keys == nil || len(d.repeats.keys) >= repeatMaxKeys {
		d.repeats.keys = map[any]*repeated{}
	}
	r := d.repeats.keys[key]
	if r == nil {
		r = &repeated{}
		d.repeats.keys[key] = r
	}
	step := r.next()
	d.repeats.mu.Unlock()

	if step.way == wayOne {
		d.single.Add(1)
		defer d.single.Add(-1)
	}
	start := time.Now()
	fn()
	took := time.Since(start)

	d.repeats.mu.Lock()
	r.record(step, took)
	d.repeats.mu.Unlock()
}

// next returns how the next call runs: the first and repeatRun−1 more on
// all threads, then repeatRun on one; from then on the faster (the choice),
// but for a run of the other way every so often.
func (r *repeated) next() repeatStep {
	c := r.calls
	r.calls++
	way := wayAll
	switch {
	case r.off:
	case c == 0:
		for range repeatRun - 1 {
			r.queue = append(r.queue, wayAll)
		}
		for range repeatRun {
			r.queue = append(r.queue, wayOne)
		}
	case len(r.queue) > 0:
		way, r.queue = r.queue[0], r.queue[1:]
	case r.settled && c >= r.try:
		way = 1 - r.choice
		for range repeatRun - 1 {
			r.queue = append(r.queue, way)
		}
	default:
		way = r.choice
	}
	s := repeatStep{way: way, timed: c > 0 && way == r.last && !r.off}
	r.last = way
	return s
}

// record takes the time a call took. At the end of the first runs, and of
// each run of the way not chosen, the way whose fastest recent timing is
// the lower becomes the choice (the choice's recent timings are those of
// its last calls before the run).
func (r *repeated) record(s repeatStep, took time.Duration) {
	switch {
	case s.way == wayAll && took > repeatMaxLen && (s.timed || took > 4*repeatMaxLen):
		// Long work: all threads, untuned. An untimed first call may be
		// longer (it prepares weights and scratch) up to 4×.
		r.off, r.queue = true, nil
		return
	case !s.timed || r.off:
		return
	}
	r.times[s.way][r.n[s.way]%repeatWindow] = took
	r.n[s.way]++
	if len(r.queue) > 0 || (r.settled && s.way == r.choice) || r.n[wayAll] == 0 || r.n[wayOne] == 0 {
		return // not the end of a run that decides
	}
	faster := wayAll
	if r.fastest(wayOne) < r.fastest(wayAll) {
		faster = wayOne
	}
	switch {
	case !r.settled:
		r.settled, r.every = true, repeatFirstTry
	case faster == r.choice:
		r.every = min(2*r.every, repeatMaxTry)
	default:
		r.every = repeatFirstTry
	}
	r.choice = faster
	r.try = r.calls + r.every
}

// fastest is the lowest recent timing of a way.
func (r *repeated) fastest(way int) time.Duration {
	best := r.times[way][0]
	for _, t := range r.times[way][1:min(r.n[way], repeatWindow)] {
		best = min(best, t)
	}
	return best
}

// nThreads is the number of goroutines an op may use now: the device's,
// or one while a Repeat call runs on one thread.
func (d *Device) nThreads() int {
	if d.single.Load() > 0 {
		return 1
	}
	return d.threads
}
