package kernels

import (
	"runtime"
	"strings"
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

// TestRunPartsOneProcessor: with GOMAXPROCS lowered to 1 after the team
// started, a member spinning for its next part must not hold the only
// processor (that cost teamSpin per section: 20,000 sections ≥ 4 s). A
// liveness bound, not a speed target: the sections take milliseconds.
func TestRunPartsOneProcessor(t *testing.T) {
	if len(teamMembers()) == 0 {
		t.Skip("GOMAXPROCS 1: no team")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var n atomic.Int64
	start := time.Now()
	for range 20000 {
		runParts(2, func(int) { n.Add(1) })
	}
	if el := time.Since(start); el > 2*time.Second || n.Load() != 40000 {
		t.Fatalf("20,000 two-part sections on one processor: %v, %d parts run", el, n.Load())
	}
}

// TestTeamSleepsWhenIdle checks that idle members block instead of
// spinning once teamSpin has passed, after sections that found them
// asleep: a member once kept spinning for good (marked asleep), a core
// lost to every one-thread job after a two-thread one.
func TestTeamSleepsWhenIdle(t *testing.T) {
	for range 3 {
		runParts(4, func(int) { time.Sleep(100 * time.Microsecond) })
		time.Sleep(5 * teamSpin)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		spinning := idleMembersAwake()
		if spinning == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d team members still awake 2 s after their last part", spinning, len(team.members))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// idleMembersAwake counts the team's goroutines not blocked on a channel
// receive, from a dump of every goroutine's stack.
func idleMembersAwake() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	awake := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "(*teamMember).run") && !strings.Contains(strings.SplitN(g, "\n", 2)[0], "[chan receive") {
			awake++
		}
	}
	return awake
}
