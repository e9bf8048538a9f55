package ddpm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/tensor"
)

// TestInpaintGaussianOracle: for 2-D Gaussian data (correlation 0.47) and
// the exact ε predictor, fixing coordinate 1 at k = μ1 + 1.5σ1, the
// inpainted coordinate 0 must follow the exact conditional
// N(μ0 + Σ01/Σ11·(k-μ1), Σ00 - Σ01²/Σ11) = N(1.503, 0.3875). Measured with
// N = 4000 (standard errors 0.0098 on the mean, 0.0087 on the variance):
//
//	repaint, DDPM 250 points, jump 10 × 10   mean 1.471 (3.3 SE), variance 0.354 (3.9 SE)
//	replace, DDPM 1000 points                mean 1.314 (19 SE),  variance 0.411 (2.7 SE)
//	replace-clean, DDPM 1000 points          mean 1.360 (15 SE),  variance 0.406 (2.2 SE)
//
// Replacing alone recovers only 60 % of the conditional shift of the mean
// (1.0 → 1.5): the kept coordinate is re-noised independently at every
// step, so the filled one never sees a noisy kept value consistent with its
// own trajectory. RePaint's resampling recovers 94 % of it. (RePaint's
// variance comes out low on coarse grids — 0.374 on 1,000 points — because
// each resampling round adds the forward step's noise but removes the
// posterior's smaller one; its mean stays 0.03 low even on 1,000 points.)
// Replace-clean is off like replace here, by another route: the model sees a
// noise-free kept value at every level. The kept coordinate is returned
// exactly by every method.
func TestInpaintGaussianOracle(t *testing.T) {
	dev := kernels.NewCPU(2)
	s, err := NewSchedule(Linear, 1000)
	if err != nil {
		t.Fatal(err)
	}
	const N = 4000
	k := gMu[1] + 1.5*math.Sqrt(gSigma[1][1]) // a kept value 1.5 σ off the mean
	wantMean := gMu[0] + gSigma[0][1]/gSigma[1][1]*(k-gMu[1])
	wantVar := gSigma[0][0] - gSigma[0][1]*gSigma[0][1]/gSigma[1][1]
	seMean, seVar := math.Sqrt(wantVar/N), wantVar*math.Sqrt(2.0/N)
	img := make([]float32, 2*N)
	mask := make([]float32, 2*N)
	for i := range N {
		img[2*i], img[2*i+1] = 0, float32(k)
		mask[2*i] = 1
	}
	for _, c := range []struct {
		method string
		steps  int
		// |mean error| and |variance error| in standard errors: at most (or,
		// for replace-clean, at least) this many
		maxSE, minSE float64
	}{
		{InpaintRePaint, 250, 5, 0},
		{InpaintReplace, 1000, 0, 10},
		{InpaintReplaceClean, 1000, 0, 10},
	} {
		t.Run(fmt.Sprintf("%s/ddpm%d", c.method, c.steps), func(t *testing.T) {
			sm, err := NewDDPM(s, c.steps, Leading, FixedSmall)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(5, 6))
			xT := Randn(dev, rng, N, 2, 1, 1)
			x, err := Inpaint(s, sm, analyticModel(s, PredictEpsilon), xT, rng, SampleOptions{}, InpaintOptions{
				Method: c.method, Image: tensor.FromFloat32(dev, img, N, 2, 1, 1), Mask: tensor.FromFloat32(dev, mask, N, 2, 1, 1)})
			if err != nil {
				t.Fatal(err)
			}
			v := x.MustFloat32s()
			var m, q float64
			for i := range N {
				if v[2*i+1] != float32(k) {
					t.Fatalf("sample %d: kept coordinate %v, want %v exactly", i, v[2*i+1], float32(k))
				}
				m += float64(v[2*i]) / N
			}
			for i := range N {
				d := float64(v[2*i]) - m
				q += d * d / (N - 1)
			}
			dm, dv := math.Abs(m-wantMean)/seMean, math.Abs(q-wantVar)/seVar
			t.Logf("%s: mean %.4f (exact %.4f, %.1f SE off), variance %.4f (exact %.4f, %.1f SE off)", c.method, m, wantMean, dm, q, wantVar, dv)
			if c.maxSE > 0 && (dm > c.maxSE || dv > c.maxSE) {
				t.Errorf("more than %g standard errors from the exact conditional", c.maxSE)
			}
			if c.minSE > 0 && max(dm, dv) < c.minSE {
				t.Errorf("within %g standard errors of the exact conditional: the comment above says otherwise", c.minSE)
			}
		})
	}
}

