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
// drops axes of size 1. The merged shape and strides share one array, cut
// to the merged rank (a first pass counts the axes): the views of a batch-1
// forward's ops mostly merge to one or two axes.
func mergeAxes(shape []int, strides ...[]int) ([]int, [][]int) {
	// Axis k continues the merged axis that ends with axis last when every
	// view steps over axis last exactly as over the whole of axis k.
	continues := func(last, k int) bool {
		for v := range strides {
			if strides[v][last] != strides[v][k]*shape[k] {
				return false
			}
		}
		return true
	}
	m, last := 0, -1
	for k, n := range shape {
		if n == 1 {
			continue
		}
		if last < 0 || !continues(last, k) {
			m++
		}
		last = k
	}
	all := make([]int, (1+len(strides))*m)
	outShape := all[:0:m]
	out := make([][]int, len(strides))
	for v := range out {
		out[v] = all[(1+v)*m : (1+v)*m : (2+v)*m]
	}
	last = -1
	for k, n := range shape {
		if n == 1 {
			continue
		}
		if last >= 0 && continues(last, k) {
			outShape[len(outShape)-1] *= n
			for v := range strides {
				out[v][len(out[v])-1] = strides[v][k]
			}
		} else {
			outShape = append(outShape, n)
			for v := range strides {
				out[v] = append(out[v], strides[v][k])
			}
		}
		last = k
	}
	return outShape, out
}

// copyView issues dev.Copy of src into dst over shape.
func copyView(dev Device, dst, src Strided, shape []int) {
	if numel(shape) == 0 {
		return
	}
	s, st := mergeAxes(shape, dst.Strides, src.Strides)
	if len(s) <= MaxViewRank {
		dev.Copy(Strided{Buf: dst.Buf, Off: dst.Off, Strides: st[0]}, Strided{Buf: src.Buf, Off: src.Off, Strides: st[1]}, s)
		return
	}
	for i := range s[0] {
		copyView(dev, Strided{Buf: dst.Buf, Off: dst.Off + i*st[0][0], Strides: st[0][1:]},
			Strided{Buf: src.Buf, Off: src.Off + i*st[1][0], Strides: st[1][1:]}, s[1:])
	}
}

// binaryView issues dev.Binary into the dense dst over shape.
func binaryView(dev Device, op BinaryOp, dst Buffer, a, b Strided, shape []int) {
	n := numel(shape)
	if n == 0 {
		return
	}
	s, st := mergeAxes(shape, denseStrides(shape), a.Strides, b.Strides)
	if len(s) > MaxViewRank {
		// Rare (a broadcast pattern alternating over seven axes or more):
		// copy both operands densely, after which one axis remains.
		da, db := Empty(dev, F32, shape...), Empty(dev, F32, shape...)
		copyView(dev, da.strided(), a, shape)
		copyView(dev, db.strided(), b, shape)
		dev.Binary(op, dst, Strided{Buf: da.buf, Strides: []int{1}}, Strided{Buf: db.buf, Strides: []int{1}}, []int{n})
		runtime.KeepAlive(da)
		runtime.KeepAlive(db)
		return
	}
	dev.Binary(op, dst, Strided{Buf: a.Buf, Off: a.Off, Strides: st[1]}, Strided{Buf: b.Buf, Off: b.Off, Strides: st[2]}, s)
}
