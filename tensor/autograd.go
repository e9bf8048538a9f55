package tensor

import "slices"

// ---------------------------------------------------------------------------
// Reverse-mode autograd.
//
// An op that has an input with requiresGrad records a node on its output: the
// op's name, its inputs and a closure that, given the gradient of the output,
// accumulates gradients into the inputs. Closures capture Detach()ed inputs
// for the values they need, so the backward pass itself records nothing.
// ---------------------------------------------------------------------------

type node struct {
	op       string
	parents  []*Tensor
	backward func(g *Tensor)
}

// SetRequiresGrad marks a leaf tensor as a parameter whose gradient Backward
// should compute. It returns t.
func (t *Tensor) SetRequiresGrad(on bool) *Tensor {
	if on && t.dtype != F32 {
		fail("requires_grad", "only float32 tensors have gradients, not %s", t.dtype)
	}
	t.requiresGrad = on
	return t
}

// RequiresGrad reports whether t is a leaf parameter or depends on one.
func (t *Tensor) RequiresGrad() bool { return t.needsGrad() }

func (t *Tensor) needsGrad() bool { return (t.requiresGrad && t.paused.Load() == 0) || t.node != nil }

// PauseGrad makes a parameter record nothing until the matching ResumeGrad
// (inference). Pauses nest and are safe from many goroutines at once: a
// parameter stays paused while any caller holds a pause, so goroutines that
// each pause and resume around their own sampling never race.
func (t *Tensor) PauseGrad() { t.paused.Add(1) }

// ResumeGrad undoes one PauseGrad.
func (t *Tensor) ResumeGrad() {
	if t.paused.Add(-1) < 0 {
		t.paused.Add(1)
		fail("resume_grad", "ResumeGrad without a PauseGrad")
	}
}

func anyNeedsGrad(ts ...*Tensor) bool {
	for _, x := range ts {
		if x != nil && x.needsGrad() {
			return true
		}
	}
	return false
}

// Grad returns the accumulated gradient (nil before Backward).
func (t *Tensor) Grad() *Tensor { return t.grad }

// ZeroGrad drops the accumulated gradient.
func (t *Tensor) ZeroGrad() { t.grad = nil }

// SetGrad replaces the gradient (used by gradient clipping and tests).
func (t *Tensor) SetGrad(g *Tensor) { t.grad = g }

func (t *Tensor) record(op string, backward func(g *Tensor), parents ...*Tensor) {
	t.node = &node{op: op, parents: parents, backward: backward}
}

// accumulate adds g into t's gradient if t takes part in the graph.
// Gradients are never updated in place: one g may be shared by several inputs.
func (t *Tensor) accumulate(g *Tensor) {
	if t == nil || !t.needsGrad() {
		return
	}
	if len(g.shape) != len(t.shape) || numel(g.shape) != numel(t.shape) {
		fail("backward", "gradient %v for tensor %v (op %s)", g.shape, t.shape, t.opName())
	}
	if t.grad == nil {
		t.grad = g.Detach()
		return
	}
	t.grad = binary("grad_accumulate", OpAdd, t.grad, g)
}

func (t *Tensor) opName() string {
	if t.node == nil {
		return "leaf"
	}
	return t.node.op
}

// Backward computes d(t)/d(leaf) for every leaf that requires a gradient,
// adding into their Grad. t must be a one-element tensor. The graph is
// released afterwards: intermediate tensors keep neither node nor gradient.
func (t *Tensor) Backward() {
	if t.Numel() != 1 {
		fail("backward", "called on a tensor of shape %v; want one element", t.shape)
	}
	t.BackwardWith(Full(t.dev, 1, t.shape...))
}

// BackwardRelease is Backward for a training step that reads nothing of
// the graph afterwards but t and the leaves' gradients: as the pass moves
// down the network it hands the buffers of the graph's intermediate tensors
// (the activations saved for backward) back to the device (Release), and
// so the gradients that flowed through them once they are spent, where the
// gradients further down and the next step's forward find them instead of
// fresh memory that must be cleared. Buffers that a leaf shares (a view of
// a parameter, a leaf's gradient) and t's own are kept.
func (t *Tensor) BackwardRelease() {
	if t.Numel() != 1 {
		fail("backward", "called on a tensor of shape %v; want one element", t.shape)
	}
	t.backward(Full(t.dev, 1, t.shape...), true)
}

