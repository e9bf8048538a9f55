package kernels

import "github.com/godiffuse/godiffuse/tensor"

// ---------------------------------------------------------------------------
// Nearest upsampling and embedding lookups.
// ---------------------------------------------------------------------------

// Upsample2x implements tensor.Device: y[n,c,oy,ox] = x[n,c,oy/2,ox/2].
func (d *Device) Upsample2x(y, x tensor.Buffer, p tensor.UpsampleParams) {
	ys, xs := f32(y), f32(x)
	W2 := 2 * p.W
	d.parallelFor(p.N*p.C, 1, func(lo, hi int) {
		for nc := lo; nc < hi; nc++ {
			for iy := range p.H {
				src := xs[(nc*p.H+iy)*p.W:][:p.W]
				dst := ys[(nc*2*p.H+2*iy)*W2:][:W2]
				for ix, v := range src {
					dst[2*ix], dst[2*ix+1] = v, v
				}
				copy(ys[(nc*2*p.H+2*iy+1)*W2:][:W2], dst)
			}
		}
	})
}

// Upsample2xBackward implements tensor.Device: dx[n,c,y,x] = Σ of the 2×2 block of dy.
func (d *Device) Upsample2xBackward(dx, dy tensor.Buffer, p tensor.UpsampleParams) {
	dxs, dys := f32(dx), f32(dy)
	W2 := 2 * p.W
	d.parallelFor(p.N*p.C, 1, func(lo, hi int) {
		for nc := lo; nc < hi; nc++ {
			for iy := range p.H {
				r0 := dys[(nc*2*p.H+2*iy)*W2:][:W2]
				r1 := dys[(nc*2*p.H+2*iy+1)*W2:][:W2]
				out := dxs[(nc*p.H+iy)*p.W:][:p.W]
				for ix := range out {
					out[ix] = (r0[2*ix] + r0[2*ix+1]) + (r1[2*ix] + r1[2*ix+1])
				}
			}
		}
	})
}

// Gather implements tensor.Device: dst[i] = table[idx[i]]. An index outside
// [0, Num) gives a zero row (tensor.Embedding validates indices it can see).
func (d *Device) Gather(dst, table, idx tensor.Buffer, p tensor.GatherParams) {
	ds, ts, is := f32(dst), f32(table), i64(idx)
	for i := range p.Rows {
		row := ds[i*p.Dim : (i+1)*p.Dim]
		if j := is[i]; j >= 0 && j < int64(p.Num) {
			copy(row, ts[int(j)*p.Dim:(int(j)+1)*p.Dim])
		} else {
			clear(row)
		}
	}
}

// ScatterAdd implements tensor.Device: dtable[idx[i]] += src[i].
func (d *Device) ScatterAdd(dtable, idx, src tensor.Buffer, p tensor.GatherParams) {
	ds, is, ss := f32(dtable), i64(idx), f32(src)
	for i := range p.Rows {
		if j := is[i]; j >= 0 && j < int64(p.Num) {
			axpy(1, ss[i*p.Dim:(i+1)*p.Dim], ds[int(j)*p.Dim:(int(j)+1)*p.Dim])
		}
	}
}
