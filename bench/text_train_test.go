package bench

import (
	"fmt"
	"os"
	"testing"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/ddpm"
	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/nn/clip"
	"github.com/godiffuse/godiffuse/nn/unet"
	"github.com/godiffuse/godiffuse/pipeline"
)

// BenchmarkTextTrain times the step of `diffuse train -data shapes` with its
// built-in configs (the text-conditioned U-Net and text encoder,
// x0-prediction) at three batch sizes: the step issue 19's quick run
// repeats for ten minutes.
func BenchmarkTextTrain(b *testing.B) {
	for _, batch := range []int{8, 16, 32} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchTextTrain(b, batch) })
	}
}

func benchTextTrain(b *testing.B, batch int) {
	ub, err := os.ReadFile("../cmd/diffuse/configs/shapes-unet.json")
	if err != nil {
		b.Fatal(err)
	}
	tb, err := os.ReadFile("../cmd/diffuse/configs/shapes-text.json")
	if err != nil {
		b.Fatal(err)
	}
	uc, err := unet.ParseConditionConfig("shapes-unet.json", ub)
	if err != nil {
		b.Fatal(err)
	}
	tcfg, err := clip.ParseTextConfig("shapes-text.json", tb)
	if err != nil {
		b.Fatal(err)
	}
	full, err := clip.OpenAIBPE()
	if err != nil {
		b.Fatal(err)
	}
	ds, err := data.Shapes(2000, 1, data.ShapesTrain)
	if err != nil {
		b.Fatal(err)
	}
	var words []string
	for i := range ds.Len() {
		words = append(words, ds.Caption(i))
	}
	tc := ddpm.DefaultTrainConfig()
	tc.Objective, tc.MinSNRGamma, tc.Steps, tc.Batch = string(ddpm.PredictX0), 5, 1<<20, batch
	tr, err := pipeline.NewTrainer(kernels.CPU(), uc, tcfg, full.Subset(words, tcfg.MaxPositionEmbeddings), tc, ds)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := tr.TrainStep(); err != nil { // warm-up
		b.Fatal(err)
	}
	iters := 0
	for b.Loop() {
		if _, err := tr.TrainStep(); err != nil {
			b.Fatal(err)
		}
		iters++
	}
	b.ReportMetric(float64(tc.Batch*iters)/b.Elapsed().Seconds(), "img/s")
}
