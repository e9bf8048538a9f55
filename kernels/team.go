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
// A section's parts are not dealt out: the caller and the members it woke
// claim them one after another from a counter. So when a member is slow to
// start (still waking, or its thread descheduled because another process
// wants the core) the caller takes its part instead of waiting for it — with
// a one-thread job beside a two-thread training run, static parts made every
// section wait out the descheduled thread's time slice, and the run went
// 4× slower (bench/RESULTS.md, 2026-12-04). Which goroutine runs a part
// changes nothing in its result. When every member is busy (nested
// sections, concurrent inference) new goroutines join the section as before.
// ---------------------------------------------------------------------------

// teamSpin is how long a member stays awake after its part, waiting for
// the next.
const teamSpin = 200 * time.Microsecond

type teamMember struct {
	state atomic.Uint32
	sec   *section // the section it was given
	wake  chan struct{}
	_     [64]byte // its own cache line: callers poll state
}

// section is one runParts call.
type section struct {
	fn    func(part int)
	parts int32
	next  atomic.Int32 // the first part not yet claimed
	done  atomic.Int32 // parts finished
}

// claim returns the next unclaimed part; false when none is left.
func (s *section) claim() (int, bool) {
	p := s.next.Add(1) - 1
	return int(p), p < s.parts
}

// runClaimed runs parts until none is left to claim.
func (s *section) runClaimed() {
	for p, ok := s.claim(); ok; p, ok = s.claim() {
		s.fn(p)
		s.done.Add(1)
	}
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
		s := m.sec
		m.sec = nil
		released := false
		for p, ok := s.claim(); ok; p, ok = s.claim() {
			s.fn(p)
			if s.next.Load() >= s.parts {
				// Its last part: claimable again before the caller sees
				// the section end.
				m.state.Store(memberWaiting)
				released = true
			}
			s.done.Add(1)
			if released {
				break
			}
		}
		if !released {
			m.state.Store(memberWaiting)
		}
	}
}

// await returns once the member holds a part: it spins for teamSpin, then
// sleeps until a caller wakes it.
func (m *teamMember) await() {
	start := time.Now()
	crowded := tooFewProcs()
	for i := 1; ; i++ {
		switch m.state.Load() {
		case memberReady:
			return
		case memberAsleep:
			// Every wake-up is one send, by the caller that moved it from
			// asleep to claimed (and marked it ready before sending); so
			// the member takes it here, whether it fell asleep below or
			// was started asleep. It had been taken only after sleeping
			// below: a member started asleep and then given a part left
			// the send in the channel, the next sleep took it at once, and
			// the member spun at full speed, still marked asleep, until
			// the process ended — a core lost to every one-thread job
			// after any two-thread one (bench/RESULTS.md, 2026-12-06,
			// evening).
			<-m.wake
		case memberWaiting:
			if i%256 != 0 {
				continue
			}
			if time.Since(start) > teamSpin && m.state.CompareAndSwap(memberWaiting, memberAsleep) {
				continue // it sleeps at the next poll
			}
			if i%4096 == 0 {
				crowded = tooFewProcs()
			}
			// Let the caller run if it waits for this processor (GOMAXPROCS
			// lowered since the team started: spinning alone cost 200 µs
			// per section there, a 300× slower forward). Not otherwise: a
			// yield is a pass through the scheduler and its lock, which at
			// every 256 polls was a tenth of a batch-1 forward's samples.
			if crowded {
				runtime.Gosched()
			}
		}
	}
}

// tooFewProcs reports whether GOMAXPROCS is below the team's size plus the
// caller (lowered since the team started).
func tooFewProcs() bool { return runtime.GOMAXPROCS(0) <= len(team.members) }

// give hands section s to m if m is waiting or asleep; woke reports the
// latter (the member then needs a processor to run on).
func (m *teamMember) give(s *section) (given, woke bool) {
	if !m.state.CompareAndSwap(memberWaiting, memberClaimed) {
		if !m.state.CompareAndSwap(memberAsleep, memberClaimed) {
			return false, false
		}
		woke = true
	}
	m.sec = s
	m.state.Store(memberReady)
	if woke {
		m.wake <- struct{}{}
	}
	return true, woke
}

// runParts runs fn(0), …, fn(parts-1) concurrently and returns when all
// have returned: on the calling goroutine and on up to parts-1 waiting team
// members (or new goroutines when none is waiting), each claiming the next
// part until none is left.
func runParts(parts int, fn func(part int)) {
	if parts <= 1 {
		if parts == 1 {
			fn(0)
		}
		return
	}
	s := &section{fn: fn, parts: int32(parts)}
	helpers, woke := 0, false
	for _, m := range teamMembers() {
		if helpers == parts-1 {
			break
		}
		if given, w := m.give(s); given {
			helpers++
			woke = woke || w
		}
	}
	// A part on a new goroutine or on a member just woken (both need a
	// processor, and another goroutine may hold the others), or on a member
	// when GOMAXPROCS was lowered below the team's size, may need this
	// goroutine's processor.
	yield := woke || helpers < parts-1 || tooFewProcs()
	for ; helpers < parts-1; helpers++ {
		go s.runClaimed()
	}
	s.runClaimed()
	// The parts still running were claimed about when this goroutine's last
	// one was: spin until they are done, yielding the processor after a
	// while only when another part may need it. A yield is a pass through
	// the scheduler's lock, and one under way when the last part ends
	// delays the caller: at batch 1 these waits had been 3 % of the samples
	// (bench/RESULTS.md, 2026-12-06 evening).
	for i := 0; s.done.Load() < s.parts; i++ {
		if yield && i > 1024 {
			runtime.Gosched()
		}
	}
}
