package nn_test

import (
	"fmt"

	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/tensor"
)

// A class-conditional U-Net from a diffusers config, one training step and
// one no-grad forward pass.
func ExampleUNet2D() {
	dev := kernels.CPU()
	cfg, err := nn.ParseUNet2DConfig("example", []byte(`{"sample_size": 8, "in_channels": 1, "out_channels": 1,
		"block_out_channels": [8, 16], "layers_per_block": 1, "norm_num_groups": 4, "num_class_embeds": 3,
		"down_block_types": ["DownBlock2D", "AttnDownBlock2D"], "up_block_types": ["AttnUpBlock2D", "UpBlock2D"]}`))
	if err != nil {
		panic(err)
	}
	m, err := nn.NewUNet2D(dev, cfg, 1)
	if err != nil {
		panic(err)
	}
	x := tensor.Zeros(dev, 2, 1, 8, 8)
	opt := nn.NewAdamW(m.Params(), nn.AdamConfig{LR: 1e-3, WeightDecay: 0.01})
	out, err := m.Forward(x, []float32{10, 900}, []int64{0, 2}, &nn.ForwardOptions{Train: true})
	if err != nil {
		panic(err)
	}
	tensor.MSELoss(out, tensor.Zeros(dev, 2, 1, 8, 8)).Backward()
	if err := opt.Step(); err != nil {
		panic(err)
	}
	restore := m.NoGrad()
	defer restore()
	eps, _ := m.Forward(x, []float32{500}, []int64{1, 1}, nil)
	fmt.Println(eps.Shape(), eps.RequiresGrad(), m.NumParams() > 0)
	// Output: [2 1 8 8] false true
}
