package bench

import (
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/ddpm"
	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/nn/unet"
)

// BenchmarkUNet3D times the built-in shapes3d UNet3D (diffuse train -data
// shapes3d: patch 4, channels 32-64-128) on 32³ volumes: a whole training
// step at the default batch 16 (forward, loss, backward, AdamW, EMA), and a
// forward pass at batch 16 as sampling with guidance runs it, in volumes/s.
//
//	go test ./bench -run XXX -bench UNet3D -benchtime 5x
func BenchmarkUNet3D(b *testing.B) {
	raw, err := os.ReadFile("../cmd/diffuse/configs/shapes3d-unet.json")
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := unet.ParseUNet3DConfig("shapes3d-unet.json", raw)
	if err != nil {
		b.Fatal(err)
	}
	const batch = 16
	for _, mode := range []string{"train", "forward"} {
		b.Run(fmt.Sprintf("config=shapes3d/mode=%s/batch=%d", mode, batch), func(b *testing.B) {
			dev := kernels.CPU()
			ds, err := data.Shapes3D(1000, 1, "train")
			if err != nil {
				b.Fatal(err)
			}
			tc := ddpm.DefaultTrainConfig()
			tc.Batch = batch
			tr, err := ddpm.NewVolumeTrainer(dev, cfg, tc, ds)
			if err != nil {
				b.Fatal(err)
			}
			x := ddpm.Randn(dev, rand.New(rand.NewPCG(1, 1)), batch, 1, 32*32, 32)
			labels := make([]int64, batch)
			run := func() {
				if mode == "train" {
					if _, err := tr.TrainStep(); err != nil {
						b.Fatal(err)
					}
					return
				}
				out, err := tr.EMA.Forward(x, []float32{500}, labels, nil)
				if err != nil {
					b.Fatal(err)
				}
				if err := dev.Synchronize(); err != nil {
					b.Fatal(err)
				}
				_ = out
			}
			run()
			b.ResetTimer()
			for b.Loop() {
				run()
			}
			b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "volumes/s")
		})
	}
}
