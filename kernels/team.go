package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// ---------------------------------------------------------------------------
// The team: goroutines that stay awake between parallel sections.
//
// Every parallel section of the CPU kernels (the parts of a GEMM, the images
// of a convolution, the chunks of a Winograd pass) goes through runParts.
// It used to start a goroutine per part (sync.WaitGroup.Go). When the other
// cores had nothing to do between two sections, the runtime had parked their
// threads, and waking one is a futex call whose latency on these virtual
// machines is tens of microseconds — as long as many whole operations of a
// batch-1 forward: tiny-mnist at batch 1 ran no faster on two threads than
// on one, and 27–34 % faster with the team (bench/RESULTS.md, 2026-12-03,
// AMD Zen 5). The team's goroutines instead spin for teamSpin after each
// part, so a section that follows soon finds them awake; then they sleep on
// a channel until a caller wakes them.
//
// A part goes to a member that is waiting (spinning or asleep); when every
// member is busy (nested sections, concurrent inference) it goes to a new
// goroutine as before, so no caller ever waits for a member.
// ---------------------------------------------------------------------------

// teamSpin is how long a member stays awake after its part, waiting for
// the next.
const teamSpin = 200 * time.Microsecond

type teamMember struct {
	state atomic.Uint32
	job   func(part int)
	part  int
	left  *atomic.Int32 // parts of the section still running
	wake  chan struct{}
	_     [64]byte // its own cache line: callers poll state
}

// A member's states. Only a caller moves it from waiting or asleep to
// claimed (and then ready); only the member itself moves it back.
const (
	memberWaiting uint32 = iota // awake, spinning for a part
	memberAsleep                // blocked on wake
	memberClaimed               // a caller is handing it a part
	memberReady                 // it has a part (and then runs it)
)

var team struct {
	once    sync.Once
	members []*teamMember
}

// teamMembers starts the team on first use: one member per processor
// beyond the caller's, at the GOMAXPROCS of that moment (raised later, the
// extra parts go to new goroutines; lowered, the members yield, see await).
func teamMembers() []*teamMember {
	team.once.Do(func() {
		for range runtime.GOMAXPROCS(0) - 1 {
			m := &teamMember{wake: make(chan struct{}, 1)}
			m.state.Store(memberAsleep)
			team.members = append(team.members, m)
			go m.run()
		}
	})
	return team.members
}

func (m *teamMember) run() {
	for {
		m.await()
		job, part, left := m.job, m.part, m.left
		m.job, m.left = nil, nil
		job(part)
		m.state.Store(memberWaiting) // claimable before the caller sees the section end
		left.Add(-1)
	}
}

// await returns once the member holds a part: it spins for teamSpin, then
// sleeps until a caller wakes it.
func (m *teamMember) await() {
	start := time.Now()
	for i := 1; ; i++ {
		switch m.state.Load() {
		case memberReady:
			return
		case memberWaiting:
			if i%256 != 0 {
				continue
			}
			if time.Since(start) > teamSpin && m.state.CompareAndSwap(memberWaiting, memberAsleep) {
				<-m.wake // the caller that claimed it marks it ready before it sends
				continue
			}
			// Let the caller run if it waits for this processor (GOMAXPROCS
			// lowered since the team started: spinning alone cost 200 µs
			// per section there, a 300× slower forward).
			runtime.Gosched()
		}
	}
}

// give hands part to m if m is waiting or asleep.
func (m *teamMember) give(job func(int), part int, left *atomic.Int32) bool {
	asleep := false
	if !m.state.CompareAndSwap(memberWaiting, memberClaimed) {
		if !m.state.CompareAndSwap(memberAsleep, memberClaimed) {
			return false
		}
		asleep = true
	}
	m.job, m.part, m.left = job, part, left
	m.state.Store(memberReady)
	if asleep {
		m.wake <- struct{}{}
	}
	return true
}

// runParts runs fn(0), …, fn(parts-1) concurrently and returns when all
// have returned: part 0 on the calling goroutine, the others on waiting
// team members, or on new goroutines when none is waiting.
func runParts(parts int, fn func(part int)) {
	if parts <= 1 {
		if parts == 1 {
			fn(0)
		}
		return
	}
	left := new(atomic.Int32)
	left.Store(int32(parts - 1))
	members, next := teamMembers(), 0
	for p := 1; p < parts; p++ {
		given := false
		for ; next < len(members) && !given; next++ {
			given = members[next].give(fn, p, left)
		}
		if !given {
			go func() {
				fn(p)
				left.Add(-1)
			}()
		}
	}
	fn(0)
	// The other parts were started with this one and take about as long:
	// spin briefly, then yield the processor (a part on a new goroutine may
	// need it) until they are done.
	for i := 0; left.Load() > 0; i++ {
		if i > 1024 {
			runtime.Gosched()
		}
	}
}
