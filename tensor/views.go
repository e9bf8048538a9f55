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
// drops axes of size 1.
func mergeAxes(shape []int, strides ...[]int) ([]int, [][]int) {
	outShape := []int{}
	out := make([][]int, len(strides))
	for k := range shape {
		if shape[k] == 1 {
			continue
		}
		if m := len(outShape) - 1; m >= 0 {
			mergeable := true
			for v := range strides {
				if out[v][m] != strides[v][k]*shape[k] {
					mergeable = false
					break
				}
			}
			if mergeable {
				outShape[m] *= shape[k]
				for v := range strides {
					out[v][m] = strides[v][k]
				}
				continue
			}
		}
		outShape = append(outShape, shape[k])
		for v := range strides {
			out[v] = append(out[v], strides[v][k])
		}
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
