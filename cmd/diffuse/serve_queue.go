package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/png"
	"sync"
	"sync/atomic"
	"time"
)

// The server runs one job at a time on its device, first in first out;
// waiting jobs see their position. A job whose client goes away or that
// is interrupted is cancelled (before its next model evaluation when it
// runs). Text-to-image jobs of a checkpoint with the same settings are
// merged into one batch, which the U-Net runs faster than one by one.

// Job states.
const (
	stateQueued    = "queued"
	stateRunning   = "running"
	stateDone      = "done"
	stateFailed    = "failed"
	stateCancelled = "cancelled"
)

var (
	errQueueFull    = errors.New("the queue is full; try again shortly")
	errShuttingDown = errors.New("the server is shutting down")
	errInterrupted  = errors.New("interrupted")
	errClientGone   = errors.New("the client went away")
)

// job is one request in the queue.
type job struct {
	id     string
	req    *genRequest
	ctx    context.Context
	cancel context.CancelCauseFunc
	queued time.Time
	done   chan struct{} // closed when the job ends

	mu          sync.Mutex
	state       string
	started     time.Time
	step, total int
	preview     []byte // PNG of the latest preview
	previewAt   time.Time
	images      []*genImage
	err         error
	changed     chan struct{} // closed (and replaced) on every change
}

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func newJob(parent context.Context, req *genRequest) *job {
	ctx, cancel := context.WithCancelCause(parent)
	return &job{id: newID(), req: req, ctx: ctx, cancel: cancel, queued: time.Now(), done: make(chan struct{}),
		state: stateQueued, changed: make(chan struct{})}
}

// notify wakes whoever watches the job; call with j.mu held.
func (j *job) notify() {
	close(j.changed)
	j.changed = make(chan struct{})
}

// jobStatus is a snapshot of a job.
type jobStatus struct {
	State    string  `json:"state"`
	Position int     `json:"position"` // 1 = next; 0 when running or ended
	Step     int     `json:"step"`
	Total    int     `json:"total"`
	Progress float64 `json:"progress"`
	ETA      float64 `json:"eta"` // seconds, estimated from the steps so far
	Elapsed  float64 `json:"elapsed"`
	Error    string  `json:"error,omitempty"`
}

func (j *job) status(q *queue) (jobStatus, <-chan struct{}) {
	pos := q.position(j)
	j.mu.Lock()
	defer j.mu.Unlock()
	s := jobStatus{State: j.state, Position: pos, Step: j.step, Total: j.total}
	if j.total > 0 {
		s.Progress = float64(j.step) / float64(j.total)
	}
	if !j.started.IsZero() {
		s.Elapsed = time.Since(j.started).Seconds()
		if j.step > 0 && j.state == stateRunning {
			s.ETA = s.Elapsed / float64(j.step) * float64(j.total-j.step)
		}
	}
	if j.err != nil {
		s.Error = j.err.Error()
	}
	return s, j.changed
}

// progress records steps done and, at most every previewEvery, a preview.
func (j *job) progress(done, total int, preview func() image.Image) {
	const previewEvery = 300 * time.Millisecond
	j.mu.Lock()
	j.step, j.total = done, total
	want := preview != nil && (time.Since(j.previewAt) >= previewEvery || done == total)
	j.mu.Unlock()
	var b []byte
	if want {
		if img := preview(); img != nil {
			var buf bytes.Buffer
			if png.Encode(&buf, img) == nil {
				b = buf.Bytes()
			}
		}
	}
	j.mu.Lock()
	if b != nil {
		j.preview, j.previewAt = b, time.Now()
	}
	j.notify()
	j.mu.Unlock()
}

func (j *job) finish(state string, images []*genImage, err error) {
	j.mu.Lock()
	if j.state == stateDone || j.state == stateFailed || j.state == stateCancelled {
		j.mu.Unlock()
		return
	}
	j.state, j.images, j.err = state, images, err
	if state == stateDone {
		j.step = j.total
	}
	j.notify()
	j.mu.Unlock()
	j.cancel(nil) // release the context
	close(j.done)
}

func (j *job) latestPreview() []byte {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.preview
}

// queue is the FIFO of jobs and the worker that runs them.
type queue struct {
	mu      sync.Mutex
	pending []*job
	running []*job
	limit   int // waiting jobs at most
	closed  bool
	wake    chan struct{}
	reg     *registry
	gallery *gallery
	stopped chan struct{} // closed when the worker has returned
	merged  atomic.Int64  // jobs that joined another's batch
}

func newQueue(limit int, reg *registry, g *gallery) *queue {
	return &queue{limit: limit, wake: make(chan struct{}, 1), reg: reg, gallery: g, stopped: make(chan struct{})}
}

// submit queues a job, or says why not (errQueueFull, errShuttingDown).
func (q *queue) submit(j *job) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.closed:
		return errShuttingDown
	case len(q.pending) >= q.limit:
		return errQueueFull
	}
	q.pending = append(q.pending, j)
	select {
	case q.wake <- struct{}{}:
	default:
	}
	// A job cancelled while it waits leaves the queue at once.
	go func() {
		select {
		case <-j.ctx.Done():
			if q.remove(j) {
				j.finish(stateCancelled, nil, context.Cause(j.ctx))
			}
		case <-j.done:
		}
	}()
	return nil
}

// remove takes a waiting job out of the queue; false if it is not waiting.
func (q *queue) remove(j *job) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, p := range q.pending {
		if p == j {
			q.pending = append(q.pending[:i:i], q.pending[i+1:]...)
			return true
		}
	}
	return false
}

