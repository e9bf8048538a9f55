package pipeline

import (
	"image"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/godiffuse/godiffuse/ddpm"
	"github.com/godiffuse/godiffuse/internal/sdfixtures"
	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/safetensors"
	"github.com/godiffuse/godiffuse/tensor"
)

// TestInpaintMatchesReference checks inpainting against testdata/sd-inpaint
// (made by make_inpaint.py there, our own PyTorch script following diffusers'
// StableDiffusionInpaintPipeline) with the tiny pipeline's own U-Net (latent
// masking) and with a random inpainting U-Net (in_channels 9) put in its
// place; and that the kept region of the latent-masking result stays within
// the VAE's round-trip error of the input.
func TestInpaintMatchesReference(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	testdata := filepath.Join(filepath.Dir(file), "..", "testdata")
	io, err := safetensors.Read(filepath.Join(testdata, "sd-inpaint", "io.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	dev := kernels.CPU()
	tiny := filepath.Join(testdata, "sd", io.Metadata["pipeline"])
	// The inpainting folder: the tiny pipeline with the 9-channel U-Net.
	inpDir := filepath.Join(t.TempDir(), "tiny-inpainting")
	os.MkdirAll(inpDir, 0o755)
	for _, part := range []string{"model_index.json", "tokenizer", "text_encoder", "vae", "scheduler"} {
		if err := os.Symlink(filepath.Join(tiny, part), filepath.Join(inpDir, part)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(testdata, "sd-inpaint", "unet"), filepath.Join(inpDir, "unet")); err != nil {
		t.Fatal(err)
	}
	img := fixtureImage(t, io, "input_u8")
	H, W := img.Bounds().Dy(), img.Bounds().Dx()
	mask := image.NewGray(image.Rect(0, 0, W, H))
	copy(mask.Pix, sdfixtures.Uint8(t, io, "mask_u8"))
	tensorOf := func(key string) *tensor.Tensor {
		v, s := sdfixtures.Float32(t, io, key)
		return tensor.FromFloat32(dev, v, s...)
	}
	md := io.Metadata
	sampler, err := ddpm.ParseSigmaSampler(md["sampler"])
	if err != nil {
		t.Fatal(err)
	}
	steps, _ := strconv.Atoi(md["num_inference_steps"])
	g, _ := strconv.ParseFloat(md["guidance_scale"], 64)
	opts := InpaintOptions{Options: Options{Prompt: md["prompt"], Negative: md["negative_prompt"], Steps: steps,
		Guidance: g, Sampler: sampler}, Image: img, Mask: mask,
		EncoderNoise: tensorOf("enc_noise"), MaskedEncoderNoise: tensorOf("masked_enc_noise"), Noise: tensorOf("noise")}
	for _, c := range []struct{ name, dir string }{{"legacy", tiny}, {"unet9", inpDir}} {
		t.Run(c.name, func(t *testing.T) {
			p, err := Load(dev, c.dir)
			if err != nil {
				t.Fatal(err)
			}
			if p.IsInpainting() != (c.name == "unet9") {
				t.Fatalf("IsInpainting %v", p.IsInpainting())
			}
			res, err := p.Inpaint(opts)
			if err != nil {
				t.Fatal(err)
			}
			sdfixtures.Compare(t, io, c.name+"/latents", res.Latents[0], tolSteps)
			sdfixtures.Compare(t, io, c.name+"/decoded", res.Decoded[0], tolSteps)
			want := sdfixtures.Uint8(t, io, c.name+"/image_u8")
			off := 0
			for i := range H * W {
				for ch := range 3 {
					if d := int(res.Images[0].Pix[4*i+ch]) - int(want[3*i+ch]); d != 0 {
						if d < -1 || d > 1 {
							t.Fatalf("pixel %d channel %d differs by %d", i, ch, d)
						}
						off++
					}
				}
			}
			if off > 3 {
				t.Errorf("%d values off by one", off)
			}
			if c.name != "legacy" {
				if _, err := p.Generate(Options{Steps: 1}); err == nil || !strings.Contains(err.Error(), "inpainting U-Net") {
					t.Errorf("text-to-image with an inpainting U-Net: %v", err)
				}
				return
			}
			// The kept region: its latents are the image's, so its pixels are
			// the VAE's round trip of the input up to what the decoder mixes
			// in from the repainted latents (everywhere here: the tiny VAE has
			// attention in its middle block).
			got, _ := res.Decoded[0].Float32s()
			rt, _ := sdfixtures.Float32(t, io, "roundtrip")
			in := imageTensor(dev, img, W, H).MustFloat32s()
			var resErr, rtErr float64
			n := 0
			for y := range H {
				for x := range W {
					if mask.Pix[y*W+x] >= 128 {
						continue
					}
					for ch := range 3 {
						i := (ch*H+y)*W + x
						resErr += math.Abs(float64(got[i] - in[i]))
						rtErr += math.Abs(float64(rt[i] - in[i]))
						n++
					}
				}
			}
			resErr, rtErr = resErr/float64(n), rtErr/float64(n)
			t.Logf("kept region (%d values): mean |result − input| %.3f, mean |VAE round trip − input| %.3f", n, resErr, rtErr)
			if resErr > 1.25*rtErr {
				t.Errorf("the kept region is %.3f from the input, more than the VAE's round-trip error %.3f allows", resErr, rtErr)
			}
		})
	}
}
