//go:build !windows

package vulkan

import (
	"fmt"
	"runtime"

	"github.com/godiffuse/godiffuse/tensor"
)

// Elementwise ops, views, reductions, dropout and the Adam step.

// Fill implements tensor.Device.
func (d *Device) Fill(dst tensor.Buffer, n int, v float32) {
	b := d.f("fill", dst, n)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.s.fill(b.b.buf, 0, uint64(4*n), f32bits(v)); err != nil {
		d.recordLocked("fill", err)
	}
	runtime.KeepAlive(b)
}

// Unary implements tensor.Device.
func (d *Device) Unary(op tensor.UnaryOp, dst, x tensor.Buffer, n int, p tensor.UnaryParams) {
	y, xb := d.f("unary", dst, n), d.f("unary", x, n)
	gx, gy := d.grid1(n)
	d.run("unary", []*Buffer{y, xb}, []uint32{uint32(n), uint32(op), f32bits(p.Alpha), f32bits(p.Beta)}, gx, gy, 1)
}

// UnaryBackward implements tensor.Device.
func (d *Device) UnaryBackward(op tensor.UnaryOp, dx, x, dy tensor.Buffer, n int, p tensor.UnaryParams) {
	g, xb, gy := d.f("unary backward", dx, n), d.f("unary backward", x, n), d.f("unary backward", dy, n)
	wx, wy := d.grid1(n)
	d.run("unary_backward", []*Buffer{g, xb, gy}, []uint32{uint32(n), uint32(op), f32bits(p.Alpha), f32bits(p.Beta)}, wx, wy, 1)
}

func denseStrides(shape []int) []int {
	s := make([]int, len(shape))
	acc := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= shape[i]
	}
	return s
}

// strided runs the binary shader (op 0–3, or 4 = copy a) with dst a view
// too, over at most tensor.MaxViewRank axes (package tensor merges and
// splits views to fit).
func (d *Device) strided(name string, op int, dst, a, b tensor.Strided, shape []int) {
	n := 1
	for _, s := range shape {
		n *= s
	}
	if n == 0 {
		return
	}
	if len(shape) > tensor.MaxViewRank {
		d.record(name, fmt.Errorf("a view of %d axes (the shader takes %d)", len(shape), tensor.MaxViewRank))
		return
	}
	cs, st := shape, [][]int{dst.Strides, a.Strides, b.Strides}
	push := make([]uint32, 30)
	push[0], push[1], push[2] = uint32(n), uint32(op), uint32(len(cs))
	push[3], push[4], push[5] = uint32(a.Off), uint32(b.Off), uint32(dst.Off)
	for k := range cs {
		push[6+k] = uint32(cs[k])
		push[12+k] = uint32(int32(st[1][k]))
		push[18+k] = uint32(int32(st[2][k]))
		push[24+k] = uint32(int32(st[0][k]))
	}
	gx, gy := d.grid1(n)
	d.run("binary", []*Buffer{dst.Buf.(*Buffer), a.Buf.(*Buffer), b.Buf.(*Buffer)}, push, gx, gy, 1)
}

// Binary implements tensor.Device.
func (d *Device) Binary(op tensor.BinaryOp, dst tensor.Buffer, a, b tensor.Strided, shape []int) {
	d.own("binary", dst, tensor.F32, 0, 0)
	d.own("binary", a.Buf, tensor.F32, 0, 0)
	d.own("binary", b.Buf, tensor.F32, 0, 0)
	d.strided("binary", int(op), tensor.Strided{Buf: dst, Strides: denseStrides(shape)}, a, b, shape)
}

// Copy implements tensor.Device.
func (d *Device) Copy(dst, src tensor.Strided, shape []int) {
	d.own("copy", dst.Buf, tensor.F32, 0, 0)
	d.own("copy", src.Buf, tensor.F32, 0, 0)
	if len(shape) == 0 {
		shape = []int{1}
		dst.Strides, src.Strides = []int{1}, []int{1}
	}
	d.strided("copy", 4, dst, src, src, shape)
}

// Reduce implements tensor.Device.
func (d *Device) Reduce(op tensor.ReduceOp, dst, x tensor.Buffer, p tensor.ReduceParams) {
	y, xb := d.f("reduce", dst, p.Outer*p.Inner), d.f("reduce", x, p.Outer*p.N*p.Inner)
	gx, gy := d.grid1(p.Outer * p.Inner)
	d.run("reduce", []*Buffer{y, xb}, []uint32{uint32(p.Outer), uint32(p.N), uint32(p.Inner), uint32(op)}, gx, gy, 1)
}

// Dropout implements tensor.Device (the CPU's hash, bit for bit).
func (d *Device) Dropout(dst, x tensor.Buffer, n int, p tensor.DropoutParams) {
	y, xb := d.f("dropout", dst, n), d.f("dropout", x, n)
	gx, gy := d.grid1(n)
	d.run("dropout", []*Buffer{y, xb}, []uint32{uint32(n), f32bits(p.P), uint32(p.Seed), uint32(p.Seed >> 32)}, gx, gy, 1)
}

// AdamStep implements tensor.Device.
func (d *Device) AdamStep(param, grad, m, v tensor.Buffer, n int, p tensor.AdamParams) {
	pb, gb, mb, vb := d.f("adam", param, n), d.f("adam", grad, n), d.f("adam", m, n), d.f("adam", v, n)
	gx, gy := d.grid1(n)
	d.run("adam", []*Buffer{pb, gb, mb, vb}, []uint32{uint32(n), f32bits(p.Beta1), f32bits(p.Beta2), f32bits(p.Eps),
		f32bits(p.OneMinusBeta1), f32bits(p.OneMinusBeta2), f32bits(p.StepSize), f32bits(p.Bias2Sqrt), f32bits(p.LR),
		f32bits(p.L2), f32bits(p.DecoupledWD), f32bits(p.GradScale)}, gx, gy, 1)
}