// position is 1 for the next job to run, 0 for one not waiting.
func (q *queue) position(j *job) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, p := range q.pending {
		if p == j {
			return i + 1
		}
	}
	return 0
}

// counts returns the jobs waiting and running.
func (q *queue) counts() (waiting, running int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending), len(q.running)
}

// current is the first running job, or nil.
func (q *queue) current() *job {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.running) == 0 {
		return nil
	}
	return q.running[0]
}

// interrupt cancels the running jobs (A1111's interrupt).
func (q *queue) interrupt() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, j := range q.running {
		j.cancel(errInterrupted)
	}
	return len(q.running)
}

// next takes the first waiting job and the ones that can be merged with it.
func (q *queue) next() []*job {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) == 0 {
		return nil
	}
	first := q.pending[0]
	batch := []*job{first}
	var keep []*job
	b := q.reg.peek(first.req.Model) // merging needs the model loaded already; loading waits for run
	images := first.req.N
	for _, j := range q.pending[1:] {
		if b != nil && j.req.Model == first.req.Model && images+j.req.N <= serveMaxBatch && b.mergeable(first.req, j.req) {
			batch = append(batch, j)
			images += j.req.N
		} else {
			keep = append(keep, j)
		}
	}
	q.pending = keep
	q.running = batch
	q.merged.Add(int64(len(batch) - 1))
	return batch
}

// run is the worker: it runs jobs until the queue is closed and empty.
func (q *queue) run() {
	defer close(q.stopped)
	for {
		batch := q.next()
		if batch == nil {
			q.mu.Lock()
			closed := q.closed
			q.mu.Unlock()
			if closed {
				return
			}
			<-q.wake
			continue
		}
		q.runBatch(batch)
		q.mu.Lock()
		q.running = nil
		q.mu.Unlock()
	}
}

func (q *queue) runBatch(batch []*job) {
	var live []*job
	for _, j := range batch {
		if j.ctx.Err() != nil {
			j.finish(stateCancelled, nil, context.Cause(j.ctx))
			continue
		}
		j.mu.Lock()
		j.state, j.started = stateRunning, time.Now()
		j.notify()
		j.mu.Unlock()
		live = append(live, j)
	}
	if len(live) == 0 {
		return
	}
	// The batch runs while any of its jobs still wants it.
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	left := len(live)
	var mu sync.Mutex
	for _, j := range live {
		go func() {
			select {
			case <-j.ctx.Done():
				mu.Lock()
				left--
				if left == 0 {
					cancel(context.Cause(j.ctx))
				}
				mu.Unlock()
			case <-ctx.Done():
			}
		}()
	}
	reqs := make([]*genRequest, len(live))
	for i, j := range live {
		reqs[i] = j.req
	}
	prog := func(done, total int, preview func() image.Image) {
		for i, j := range live {
			if i == 0 {
				j.progress(done, total, preview)
			} else {
				j.progress(done, total, nil)
			}
		}
	}
	results, err := q.runModel(ctx, reqs, prog)
	for i, j := range live {
		switch {
		case j.ctx.Err() != nil:
			j.finish(stateCancelled, nil, context.Cause(j.ctx))
		case err != nil:
			j.finish(stateFailed, nil, err)
		case len(results[i]) == 0:
			j.finish(stateFailed, nil, errWithheld)
		default:
			for _, im := range results[i] {
				q.gallery.add(im)
			}
			j.finish(stateDone, results[i], nil)
		}
	}
}

// errWithheld: the safety check withheld every image of a request.
var errWithheld = errors.New("the safety check withheld every image of this request (the server runs with -safety block)")

// runModel loads the model and runs; a panic in the engine becomes an error.
func (q *queue) runModel(ctx context.Context, reqs []*genRequest, prog progressFunc) (out [][]*genImage, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("internal error: %v", r)
		}
	}()
	b, err := q.reg.get(reqs[0].Model)
	if err != nil {
		return nil, err
	}
	out, err = b.run(ctx, reqs, prog)
	if err == nil && len(out) != len(reqs) {
		err = fmt.Errorf("internal error: %d results for %d requests", len(out), len(reqs))
	}
	return out, err
}

// close stops taking jobs and cancels the waiting ones; the running one
// goes on until it finishes or its context is cancelled.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	waiting := q.pending
	q.pending = nil
	q.mu.Unlock()
	for _, j := range waiting {
		j.finish(stateCancelled, nil, errShuttingDown)
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// gallery keeps the latest images in memory (at most maxBytes of PNG) for
// the page and the url answers.
type gallery struct {
	mu       sync.Mutex
	images   []*genImage
	bytes    int
	maxBytes int
}

func (g *gallery) add(im *genImage) {
	g.mu.Lock()
	defer g.mu.Unlock()
	im.ID, im.Created = newID(), time.Now()
	g.images = append(g.images, im)
	g.bytes += len(im.png)
	for len(g.images) > 1 && g.bytes > g.maxBytes {
		g.bytes -= len(g.images[0].png)
		g.images = g.images[1:]
	}
}

func (g *gallery) find(id string) *genImage {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, im := range g.images {
		if im.ID == id {
			return im
		}
	}
	return nil
}

// list returns the images newest first.
func (g *gallery) list() []*genImage {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*genImage, len(g.images))
	for i, im := range g.images {
		out[len(out)-1-i] = im
	}
	return out
}
