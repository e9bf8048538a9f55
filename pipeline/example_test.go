package pipeline_test

import (
	"fmt"
	"strings"

	"github.com/godiffuse/godiffuse/ddpm"
	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/pipeline"
)

// Text-to-image with a Stable Diffusion folder (here the tiny test pipeline,
// whose random weights draw noise): the image and the parameters text that
// goes into its PNG.
func ExamplePipeline_Generate() {
	p, err := pipeline.Load(kernels.CPU(), "../testdata/sd/tiny-pipeline")
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := p.Generate(pipeline.Options{Prompt: "a red circle", Steps: 4, Guidance: 5, Sampler: ddpm.SigmaEuler, Seed: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Images[0].Bounds().Size())
	fmt.Println(strings.Split(res.Parameters[0], "\n")[1][:60])
	// Output:
	// (32,32)
	// Steps: 4, Sampler: Euler, CFG scale: 5, Seed: 1, Size: 32x32
}
