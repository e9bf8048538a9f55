package ddpm_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/ddpm"
	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/tensor"
)

// tinyConfig is a class-conditional U-Net on 8×8 grey images.
func tinyConfig() nn.UNet2DConfig {
	cfg, err := nn.ParseUNet2DConfig("example", []byte(`{"sample_size": 8, "in_channels": 1, "out_channels": 1,
		"block_out_channels": [8, 16], "layers_per_block": 1, "norm_num_groups": 4,
		"down_block_types": ["DownBlock2D", "DownBlock2D"], "up_block_types": ["UpBlock2D", "UpBlock2D"]}`))
	if err != nil {
		panic(err)
	}
	return cfg
}

// A training loop of a few steps on a labelled dataset in memory (two
// classes: bright and dark squares); the trainer keeps the EMA weights,
// AdamW's state and the RNG, so Save and Resume continue exactly.
func ExampleTrainer() {
	pix := make([]byte, 8*64)
	labels := make([]int, 8)
	for i := range 8 {
		labels[i] = i % 2
		for k := range 64 {
			pix[i*64+k] = byte(40 + 170*(i%2))
		}
	}
	ds, err := data.FromBytes(1, 8, 8, pix, labels, []string{"dark", "bright"})
	if err != nil {
		panic(err)
	}
	tc := ddpm.DefaultTrainConfig()
	tc.Steps, tc.Batch = 3, 4
	tr, err := ddpm.NewTrainer(kernels.CPU(), tinyConfig(), tc, ds)
	if err != nil {
		panic(err)
	}
	for tr.Step < tc.Steps {
		if _, err := tr.TrainStep(); err != nil {
			panic(err)
		}
	}
	fmt.Println(tr.Step, len(tr.Losses), tr.Classes)
	// Output: 3 3 [dark bright]
}

// Sampling with classifier-free guidance: the network's conditional and
// unconditional (null-label) predictions are mixed with scale 3, and
// DPM-Solver++ takes 10 steps.
func ExampleGuided() {
	dev := kernels.CPU()
	cfg := tinyConfig()
	classes := 3 // two classes and the null label (index 2)
	cfg.NumClassEmbeds = &classes
	m, err := nn.NewUNet2D(dev, cfg, 7)
	if err != nil {
		panic(err)
	}
	restore := m.NoGrad()
	defer restore()
	s, _ := ddpm.NewSchedule(ddpm.Cosine, 1000)
	sm, _ := ddpm.NewDPMPP2M(s, 10)
	net := func(x *tensor.Tensor, t int, labels []int64) (*tensor.Tensor, error) {
		return m.Forward(x, []float32{float32(t)}, labels, nil)
	}
	model := ddpm.Guided(net, []int64{0, 1}, 2, 3, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	x, err := ddpm.Sample(s, sm, model, ddpm.Randn(dev, rng, 2, 1, 8, 8), rng, ddpm.SampleOptions{Clip: 1})
	if err != nil {
		panic(err)
	}
	fmt.Println(x.Shape())
	// Output: [2 1 8 8]
}
