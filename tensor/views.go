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
	s, ds, ss := mergedViews(shape, dst.Strides, src.Strides)
	m := len(s)
	if m <= MaxViewRank {
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
	var room [4 * 8]int // shape, dst's strides, a's and b's, merged in place: on the stack where they fit
	all := room[:]
	if 4*r > len(room) {
		all = make([]int, 4*r)
	}
	s, ds, as, bs := all[:r], all[r:2*r], all[2*r:3*r], all[3*r:4*r]
	copy(s, shape)
	fillDenseStrides(ds, shape)
	a.broadcastStrides(as, shape)
	b.broadcastStrides(bs, shape)
	m := mergeAxes(s, ds, as, bs)
	if m > MaxViewRank {
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
	// What the device gets (through an interface: a heap object), cut to the merged rank.
	out := make([]int, 3*m)
	copy(out, s[:m])
	copy(out[m:], as[:m])
	copy(out[2*m:], bs[:m])
	dev.Binary(op, dst, Strided{Buf: a.buf, Off: a.off, Strides: out[m : 2*m]}, Strided{Buf: b.buf, Off: b.off, Strides: out[2*m:]}, out[:m])
}

// mergedViews returns shape and the strides of two views with their axes
// merged (mergeAxes), in one array of the merged rank's length.
func mergedViews(shape, s1, s2 []int) (s, t1, t2 []int) {
	r := len(shape)
	var room [3 * 8]int // merged here where it fits, then copied out at the merged rank
	all := room[:]
	if 3*r > len(room) {
		all = make([]int, 3*r)
	}
	ms, m1, m2 := all[:r], all[r:2*r], all[2*r:3*r]
	copy(ms, shape)
	copy(m1, s1)
	copy(m2, s2)
	m := mergeAxes(ms, m1, m2)
	out := make([]int, 3*m)
	copy(out, ms[:m])
	copy(out[m:], m1[:m])
	copy(out[2*m:], m2[:m])
	return out[:m], out[m : 2*m], out[2*m:]
}
