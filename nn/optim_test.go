package nn_test

import (
	"math"
	"testing"

	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/safetensors"
	"github.com/godiffuse/godiffuse/tensor"
)

// The expected values were printed by PyTorch 1.13.1 (Debian python3-torch)
// running torch.optim.Adam / AdamW on a float32 parameter [0.5, -1, 2, 0]
// with the three gradients below, one step each, and by
// torch.nn.utils.clip_grad_norm_ for the clipping case.
var adamGrads = [][]float32{{0.1, -0.2, 0.3, 0.0}, {-0.5, 0.4, 0.1, 1e-3}, {2.0, -1.0, 0.05, -0.3}}

func TestAdamMatchesPyTorch(t *testing.T) {
	dev := kernels.CPU()
	cases := []struct {
		name  string
		mk    func([]nn.Param) *nn.Adam
		steps [][]float32
	}{
		{"adam/wd=0.1", func(p []nn.Param) *nn.Adam { return nn.NewAdam(p, nn.AdamConfig{LR: 0.1, WeightDecay: 0.1}) }, [][]float32{
			{0.400000036, -0.900000036, 1.89999998, 0},
			{0.449986964, -0.906901538, 1.80469644, -0.074412629},
			{0.396711886, -0.849452853, 1.71259618, -0.0107186213}}},
		{"adamw/wd=0.1", func(p []nn.Param) *nn.Adam { return nn.NewAdamW(p, nn.AdamConfig{LR: 0.1, WeightDecay: 0.1}) }, [][]float32{
			{0.395000011, -0.889999986, 1.88, 0},
			{0.450885415, -0.917710364, 1.77409363, -0.074412629},
			{0.395894498, -0.861759603, 1.67986107, -0.00997914374}}},
		{"adam/betas=0.5,0.6/eps=1e-3", func(p []nn.Param) *nn.Adam {
			return nn.NewAdam(p, nn.AdamConfig{LR: 0.01, Beta1: 0.5, Beta2: 0.6, Eps: 1e-3})
		}, [][]float32{
			{0.490099013, -0.990049779, 1.99003327, 0},
			{0.49758032, -0.995930135, 1.98174143, -0.00372321042},
			{0.490617633, -0.989485562, 1.97486651, 0.0042263316}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := tensor.FromFloat32(dev, []float32{0.5, -1, 2, 0}, 4).SetRequiresGrad(true)
			opt := c.mk([]nn.Param{{Name: "p", T: p}})
			for s, g := range adamGrads {
				p.SetGrad(tensor.FromFloat32(dev, g, 4))
				if err := opt.Step(); err != nil {
					t.Fatal(err)
				}
				got := p.MustFloat32s()
				for i := range got {
					// float32 arithmetic in a slightly different order: allow a few ulps.
					if math.Abs(float64(got[i]-c.steps[s][i])) > 4e-7*(1+math.Abs(float64(c.steps[s][i]))) {
						t.Fatalf("step %d: param %v, PyTorch %v", s+1, got, c.steps[s])
					}
				}
			}
		})
	}
}

func TestClipGradNormMatchesPyTorch(t *testing.T) {
	dev := kernels.CPU()
	a := tensor.Zeros(dev, 3).SetRequiresGrad(true)
	b := tensor.Zeros(dev, 2).SetRequiresGrad(true)
	a.SetGrad(tensor.FromFloat32(dev, []float32{3, 4, 0}, 3))
	b.SetGrad(tensor.FromFloat32(dev, []float32{0, 12}, 2))
	norm, err := nn.ClipGradNorm([]nn.Param{{Name: "a", T: a}, {Name: "b", T: b}}, 5)
	if err != nil {
		t.Fatal(err)
	}
	if norm != 13 {
		t.Fatalf("norm %g, want 13", norm)
	}
	want := []float32{1.153846025466919, 1.538461446762085, 0, 0, 4.615384101867676}
	got := append(a.Grad().MustFloat32s(), b.Grad().MustFloat32s()...)
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-6 {
			t.Fatalf("clipped grads %v, PyTorch %v", got, want)
		}
	}
}

func TestAdamStateRoundTrip(t *testing.T) {
	dev := kernels.CPU()
	mk := func() (*tensor.Tensor, *nn.Adam) {
		p := tensor.FromFloat32(dev, []float32{0.5, -1, 2, 0}, 4).SetRequiresGrad(true)
		return p, nn.NewAdamW(nn.ParamsOf("p", p), nn.AdamConfig{LR: 0.1, WeightDecay: 0.01})
	}
	p1, o1 := mk()
	p1.SetGrad(tensor.FromFloat32(dev, adamGrads[0], 4))
	o1.Step()
	sd, err := o1.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	path := t.TempDir() + "/opt.safetensors"
	if err := safetensors.Write(path, sd, nil); err != nil {
		t.Fatal(err)
	}
	st, err := safetensors.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	p2, o2 := mk()
	p2.CopyFrom(p1)
	if err := o2.LoadStateDict(st); err != nil {
		t.Fatal(err)
	}
	for _, g := range adamGrads[1:] {
		p1.SetGrad(tensor.FromFloat32(dev, g, 4))
		p2.SetGrad(tensor.FromFloat32(dev, g, 4))
		o1.Step()
		o2.Step()
	}
	a, b := p1.MustFloat32s(), p2.MustFloat32s()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("resumed optimizer diverged: %v vs %v", a, b)
		}
	}
}
