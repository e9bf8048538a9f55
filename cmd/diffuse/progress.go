package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress draws a one-line bar: step, loss, images/s, ETA.
type progress struct {
	w      io.Writer
	total  int
	start  time.Time
	done0  int // steps already done when the bar started (resume)
	last   time.Time
	isTerm bool
}

func newProgress(w io.Writer, done, total int, isTerm bool) *progress {
	return &progress{w: w, total: total, start: time.Now(), done0: done, isTerm: isTerm}
}

func (p *progress) update(step int, extra string, imgPerSec float64, force bool) {
	now := time.Now()
	if !force && now.Sub(p.last) < 200*time.Millisecond && p.isTerm {
		return
	}
	if !force && !p.isTerm && now.Sub(p.last) < 10*time.Second {
		return
	}
	p.last = now
	frac := float64(step) / float64(max(p.total, 1))
	const width = 24
	n := int(frac * width)
	bar := strings.Repeat("=", n) + strings.Repeat(" ", width-n)
	eta := "?"
	if step > p.done0 {
		per := now.Sub(p.start) / time.Duration(step-p.done0)
		eta = (per * time.Duration(p.total-step)).Round(time.Second).String()
	}
	rate := ""
	if imgPerSec > 0 {
		rate = fmt.Sprintf(" %.1f img/s", imgPerSec)
	} else if step > p.done0 {
		rate = fmt.Sprintf(" %.2f s/step", now.Sub(p.start).Seconds()/float64(step-p.done0))
	}
	line := fmt.Sprintf("step %d/%d [%s] %s%s ETA %s", step, p.total, bar, extra, rate, eta)
	if p.isTerm {
		fmt.Fprintf(p.w, "\r%-100s", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
}

func (p *progress) finish() {
	if p.isTerm {
		fmt.Fprintln(p.w)
	}
}
