package kernels

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/godiffuse/godiffuse/tensor"
)

// TestWidenAllHalves widens every one of the 65,536 half bit patterns at
// every level and compares with the reference bit for bit (NaNs come out
// quiet, as F16C makes them).
func TestWidenAllHalves(t *testing.T) {
	src := make([]uint16, 1<<16+5) // a tail past the last full vector
	for i := range src {
		src[i] = uint16(i)
	}
	for _, level := range Levels() {
		d := NewCPULevel(1, level)
		dst := make([]float32, len(src)+1)
		dst[len(src)] = 42 // guard
		d.widen(dst[:len(src)], src)
		for i, h := range src {
			want := halfToFloat(h)
			if math.Float32bits(dst[i]) != math.Float32bits(want) {
				t.Fatalf("%s: half %#04x → %v (%#08x), want %v", level, h, dst[i], math.Float32bits(dst[i]), want)
			}
		}
		if dst[len(src)] != 42 {
			t.Fatalf("%s: wrote past the end", level)
		}
	}
	// the reference against known values
	for h, want := range map[uint16]float32{0x3c00: 1, 0xc000: -2, 0x7bff: 65504, 0x0001: 1.0 / (1 << 24), 0x3555: 0.33325195} {
		if got := halfToFloat(h); got != want {
			t.Errorf("half %#04x: %v, want %v", h, got, want)
		}
	}
}

// TestHalfWeights: Linear and Conv2D with F16 weights give exactly what the
// same (widened) weights give in float32, at every level, and an F16 weight
// refuses a gradient.
func TestHalfWeights(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for _, level := range Levels() {
		d := NewCPULevel(2, level)
		half := func(shape ...int) (*tensor.Tensor, *tensor.Tensor) {
			n := 1
			for _, s := range shape {
				n *= s
			}
			bits := make([]uint16, n)
			wide := make([]float32, n)
			for i := range bits {
				bits[i] = uint16(r.IntN(0x7800)) | uint16(r.IntN(2))<<15 // finite values
				wide[i] = halfToFloat(bits[i])
			}
			buf, err := d.Alloc(tensor.F16, n)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.UploadF16(buf, 0, bits); err != nil {
				t.Fatal(err)
			}
			h := tensor.Zeros(d, shape...)
			if err := h.Bind(buf); err != nil {
				t.Fatal(err)
			}
			return h, tensor.FromFloat32(d, wide, shape...)
		}
		x := tensor.FromFloat32(d, randSlice(r, 5*37), 5, 37)
		wh, wf := half(19, 37)
		if !slices.Equal(tensor.Linear(x, wh, nil).MustFloat32s(), tensor.Linear(x, wf, nil).MustFloat32s()) {
			t.Errorf("%s: linear with F16 weights differs from float32", level)
		}
		xc := tensor.FromFloat32(d, randSlice(r, 2*16*9*9), 2, 16, 9, 9)
		ch, cf := half(16, 16, 3, 3)
		got := tensor.Conv2D(xc, ch, nil, 1, tensor.PadAll(1)).MustFloat32s()
		if !slices.Equal(got, tensor.Conv2D(xc, cf, nil, 1, tensor.PadAll(1)).MustFloat32s()) {
			t.Errorf("%s: conv2d (winograd) with F16 weights differs from float32", level)
		}
		ph, pf := half(8, 16, 1, 1)
		if !slices.Equal(tensor.Conv2D(xc, ph, nil, 1, tensor.PadAll(0)).MustFloat32s(),
			tensor.Conv2D(xc, pf, nil, 1, tensor.PadAll(0)).MustFloat32s()) {
			t.Errorf("%s: 1×1 conv2d with F16 weights differs from float32", level)
		}
		// gradients flow to x through a frozen F16 weight, never to it
		xg := x.Detach().SetRequiresGrad(true)
		tensor.Sum(tensor.Linear(xg, wh, nil)).Backward()
		xf := x.Detach().SetRequiresGrad(true)
		tensor.Sum(tensor.Linear(xf, wf, nil)).Backward()
		if !slices.Equal(xg.Grad().MustFloat32s(), xf.Grad().MustFloat32s()) {
			t.Errorf("%s: input gradient through an F16 weight differs", level)
		}
		if v, err := wh.Float32s(); err != nil || !slices.Equal(v, wf.MustFloat32s()) {
			t.Errorf("%s: downloading F16 weights: %v", level, err)
		}
		if err := tensor.Catch(func() { wh.SetRequiresGrad(true) }); err == nil {
			t.Errorf("%s: an F16 weight was made to require a gradient", level)
		}
	}
}

// TestHalfScratchKeepsLongest checks the widening buffers of F16 weights:
// a request takes the shortest kept buffer that holds it, beyond keep the
// shortest goes (so the longest stay and serve every later layer, big ones
// included), and ForgetRecycled lets go of them all.
func TestHalfScratchKeepsLongest(t *testing.T) {
	halfArrays.forget()
	defer halfArrays.forget()
	lens := []int{mappedMinLen, 4 * mappedMinLen, 2 * mappedMinLen, 3 * mappedMinLen, 8}
	var bufs [][]float32
	for _, n := range lens {
		bufs = append(bufs, halfArrays.get(n))
	}
	for _, b := range bufs {
		halfArrays.put(b)
	}
	var kept []int
	for _, b := range halfArrays.free {
		kept = append(kept, cap(b))
	}
	slices.Sort(kept)
	if want := []int{2 * mappedMinLen, 3 * mappedMinLen, 4 * mappedMinLen}; !slices.Equal(kept, want) {
		t.Fatalf("kept %v, want the %d longest %v", kept, halfArrays.keep, want)
	}
	// The shortest that holds the request, not the first.
	if b := halfArrays.get(2*mappedMinLen + 1); cap(b) != 3*mappedMinLen {
		t.Fatalf("took a buffer of %d for %d values, want %d", cap(b), 2*mappedMinLen+1, 3*mappedMinLen)
	} else {
		halfArrays.put(b)
	}
	d := NewCPU(1)
	tensor.ForgetRecycled(d)
	if len(halfArrays.free) != 0 {
		t.Fatalf("%d widening buffers kept after ForgetRecycled", len(halfArrays.free))
	}
}
