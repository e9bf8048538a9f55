//go:build !windows

package vulkan

import (
	"fmt"
	"slices"
	"time"
)

// A profile of the shaders a workload dispatches: while profiling is on,
// every dispatch is submitted alone and waited for, and its wall time is
// added to its shader's and grid's entry. Each dispatch then also pays one
// submission and one wait (tens of microseconds), so the profile ranks the
// heavy dispatches rightly and overstates the light ones; the workload runs
// slower as a whole.

// SetProfile turns the per-dispatch profile on (emptying it) or off.
func (d *Device) SetProfile(on bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	err := d.flushLocked()
	d.prof = nil
	if on {
		d.prof = map[string]*ProfileEntry{}
	}
	return err
}

// Profile returns the profile's entries, the longest total first.
func (d *Device) Profile() []ProfileEntry {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]ProfileEntry, 0, len(d.prof))
	for _, e := range d.prof {
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b ProfileEntry) int { return int(b.Time - a.Time) })
	return out
}

// timeDispatch submits what is pending, then p alone, and adds the wait.
func (d *Device) timeDispatch(p *pipeline, name string, bufs []uintptr, push []uint32, gx, gy, gz int) error {
	if err := d.s.flush(); err != nil {
		return err
	}
	t0 := time.Now()
	if err := d.s.dispatch(p, bufs, push, gx, gy, gz); err != nil {
		return err
	}
	if err := d.s.flush(); err != nil {
		return err
	}
	key := fmt.Sprintf("%s %d×%d×%d", name, gx, gy, gz)
	e := d.prof[key]
	if e == nil {
		e = &ProfileEntry{Shader: name, Grid: [3]int{gx, gy, gz}}
		d.prof[key] = e
	}
	e.Calls++
	e.Time += time.Since(t0)
	return nil
}
