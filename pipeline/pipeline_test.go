package pipeline

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/godiffuse/godiffuse/ddpm"
	"github.com/godiffuse/godiffuse/internal/sdfixtures"
	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/safetensors"
	"github.com/godiffuse/godiffuse/tensor"
)

// Tolerances from shared/reference/sd/README.md.
const (
	tolEmbeds = 5e-6
	tolSteps  = 2e-4
)

// fixtureRun reads a pipeline fixture's prompt, steps and guidance from its
// io.safetensors metadata.
type fixtureRun struct {
	prompt, negative string
	steps            int
	guidance         float64
}

func readRun(t *testing.T, io *safetensors.File) fixtureRun {
	md := io.Metadata
	r := fixtureRun{prompt: md["prompt"]}
	var neg *string
	if err := json.Unmarshal([]byte(md["negative_prompt"]), &neg); err != nil {
		t.Fatalf("negative_prompt metadata %q: %v", md["negative_prompt"], err)
	}
	if neg != nil {
		r.negative = *neg
	}
	var err error
	if r.steps, err = strconv.Atoi(md["num_inference_steps"]); err != nil {
		t.Fatal(err)
	}
	if r.guidance, err = strconv.ParseFloat(md["guidance_scale"], 64); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPipelineParity(t *testing.T) {
	for _, dir := range sdfixtures.Folders(t, sdfixtures.Pipeline) {
		t.Run(filepath.Base(dir), func(t *testing.T) { checkPipeline(t, kernels.CPU(), dir) })
	}
}

func checkPipeline(t *testing.T, dev tensor.Device, dir string) {
	p, err := Load(dev, dir)
	if err != nil {
		t.Fatal(err)
	}
	io := sdfixtures.IO(t, dir)
	run := readRun(t, io)

	ids, _ := p.Tokenizer.Tokenize(run.prompt)
	if want := sdfixtures.Int64(t, io, "input_ids"); !slices.Equal(ids, want) {
		t.Errorf("input_ids %v, want %v", ids, want)
	}
	negIDs, _ := p.Tokenizer.Tokenize(run.negative)
	if want := sdfixtures.Int64(t, io, "negative_input_ids"); !slices.Equal(negIDs, want) {
		t.Errorf("negative_input_ids %v, want %v", negIDs, want)
	}
	cond, _, err := p.EncodePrompt(run.prompt, 0)
	if err != nil {
		t.Fatal(err)
	}
	sdfixtures.Compare(t, io, "prompt_embeds", cond, tolEmbeds)
	uncond, _, err := p.EncodePrompt(run.negative, 0)
	if err != nil {
		t.Fatal(err)
	}
	sdfixtures.Compare(t, io, "negative_prompt_embeds", uncond, tolEmbeds)

	ab := p.Scheduler.AlphasCumprod()
	wantAB, _ := sdfixtures.Float32(t, io, "alphas_cumprod")
	for i := range wantAB {
		if float32(ab[i]) != wantAB[i] {
			t.Fatalf("alphas_cumprod[%d] = %v, want %v exactly", i, float32(ab[i]), wantAB[i])
		}
	}
	sm, err := ddpm.NewSigmaSampler(ddpm.SigmaDDIM, p.Scheduler, run.steps)
	if err != nil {
		t.Fatal(err)
	}
	var wantTS []float64
	for _, v := range sdfixtures.Int64(t, io, "timesteps") {
		wantTS = append(wantTS, float64(v))
	}
	if !slices.Equal(sm.Timesteps(), wantTS) {
		t.Errorf("timesteps %v, want %v", sm.Timesteps(), wantTS)
	}

	lv, ls := sdfixtures.Float32(t, io, "latents_init")
	_, imShape := sdfixtures.Float32(t, io, "image")
	res, err := p.Generate(Options{Prompt: run.prompt, Negative: run.negative, Steps: run.steps, Guidance: run.guidance,
		Sampler: ddpm.SigmaDDIM, Width: imShape[3], Height: imShape[2], Latents: tensor.FromFloat32(dev, lv, ls...),
		Trace: func(i int, out, x0, latents *tensor.Tensor) {
			sdfixtures.Compare(t, io, fmt.Sprintf("step/%d/noise_pred", i), out, tolSteps)
			sdfixtures.Compare(t, io, fmt.Sprintf("step/%d/pred_original_sample", i), x0, tolSteps)
			sdfixtures.Compare(t, io, fmt.Sprintf("step/%d/latents", i), latents, tolSteps)
		}})
	if err != nil {
		t.Fatal(err)
	}
	sdfixtures.Compare(t, io, "latents", res.Latents[0], tolSteps)
	sdfixtures.Compare(t, io, "decoded", res.Decoded[0], tolSteps)

	// the 8-bit image: ±1 level allowed on a few pixels (README: 1 of 3,072 in float32 PyTorch)
	want := sdfixtures.Uint8(t, io, "image_u8") // (1, H, W, 3)
	im := res.Images[0]
	H, W := imShape[2], imShape[3]
	off, worst := 0, 0
	for y := range H {
		for x := range W {
			for c := range 3 {
				d := int(im.Pix[y*im.Stride+x*4+c]) - int(want[(y*W+x)*3+c])
				worst = max(worst, abs(d))
				if d != 0 {
					off++
				}
			}
		}
	}
	if worst > 1 || off > max(3, H*W*3/500) {
		t.Errorf("image_u8: %d of %d values differ, by up to %d", off, H*W*3, worst)
	}
	t.Logf("image_u8: %d of %d values off by one", off, H*W*3)
}

func abs(v int) int { return int(math.Abs(float64(v))) }

// TestPipelineHalfWeights: the tiny pipeline with every Linear and Conv2d
// weight rounded to half precision stays close to the float32 reference
// (the rounding, up to 2⁻¹¹ relative per weight, is the only difference:
// 4.3e-4 of max|decoded| measured here) and its weights really are F16.
func TestPipelineHalfWeights(t *testing.T) {
	dev := kernels.CPU()
	dir := sdfixtures.Folders(t, sdfixtures.Pipeline)[0]
	p, err := LoadWith(dev, dir, nn.StoreF16)
	if err != nil {
		t.Fatal(err)
	}
	halves := 0
	for _, prm := range p.UNet.Params() {
		if prm.T.DType() == tensor.F16 {
			halves++
		} else if prm.Matrix {
			t.Errorf("%s is %s, want float16", prm.Name, prm.T.DType())
		}
	}
	if halves == 0 {
		t.Fatal("no half-precision weights")
	}
	io := sdfixtures.IO(t, dir)
	run := readRun(t, io)
	lv, ls := sdfixtures.Float32(t, io, "latents_init")
	_, imShape := sdfixtures.Float32(t, io, "image")
	res, err := p.Generate(Options{Prompt: run.prompt, Negative: run.negative, Steps: run.steps, Guidance: run.guidance,
		Sampler: ddpm.SigmaDDIM, Width: imShape[3], Height: imShape[2], Latents: tensor.FromFloat32(dev, lv, ls...)})
	if err != nil {
		t.Fatal(err)
	}
	rel := sdfixtures.Compare(t, io, "decoded", res.Decoded[0], 5e-3)
	t.Logf("decoded with F16 weights: %.2g of max|ref| from the float32 reference", rel)
}
