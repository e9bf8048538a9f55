package kernels

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/godiffuse/godiffuse/tensor"
)

// TestWeightCache runs a convolution as a sampler does (the same weights
// call after call) and as training does (weights changed between calls), on
// the Winograd path (transformed weights kept) and on the shifted-rows and
// 1×1 paths (packed weight panels kept), and checks that every output equals
// the uncached device's bit for bit, that unchanged weights are kept from
// their second call on, that changed ones are never served stale, and that
// a buffer's entries go when the buffer is collected.
func TestWeightCache(t *testing.T) {
	if MaxLevel() == Generic {
		t.Skip("the prepared forms need a packed GEMM level")
	}
	conv := func(k, pad int) tensor.ConvParams {
		return tensor.ConvParams{N: 2, C: 24, H: 12, W: 10, F: 20, KH: k, KW: k, StrideH: 1, StrideW: 1,
			PadTop: pad, PadBottom: pad, PadLeft: pad, PadRight: pad, OH: 12, OW: 10}
	}
	winograd := DefaultTuning()
	winograd.WinogradMinTiles, winograd.WinogradMinTileChannels = 0, 0 // a small shape on the Winograd paths
	shifted := DefaultTuning()
	shifted.WinogradMinC = 1 << 30
	for _, c := range []struct {
		name string
		p    tensor.ConvParams
		on   Tuning
		plan ConvPlan
	}{
		{"winograd", conv(3, 1), winograd, ConvPlan{ConvWinograd, ConvFlippedWinograd, ConvWinograd}},
		{"shifted", conv(3, 1), shifted, ConvPlan{ConvShifted, ConvFlippedShifted, ConvShifted}},
		{"pointwise", conv(1, 0), shifted, ConvPlan{ConvPointwise, ConvPointwise, ConvPointwise}},
	} {
		t.Run(c.name, func(t *testing.T) { testWeightCache(t, c.p, c.on, c.plan) })
	}
}

func testWeightCache(t *testing.T, p tensor.ConvParams, on Tuning, plan ConvPlan) {
	off := on
	off.WeightCacheMiB = 0
	plain, cached := NewCPUTuned(2, MaxLevel(), off), NewCPUTuned(2, MaxLevel(), on)
	if got := cached.PlanConv2D(p); got != plan {
		t.Fatalf("test shape %+v plans %v, want %v", p, got, plan)
	}
	r := rand.New(rand.NewPCG(3, 4))
	x, b := randSlice(r, p.N*p.C*p.H*p.W), randSlice(r, p.F)
	w := &Buffer{dev: cached, F: randSlice(r, p.F*p.C*p.KH*p.KW)}
	run := func(d *Device) (y, dx []float32) {
		yb := &Buffer{dev: d, F: make([]float32, p.N*p.F*p.OH*p.OW)}
		dxb := &Buffer{dev: d, F: make([]float32, len(x))}
		d.Conv2D(yb, &Buffer{dev: d, F: x}, w, &Buffer{dev: d, F: b}, p)
		d.Conv2DBackwardInput(dxb, yb, w, p)
		return yb.F, dxb.F
	}
	check := func(what string) {
		t.Helper()
		y0, dx0 := run(plain)
		y1, dx1 := run(cached)
		if !slices.Equal(y0, y1) || !slices.Equal(dx0, dx1) {
			t.Fatalf("%s: the cached device's output differs from the uncached one", what)
		}
	}
	check("first call")
	if n := cached.CachedWeightBytes(); n != 0 {
		t.Fatalf("first call: %d bytes kept, want none before a second call", n)
	}
	check("second call")
	kept := cached.CachedWeightBytes()
	if kept == 0 {
		t.Fatal("second call with unchanged weights: nothing kept")
	}
	check("third call (from the cache)")
	for i := range w.F { // an optimizer step
		w.F[i] *= 0.9
	}
	check("after the weights changed")
	if n := cached.CachedWeightBytes(); n != 0 {
		t.Fatalf("after the weights changed: %d bytes still kept", n)
	}
	w.F[7] += 1 // a second change: the buffer is volatile from now on
	check("after a second change")
	check("unchanged again, but volatile")
	if n := cached.CachedWeightBytes(); n != 0 {
		t.Fatalf("volatile weights: %d bytes kept", n)
	}

	// A fresh buffer is kept again, and dropped when it is collected.
	w = &Buffer{dev: cached, F: randSlice(r, p.F*p.C*p.KH*p.KW)}
	check("new buffer")
	check("new buffer, second call")
	if cached.CachedWeightBytes() != kept {
		t.Fatalf("new buffer: %d bytes kept, want %d", cached.CachedWeightBytes(), kept)
	}
	runtime.KeepAlive(w) // w is read last by check, above: without this it may be collected before the count
	w = nil
	deadline := time.Now().Add(10 * time.Second)
	for cached.CachedWeightBytes() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes still kept 10 s after the buffer became unreachable", cached.CachedWeightBytes())
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWeightCache3D checks the depth taps of a 3×3×3 Winograd convolution
// kept across calls against the uncached device, and the budget.
func TestWeightCache3D(t *testing.T) {
	if MaxLevel() == Generic {
		t.Skip("the Winograd path needs a packed GEMM level")
	}
	p := tensor.Conv3DParams{N: 1, C: 16, D: 5, H: 6, W: 6, F: 16, KD: 3, KH: 3, KW: 3, StrideD: 1, StrideH: 1, StrideW: 1,
		PadD: 1, PadH: 1, PadW: 1, OD: 5, OH: 6, OW: 6}
	off := DefaultTuning()
	off.WeightCacheMiB = 0
	plain, cached := NewCPUTuned(2, MaxLevel(), off), NewCPUTuned(2, MaxLevel(), DefaultTuning())
	if cached.PlanConv3D(p).Forward != ConvWinograd {
		t.Fatalf("test shape %+v does not take the Winograd path: %+v", p, cached.PlanConv3D(p))
	}
	r := rand.New(rand.NewPCG(5, 6))
	x := randSlice(r, p.C*p.D*p.H*p.W)
	w := &Buffer{dev: cached, F: randSlice(r, p.F*p.C*27)}
	run := func(d *Device) []float32 {
		y := &Buffer{dev: d, F: make([]float32, p.F*p.OD*p.OH*p.OW)}
		d.Conv3D(y, &Buffer{dev: d, F: x}, w, nil, p)
		return y.F
	}
	for call := range 3 {
		if !slices.Equal(run(plain), run(cached)) {
			t.Fatalf("call %d: the cached device's output differs from the uncached one", call)
		}
	}
	if cached.CachedWeightBytes() == 0 {
		t.Fatal("unchanged 3-D weights were not kept")
	}

	// Half-precision weights are never kept (they were chosen to save memory).
	half := NewCPUTuned(2, MaxLevel(), DefaultTuning())
	hb, err := half.Alloc(tensor.F16, len(w.F))
	if err != nil {
		t.Fatal(err)
	}
	bits := make([]uint16, len(w.F))
	for i, v := range w.F {
		bits[i] = uint16(i%0x7800) ^ uint16(math.Float32bits(v)>>31)<<15 // finite values
	}
	if err := half.UploadF16(hb, 0, bits); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		y := &Buffer{dev: half, F: make([]float32, p.F*p.OD*p.OH*p.OW)}
		half.Conv3D(y, &Buffer{dev: half, F: x}, hb, nil, p)
	}
	if n := half.CachedWeightBytes(); n != 0 {
		t.Fatalf("F16 weights: %d bytes kept", n)
	}
	if plain.CachedWeightBytes() != 0 {
		t.Fatal("WeightCacheMiB 0 kept weights")
	}
}

