package tensor

import "runtime"

// ---------------------------------------------------------------------------
// Strided views handed to Device.Copy and Device.Binary. Before an op is
// issued, axes that are contiguous in every view are merged (and axes of
// size 1 dropped), so a transpose or a broadcast usually reaches the device
// as two or three axes. A device never sees more than MaxViewRank axes:
// a copy with more is issued as several copies over its leading axis, and a
// binary op with more first copies its operands densely.
// ---------------------------------------------------------------------------

// MaxViewRank is the most axes a Copy or Binary passes to a device.
const MaxViewRank = 6

// mergeAxes merges neighbouring axes that are contiguous in every view and
// drops axes of size 1, in place: shape and each view's strides keep the
// merged axes at their front, and their count is returned. An op issues its
// shape and strides from one array (a heap object each, since they pass
// through the Device interface): the views of a batch-1 forward's ops
// mostly merge to one or two axes.
func mergeAxes(shape []int, strides ...[]int) int {
	// Axis k continues the merged axis m−1 when every view steps over that
	// axis exactly as over the whole of axis k.
	continues := func(m, k int) bool {
		for _, st := range strides {
			if st[m-1] != st[k]*shape[k] {
				return false
			}
		}
		return true
	}
	m := 0
	for k, n := range shape {
		switch {
		case n == 1:
			continue
		case m > 0 && continues(m, k):
			shape[m-1] *= n
			for _, st := range strides {
				st[m-1] = st[k]
			}
		default:
			shape[m] = n
			for _, st := range strides {
				st[m] = st[k]
			}
			m++
		}
	}
	return m
}

// copyView issues dev.Copy of src into dst over shape.
func copyView(dev Device, dst, src Strided, shape []int) {
	if numel(shape) == 0 {
		return
	}
	s, st := mergedViews(shape, dst.Strides, src.Strides)
	ds, ss := st[0], st[1]
	if len(s) <= MaxViewRank {
		dev.Copy(Strided{Buf: dst.Buf, Off: dst.Off, Strides: ds}, Strided{Buf: src.Buf, Off: src.Off, Strides: ss}, s)
		return
	}
	for i := range s[0] {
		copyView(dev, Strided{Buf: dst.Buf, Off: dst.Off + i*ds[0], Strides: ds[1:]},
			Strided{Buf: src.Buf, Off: src.Off + i*ss[0], Strides: ss[1:]}, s[1:])
	}
}

// binaryView issues dev.Binary of a and b, each broadcast to shape, into
// the dense dst.
func binaryView(dev Device, op BinaryOp, dst Buffer, a, b *Tensor, shape []int) {
	n := numel(shape)
	if n == 0 {
		return
	}
	r := len(shape)
	var room [3 * viewRoom]int // dst's, a's and b's strides: on the stack where they fit
	in := room[:]
	if 3*r > len(in) {
		in = make([]int, 3*r)
	}
	ds, as, bs := in[:r], in[r:2*r], in[2*r:3*r]
	fillDenseStrides(ds, shape)
	a.broadcastStrides(as, shape)
	b.broadcastStrides(bs, shape)
	s, st := mergedViews(shape, ds, as, bs)
	if len(s) > MaxViewRank {
		// Rare (a broadcast pattern alternating over seven axes or more):
		// copy both operands densely, after which one axis remains.
		da, db := Empty(dev, F32, shape...), Empty(dev, F32, shape...)
		copyView(dev, da.strided(), a.broadcastView(shape), shape)
		copyView(dev, db.strided(), b.broadcastView(shape), shape)
		dev.Binary(op, dst, Strided{Buf: da.buf, Strides: []int{1}}, Strided{Buf: db.buf, Strides: []int{1}}, []int{n})
		runtime.KeepAlive(da)
		runtime.KeepAlive(db)
		return
	}
	dev.Binary(op, dst, Strided{Buf: a.buf, Off: a.off, Strides: st[1]}, Strided{Buf: b.buf, Off: b.off, Strides: st[2]}, s)
}

// viewRoom is the rank up to which mergedViews and binaryView work on the
// stack.
const viewRoom = 8

// mergedViews returns shape and the strides of up to three views with their
// axes merged (mergeAxes): merged on the stack where the rank allows, then
// copied out in one array of the merged rank's length — what a device gets
// through its interface, a heap object.
func mergedViews(shape []int, views ...[]int) (s []int, st [3][]int) {
	r, v := len(shape), len(views)
	var room [4 * viewRoom]int
	all := room[:]
	if (1+v)*r > len(all) {
		all = make([]int, (1+v)*r)
	}
	ms := all[:r]
	copy(ms, shape)
	var work [3][]int
	for i, view := range views {
		work[i] = all[(1+i)*r : (2+i)*r]
		copy(work[i], view)
	}
	m := mergeAxes(ms, work[:v]...)
	out := make([]int, (1+v)*m)
	s = out[:m:m]
	copy(s, ms[:m])
	for i := range v {
		st[i] = out[(1+i)*m : (2+i)*m : (2+i)*m]
		copy(st[i], work[i][:m])
	}
	return s, st
}
