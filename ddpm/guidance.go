package ddpm

import (
	"fmt"

	"github.com/godiffuse/godiffuse/tensor"
)

// Conditional is a class-conditional network: output for x at timestep t
// with one label per sample.
type Conditional func(x *tensor.Tensor, t int, labels []int64) (*tensor.Tensor, error)

// Guided turns a class-conditional network trained with label dropout into a
// Model with classifier-free guidance (Ho & Salimans 2022):
//
//	out = u + s·(c - u),   c = net(x, label),  u = net(x, null)
//
// evaluated in one batched forward pass of 2B samples. rescale φ > 0 applies
// guidance rescale (Lin et al. 2024, eq. 15–16), which pulls the guided
// output's per-sample standard deviation back towards the conditional one:
//
//	out ← φ·out·std(c)/std(out) + (1-φ)·out
//
// scale 1 is the plain conditional model (one pass); scale 0 the unconditional one.
func Guided(net Conditional, labels []int64, null int64, scale, rescale float64) Model {
	return func(x *tensor.Tensor, t int) (*tensor.Tensor, error) {
		B := x.Dim(0)
		if len(labels) != B {
			return nil, fmt.Errorf("guidance: %d labels for a batch of %d", len(labels), B)
		}
		nulls := make([]int64, B)
		for i := range nulls {
			nulls[i] = null
		}
		switch scale {
		case 1:
			return net(x, t, labels)
		case 0:
			return net(x, t, nulls)
		}
		var both *tensor.Tensor
		if err := tensor.Catch(func() { both = tensor.Concat(0, x, x) }); err != nil {
			return nil, err
		}
		out, err := net(both, t, append(append([]int64(nil), labels...), nulls...))
		if err != nil {
			return nil, err
		}
		var g *tensor.Tensor
		err = tensor.Catch(func() {
			c, u := out.Narrow(0, 0, B), out.Narrow(0, B, B)
			g = tensor.Add(u, tensor.Scale(tensor.Sub(c, u), float32(scale)))
			if rescale > 0 {
				ratio := tensor.Div(sampleStd(c), sampleStd(g))
				g = lin2(rescale, tensor.Mul(g, ratio), 1-rescale, g)
			}
		})
		return g, err
	}
}

// sampleStd is the unbiased standard deviation of each sample, as (B, 1, 1, 1).
func sampleStd(x *tensor.Tensor) *tensor.Tensor {
	B := x.Dim(0)
	d := x.Reshape(B, -1)
	n := d.Dim(1)
	dev := tensor.Sub(d, tensor.MeanAxis(d, 1, true))
	v := tensor.Scale(tensor.SumAxis(tensor.Square(dev), 1, true), 1/float32(max(n-1, 1)))
	return tensor.Sqrt(v).Reshape(B, 1, 1, 1)
}

// GuidanceInterval guides only part of the way: guided runs while the
// timestep t lies in [lo·T, hi·T] (T the schedule's steps, 0 ≤ lo ≤ hi ≤ 1)
// and plain elsewhere — guidance in a limited interval (Kynkäänniemi et
// al. 2024), which leaves the noisiest steps, where guidance pushes every
// sample towards one layout, and the last ones, where it adds little but
// over-sharpening, to the conditional model (plain = Guided at scale 1).
// lo = 0, hi = 1 is guided throughout.
func GuidanceInterval(guided, plain Model, T int, lo, hi float64) Model {
	if lo <= 0 && hi >= 1 {
		return guided
	}
	return func(x *tensor.Tensor, t int) (*tensor.Tensor, error) {
		if f := float64(t) / float64(T); f >= lo && f <= hi {
			return guided(x, t)
		}
		return plain(x, t)
	}
}
