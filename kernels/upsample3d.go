package kernels

import "github.com/godiffuse/godiffuse/tensor"

// ---------------------------------------------------------------------------
// ×2 upsampling of NCDHW volumes, nearest or trilinear (see
// tensor.Upsample3DParams). Both are separable: one pass per axis doubles
// that axis of an (outer, L, inner) array. Along an axis of length L,
// output j reads two inputs with weights
//
//	nearest:    x[j/2]·1
//	trilinear:  j = 2i:   0.75·x[i] + 0.25·x[max(i-1, 0)]
//	            j = 2i+1: 0.75·x[i] + 0.25·x[min(i+1, L-1)]
//
// and the backward pass is the transpose: each dy[j] is added back to the
// two inputs it read, with the same weights.
// ---------------------------------------------------------------------------

// upTaps returns the two inputs output j reads and their weights.
func upTaps(mode tensor.Interpolation, j, L int) (i0 int, w0 float32, i1 int, w1 float32) {
	i := j / 2
	if mode == tensor.Nearest {
		return i, 1, i, 0
	}
	if j%2 == 0 {
		return i, 0.75, max(i-1, 0), 0.25
	}
	return i, 0.75, min(i+1, L-1), 0.25
}

// upAxis doubles the middle axis: y (outer, 2L, inner) from x (outer, L, inner).
func upAxis(y, x []float32, outer, L, inner int, mode tensor.Interpolation) {
	for o := range outer {
		xo, yo := x[o*L*inner:][:L*inner], y[o*2*L*inner:][:2*L*inner]
		for j := range 2 * L {
			i0, w0, i1, w1 := upTaps(mode, j, L)
			dst, a, b := yo[j*inner:][:inner], xo[i0*inner:][:inner], xo[i1*inner:][:inner]
			for k := range dst {
				dst[k] = w0*a[k] + w1*b[k]
			}
		}
	}
}

// upAxisBackward is upAxis transposed: dx (outer, L, inner) from dy (outer, 2L, inner).
func upAxisBackward(dx, dy []float32, outer, L, inner int, mode tensor.Interpolation) {
	clear(dx[:outer*L*inner])
	for o := range outer {
		dxo, dyo := dx[o*L*inner:][:L*inner], dy[o*2*L*inner:][:2*L*inner]
		for j := range 2 * L {
			i0, w0, i1, w1 := upTaps(mode, j, L)
			src, a, b := dyo[j*inner:][:inner], dxo[i0*inner:][:inner], dxo[i1*inner:][:inner]
			for k, v := range src {
				a[k] += w0 * v
			}
			if w1 != 0 {
				for k, v := range src {
					b[k] += w1 * v
				}
			}
		}
	}
}

// Upsample3D implements tensor.Device: W, then H, then D doubled, each
// (n, c) volume on its own.
func (d *Device) Upsample3D(y, x tensor.Buffer, p tensor.Upsample3DParams) {
	ys, xs := f32(y), f32(x)
	D, H, W := p.D, p.H, p.W
	in, out := D*H*W, 8*D*H*W
	d.parallelFor(p.N*p.C, 1, func(lo, hi int) {
		t1, t2 := make([]float32, 2*in), make([]float32, 4*in)
		for nc := lo; nc < hi; nc++ {
			upAxis(t1, xs[nc*in:][:in], D*H, W, 1, p.Mode)
			upAxis(t2, t1, D, H, 2*W, p.Mode)
			upAxis(ys[nc*out:][:out], t2, 1, D, 4*H*W, p.Mode)
		}
	})
}

// Upsample3DBackward implements tensor.Device: the three passes of
// Upsample3D transposed, in reverse order.
func (d *Device) Upsample3DBackward(dx, dy tensor.Buffer, p tensor.Upsample3DParams) {
	dxs, dys := f32(dx), f32(dy)
	D, H, W := p.D, p.H, p.W
	in, out := D*H*W, 8*D*H*W
	d.parallelFor(p.N*p.C, 1, func(lo, hi int) {
		t1, t2 := make([]float32, 2*in), make([]float32, 4*in)
		for nc := lo; nc < hi; nc++ {
			upAxisBackward(t2, dys[nc*out:][:out], 1, D, 4*H*W, p.Mode)
			upAxisBackward(t1, t2, D, H, 2*W, p.Mode)
			upAxisBackward(dxs[nc*in:][:in], t1, D*H, W, 1, p.Mode)
		}
	})
}