// TestRePaintWalk: the time-travel walk visits every point, ends at x_0,
// goes back up jump points resample-1 times at each jump point, and makes
// n·resample downward steps in all when jump divides n (as the paper's
// schedule does).
func TestRePaintWalk(t *testing.T) {
	for _, c := range []struct{ n, jump, resample int }{{250, 10, 10}, {20, 5, 3}, {7, 10, 10}, {12, 1, 2}, {30, 10, 1}} {
		moves := walk(c.n, c.jump, c.resample, true)
		p, downs, ups := 0, 0, 0
		for i, m := range moves {
			if m.down {
				if m.p != p {
					t.Fatalf("%+v: move %d steps down from point %d while at %d", c, i, m.p, p)
				}
				p++
				downs++
			} else {
				if m.p != p-1 {
					t.Fatalf("%+v: move %d goes up to point %d from %d", c, i, m.p, p)
				}
				p--
				ups++
			}
		}
		jumps := 0
		if c.n > c.jump {
			jumps = (c.n - c.jump + c.jump - 1) / c.jump
		}
		if p != c.n || ups != jumps*(c.resample-1)*c.jump || downs != c.n+ups {
			t.Errorf("%+v: ends at %d of %d, %d up and %d down moves; want %d up", c, p, c.n, ups, downs, jumps*(c.resample-1)*c.jump)
		}
	}
	if m := walk(5, 10, 10, false); len(m) != 5 {
		t.Errorf("a plain walk of 5 points has %d moves", len(m))
	}
}

// TestInpaintEverySampler: every sampler (multistep ones are reset after a
// jump) inpaints with every method, keeping the kept region exactly; an
// all-zero mask returns the image itself; SDEdit at a small strength stays
// near its input and refuses strengths outside (0, 1].
func TestInpaintEverySampler(t *testing.T) {
	dev := kernels.NewCPU(2)
	s, _ := NewSchedule(Linear, 1000)
	const N = 64
	r := rand.New(rand.NewPCG(7, 7))
	img, mask := make([]float32, 2*N), make([]float32, 2*N)
	for i := range img {
		img[i] = float32(r.NormFloat64())
		mask[i] = float32(i % 2)
	}
	image := tensor.FromFloat32(dev, img, N, 2, 1, 1)
	ddim, _ := NewDDIM(s, 20, Leading, 0)
	dpm, _ := NewDPMPP2M(s, 20)
	ddpm, _ := NewDDPM(s, 20, Leading, FixedSmall)
	for _, sm := range []Sampler{ddim, dpm, ddpm} {
		for _, method := range InpaintMethods {
			rng := rand.New(rand.NewPCG(1, 1))
			x, err := Inpaint(s, sm, analyticModel(s, PredictEpsilon), Randn(dev, rng, N, 2, 1, 1), rng, SampleOptions{},
				InpaintOptions{Method: method, Image: image, Mask: tensor.FromFloat32(dev, mask, N, 2, 1, 1), Jump: 5, Resample: 3})
			if err != nil {
				t.Fatalf("%s/%s: %v", sm.Name(), method, err)
			}
			v := x.MustFloat32s()
			for i := range v {
				if mask[i] == 0 && v[i] != img[i] || math.IsNaN(float64(v[i])) {
					t.Fatalf("%s/%s: element %d = %v, image %v, mask %v", sm.Name(), method, i, v[i], img[i], mask[i])
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 1))
	x, err := Inpaint(s, dpm, analyticModel(s, PredictEpsilon), Randn(dev, rng, N, 2, 1, 1), rng, SampleOptions{},
		InpaintOptions{Image: image, Mask: tensor.FromFloat32(dev, make([]float32, 2*N), N, 2, 1, 1)})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range x.MustFloat32s() {
		if v != img[i] {
			t.Fatalf("an all-zero mask changed element %d: %v → %v", i, img[i], v)
		}
	}
	if _, err := Inpaint(s, dpm, analyticModel(s, PredictEpsilon), image, rng, SampleOptions{},
		InpaintOptions{Image: image, Mask: tensor.FromFloat32(dev, make([]float32, 2*N), N, 2, 1, 1), Method: "blur"}); err == nil {
		t.Error("an unknown method was taken")
	}
	half := make([]float32, 2*N)
	half[3] = 0.5
	if _, err := Inpaint(s, dpm, analyticModel(s, PredictEpsilon), image, rng, SampleOptions{},
		InpaintOptions{Image: image, Mask: tensor.FromFloat32(dev, half, N, 2, 1, 1)}); err == nil {
		t.Error("a mask value of 0.5 was taken")
	}
	for _, strength := range []float64{0, -1, 1.5, math.NaN()} {
		if _, err := SDEdit(s, dpm, analyticModel(s, PredictEpsilon), image, strength, rng, SampleOptions{}); err == nil {
			t.Errorf("SDEdit took strength %g", strength)
		}
	}
	// Strength 0.1 moves the image a little (the exact model pulls towards
	// the data's mean); strength 1 forgets it.
	dist := func(strength float64) float64 {
		x, err := SDEdit(s, ddim, analyticModel(s, PredictEpsilon), image, strength, rand.New(rand.NewPCG(2, 2)), SampleOptions{})
		if err != nil {
			t.Fatal(err)
		}
		d := 0.0
		for i, v := range x.MustFloat32s() {
			d += math.Abs(float64(v)-float64(img[i])) / float64(len(img))
		}
		return d
	}
	if near, far := dist(0.1), dist(1); !(near < 0.25 && far > 2*near) {
		t.Errorf("SDEdit: mean distance to the input %.3f at strength 0.1, %.3f at strength 1", near, far)
	}
}
