//go:build !windows

package vulkan

import "github.com/godiffuse/godiffuse/tensor"

// ---------------------------------------------------------------------------
// Volumetric ops on the GPU (shaders conv3d.comp and misc.comp): 3-D
// convolution as implicit GEMMs, as Conv2D, and ×2 upsampling of volumes.
// ---------------------------------------------------------------------------

func conv3DPush(p tensor.Conv3DParams, hasBias uint32) []uint32 {
	return []uint32{uint32(p.N), uint32(p.C), uint32(p.D), uint32(p.H), uint32(p.W), uint32(p.F),
		uint32(p.KD), uint32(p.KH), uint32(p.KW), uint32(p.StrideD), uint32(p.StrideH), uint32(p.StrideW),
		uint32(p.PadD), uint32(p.PadH), uint32(p.PadW), uint32(p.OD), uint32(p.OH), uint32(p.OW), hasBias}
}

func conv3DSizes(p tensor.Conv3DParams) (x, w, y int) {
	return p.N * p.C * p.D * p.H * p.W, p.F * p.C * p.KD * p.KH * p.KW, p.N * p.F * p.OD * p.OH * p.OW
}

// Conv3D implements tensor.Device as an implicit GEMM per volume.
func (d *Device) Conv3D(y, x, w, b tensor.Buffer, p tensor.Conv3DParams) {
	nx, nw, ny := conv3DSizes(p)
	yb, xb, wb := d.f("conv3d", y, ny), d.f("conv3d", x, nx), d.f("conv3d", w, nw)
	bb, has := d.orDummy("conv3d", b, p.F)
	name, gx, gy := tiled("conv3d", p.F, p.OD*p.OH*p.OW)
	d.run(name, []*Buffer{yb, wb, xb, bb}, conv3DPush(p, has), gx, gy, p.N)
}

// Conv3DBackwardInput implements tensor.Device.
func (d *Device) Conv3DBackwardInput(dx, dy, w tensor.Buffer, p tensor.Conv3DParams) {
	nx, nw, ny := conv3DSizes(p)
	dxb, dyb, wb := d.f("conv3d backward input", dx, nx), d.f("conv3d backward input", dy, ny), d.f("conv3d backward input", w, nw)
	name, gx, gy := tiled("conv3d_backward_input", p.C, p.D*p.H*p.W)
	d.run(name, []*Buffer{dxb, wb, dyb, d.dummy}, conv3DPush(p, 0), gx, gy, p.N)
}

// Conv3DBackwardWeight implements tensor.Device: dw as one GEMM over all
// volumes, db as two reductions of dy.
func (d *Device) Conv3DBackwardWeight(dw, db, x, dy tensor.Buffer, p tensor.Conv3DParams) {
	nx, nw, ny := conv3DSizes(p)
	xb, dyb := d.f("conv3d backward weight", x, nx), d.f("conv3d backward weight", dy, ny)
	if dw != nil {
		dwb := d.f("conv3d backward weight", dw, nw)
		name, gx, gy := tiled("conv3d_backward_weight", p.F, p.C*p.KD*p.KH*p.KW)
		d.run(name, []*Buffer{dwb, dyb, xb, d.dummy}, conv3DPush(p, 0), gx, gy, 1)
	}
	if db != nil {
		d.f("conv3d backward weight", db, p.F)
		tmp, err := d.Alloc(tensor.F32, p.N*p.F)
		if err != nil {
			d.record("conv3d backward weight", err)
			return
		}
		d.Reduce(tensor.ReduceSum, tmp, dy, tensor.ReduceParams{Outer: p.N * p.F, N: p.OD * p.OH * p.OW, Inner: 1})
		d.Reduce(tensor.ReduceSum, db, tmp, tensor.ReduceParams{Outer: 1, N: p.N, Inner: p.F})
	}
}

func upsample3DPush(p tensor.Upsample3DParams) []uint32 {
	return []uint32{uint32(p.N), uint32(p.C), uint32(p.D), uint32(p.H), uint32(p.W), uint32(p.Mode)}
}

// Upsample3D implements tensor.Device.
func (d *Device) Upsample3D(y, x tensor.Buffer, p tensor.Upsample3DParams) {
	n := p.N * p.C * p.D * p.H * p.W
	yb, xb := d.f("upsample3d", y, 8*n), d.f("upsample3d", x, n)
	gx, gy := d.grid1(8 * n)
	d.run("upsample3d", []*Buffer{yb, xb}, upsample3DPush(p), gx, gy, 1)
}

// Upsample3DBackward implements tensor.Device.
func (d *Device) Upsample3DBackward(dx, dy tensor.Buffer, p tensor.Upsample3DParams) {
	n := p.N * p.C * p.D * p.H * p.W
	dxb, dyb := d.f("upsample3d backward", dx, n), d.f("upsample3d backward", dy, 8*n)
	gx, gy := d.grid1(n)
	d.run("upsample3d_backward", []*Buffer{dxb, dyb}, upsample3DPush(p), gx, gy, 1)
}
