package tensor

// ---------------------------------------------------------------------------
// Volumetric ops: 3-D convolution and ×2 upsampling of (N, C, D, H, W) data,
// the building blocks of nn's UNet3D. Each backward sits under its forward.
// ---------------------------------------------------------------------------

// Conv3D is a 3-D convolution (cross-correlation, as torch.nn.functional.conv3d)
// with the same stride and zero padding on every axis.
//
//	x is (N, C, D, H, W), w is (F, C, KD, KH, KW), b is (F) or nil -> (N, F, OD, OH, OW)
func Conv3D(x, w, b *Tensor, stride, pad int) *Tensor {
	wantF32("conv3d", x, b)
	wantWeight("conv3d", w)
	sameDevice("conv3d", x, w, b)
	if x.Rank() != 5 || w.Rank() != 5 || x.Dim(1) != w.Dim(1) {
		fail("conv3d", "input %v and weight %v (want (N, C, D, H, W) and (F, C, KD, KH, KW))", x.shape, w.shape)
	}
	if b != nil && (b.Rank() != 1 || b.Dim(0) != w.Dim(0)) {
		fail("conv3d", "bias %v for weight %v", b.shape, w.shape)
	}
	if stride < 1 || pad < 0 {
		fail("conv3d", "stride %d and padding %d (want stride ≥ 1, padding ≥ 0)", stride, pad)
	}
	p := Conv3DParams{
		N: x.Dim(0), C: x.Dim(1), D: x.Dim(2), H: x.Dim(3), W: x.Dim(4),
		F: w.Dim(0), KD: w.Dim(2), KH: w.Dim(3), KW: w.Dim(4),
		StrideD: stride, StrideH: stride, StrideW: stride, PadD: pad, PadH: pad, PadW: pad,
	}
	if p.D+2*pad < p.KD || p.H+2*pad < p.KH || p.W+2*pad < p.KW {
		fail("conv3d", "kernel %dx%dx%d larger than padded input %v", p.KD, p.KH, p.KW, x.shape)
	}
	p.OD = (p.D+2*pad-p.KD)/stride + 1
	p.OH = (p.H+2*pad-p.KH)/stride + 1
	p.OW = (p.W+2*pad-p.KW)/stride + 1
	xc, wc := x.Contiguous(), w.Contiguous()
	y := emptyOut(x.dev, p.N, p.F, p.OD, p.OH, p.OW)
	var bb Buffer
	if b != nil {
		bb = b.Contiguous().buf
	}
	if y.Numel() > 0 {
		x.dev.Conv3D(y.buf, xc.buf, wc.buf, bb, p)
	}
	if anyNeedsGrad(xc, wc, b) {
		recordConv("conv3d", y, xc, wc, b, p.F,
			func(dx, dy, w Buffer) { y.dev.Conv3DBackwardInput(dx, dy, w, p) },
			func(dw, db, x, dy Buffer) { y.dev.Conv3DBackwardWeight(dw, db, x, dy, p) })
	}
	return y
}

// Upsample3D doubles D, H and W of x (N, C, D, H, W) by nearest-neighbour or
// trilinear interpolation (see Upsample3DParams).
func Upsample3D(x *Tensor, mode Interpolation) *Tensor {
	wantF32("upsample3d", x)
	if x.Rank() != 5 {
		fail("upsample3d", "input %v (want (N, C, D, H, W))", x.shape)
	}
	if mode != Nearest && mode != Trilinear {
		fail("upsample3d", "unknown interpolation %d", int(mode))
	}
	p := Upsample3DParams{N: x.Dim(0), C: x.Dim(1), D: x.Dim(2), H: x.Dim(3), W: x.Dim(4), Mode: mode}
	xc := x.Contiguous()
	y := emptyOut(x.dev, p.N, p.C, 2*p.D, 2*p.H, 2*p.W)
	if y.Numel() > 0 {
		x.dev.Upsample3D(y.buf, xc.buf, p)
	}
	if xc.needsGrad() {
		y.record("upsample3d", func(g *Tensor) {
			g = g.Contiguous()
			dx := Empty(g.dev, F32, xc.shape...)
			if dx.Numel() > 0 {
				g.dev.Upsample3DBackward(dx.buf, g.buf, p)
			}
			xc.accumulate(dx)
		}, xc)
	}
	return y
}