// TestWeightCacheFrozen checks frozen weights (tensor.Freeze): kept from the
// first call, used again without looking at their contents while frozen
// (a write that bypasses the device is not seen — what the freeze promises
// away), checked again after the thaw; device writes into them fail.
func TestWeightCacheFrozen(t *testing.T) {
	if MaxLevel() == Generic {
		t.Skip("the prepared forms need a packed GEMM level")
	}
	p := tensor.ConvParams{N: 1, C: 24, H: 12, W: 10, F: 20, KH: 3, KW: 3, StrideH: 1, StrideW: 1,
		PadTop: 1, PadBottom: 1, PadLeft: 1, PadRight: 1, OH: 12, OW: 10}
	on := DefaultTuning()
	on.WinogradMinTiles, on.WinogradMinTileChannels = 0, 0
	off := on
	off.WeightCacheMiB = 0
	plain, cached := NewCPUTuned(2, MaxLevel(), off), NewCPUTuned(2, MaxLevel(), on)
	r := rand.New(rand.NewPCG(7, 8))
	x := randSlice(r, p.N*p.C*p.H*p.W)
	w := &Buffer{dev: cached, F: randSlice(r, p.F*p.C*9)}
	run := func(d *Device) []float32 {
		y := &Buffer{dev: d, F: make([]float32, p.N*p.F*p.OH*p.OW)}
		d.Conv2D(y, &Buffer{dev: d, F: x}, w, nil, p)
		return y.F
	}
	w.F[0] += 1 // two changes seen unfrozen: volatile, which a freeze overrides
	run(cached)
	w.F[0] += 1
	run(cached)
	w.F[0] += 1
	run(cached)

	w.Freeze()
	want := run(plain)
	if !slices.Equal(run(cached), want) {
		t.Fatal("first frozen call differs from the uncached device")
	}
	if cached.CachedWeightBytes() == 0 {
		t.Fatal("frozen weights were not kept on their first call")
	}
	w.F[5] += 1 // behind the device's back: the kept form is used unchecked
	if !slices.Equal(run(cached), want) {
		t.Fatal("frozen weights were checked again (or not kept)")
	}
	for name, write := range map[string]func(){
		"Fill": func() { cached.Fill(w, 4, 0) },
		"Copy": func() {
			cached.Copy(tensor.Strided{Buf: w, Strides: []int{1}}, tensor.Strided{Buf: &Buffer{dev: cached, F: make([]float32, 4)}, Strides: []int{1}}, []int{4})
		},
		"AdamStep": func() {
			z := func() tensor.Buffer { return &Buffer{dev: cached, F: make([]float32, len(w.F))} }
			cached.AdamStep(w, z(), z(), z(), len(w.F), tensor.AdamParams{})
		},
	} {
		if err := tensor.Catch(write); err == nil {
			t.Errorf("%s into a frozen buffer: no error", name)
		}
	}
	if err := cached.UploadF32(w, 0, []float32{1}); err == nil {
		t.Error("UploadF32 into a frozen buffer: no error")
	}

	w.Freeze() // nested: one thaw leaves it frozen
	w.Thaw()
	if tensor.Catch(func() { cached.Fill(w, 1, 0) }) == nil {
		t.Fatal("a buffer frozen twice and thawed once could be written")
	}
	w.Thaw()
	if !slices.Equal(run(cached), run(plain)) {
		t.Fatal("after the thaw, the changed weights were served stale")
	}
	cached.Fill(w, 1, 2) // writable again
}