// BackwardWith runs the backward pass seeded with gradient g (same shape as t).
func (t *Tensor) BackwardWith(g *Tensor) { t.backward(g, false) }

func (t *Tensor) backward(g *Tensor, release bool) {
	if !t.needsGrad() {
		fail("backward", "tensor does not require a gradient (no parameter took part)")
	}
	// Topological order by iterative DFS (the graph can be thousands deep).
	var order []*Tensor
	visited := map[*Tensor]bool{}
	type frame struct {
		t *Tensor
		i int
	}
	stack := []frame{{t, 0}}
	visited[t] = true
	for len(stack) > 0 {
		f := &stack[len(stack)-1]
		if f.t.node == nil || f.i == len(f.t.node.parents) {
			order = append(order, f.t)
			stack = stack[:len(stack)-1]
			continue
		}
		p := f.t.node.parents[f.i]
		f.i++
		if p != nil && p.needsGrad() && !visited[p] {
			visited[p] = true
			stack = append(stack, frame{p, 0})
		}
	}
	visited = nil
	t.accumulate(g)
	// Each step drops the graph's references to what it has finished with
	// (order[i], x's node with the inputs its closure saved, x's gradient),
	// so activations become garbage as the pass moves down the network, as
	// PyTorch frees saved tensors, instead of all living until the end.
	// With release, a buffer goes back to the device as soon as every graph
	// tensor on it (an activation and its views) has run its backward: all
	// their consumers ran before them, so nothing reads it again, and the
	// gradients allocated further down the pass reuse it.
	//
	// A gradient's buffer goes back likewise once no tensor's gradient is on
	// it any more: a backward function may hand its g (or a view of it) on
	// to its inputs unchanged, so gradRefs counts, per buffer, the graph
	// tensors whose gradient is on it; the inputs' gradients are looked at
	// after each backward function. A leaf's gradient is never given up, so
	// its buffer never goes back; nor does a gradient on an activation's
	// buffer (left to the collector).
	var pending map[Buffer]int // with release: graph tensors per buffer not yet done
	var gradRefs map[Buffer]int
	recycler, _ := t.dev.(Recycler)
	if release {
		pending = map[Buffer]int{}
		for _, x := range order {
			if x.node == nil || x == t {
				pending[x.buf] = -1 << 30 // a leaf's or t's: kept
			} else {
				pending[x.buf]++
			}
		}
		gradRefs = map[Buffer]int{}
		if t.grad != nil {
			gradRefs[t.grad.buf]++
		}
	}
	dropGrad := func(b Buffer) {
		if gradRefs[b]--; gradRefs[b] == 0 {
			delete(gradRefs, b)
			if _, activation := pending[b]; !activation && recycler != nil {
				recycler.Recycle(b)
			}
		}
	}
	var inputs, before []*Tensor
	for i := len(order) - 1; i >= 0; i-- {
		x := order[i]
		order[i] = nil
		if x.node == nil {
			continue // a leaf: keeps its gradient
		}
		if x.grad != nil && release {
			inputs, before = inputs[:0], before[:0]
			for _, p := range x.node.parents {
				if p != nil && !slices.Contains(inputs, p) {
					inputs, before = append(inputs, p), append(before, p.grad)
				}
			}
			x.node.backward(x.grad)
			for j, p := range inputs {
				if p.grad == before[j] {
					continue
				}
				if p.grad != nil {
					gradRefs[p.grad.buf]++
				}
				if before[j] != nil {
					dropGrad(before[j].buf)
				}
			}
			dropGrad(x.grad.buf)
		} else if x.grad != nil {
			x.node.backward(x.grad)
		}
		x.grad, x.node = nil, nil
		if release && x != t {
			if pending[x.buf]--; pending[x.buf] == 0 && recycler != nil {
				recycler.Recycle(x.buf)
			}
		}
	}
}
