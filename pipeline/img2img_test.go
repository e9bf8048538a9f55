package pipeline

import (
	"image"
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

// TestImg2ImgMatchesReference checks image-to-image against
// testdata/sd-img2img (made by make_img2img.py there, our own PyTorch script
// following diffusers' StableDiffusionImg2ImgPipeline on the tiny pipeline).
func TestImg2ImgMatchesReference(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	testdata := filepath.Join(filepath.Dir(file), "..", "testdata")
	io, err := safetensors.Read(filepath.Join(testdata, "sd-img2img", "io.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	dev := kernels.CPU()
	p, err := Load(dev, filepath.Join(testdata, "sd", io.Metadata["pipeline"]))
	if err != nil {
		t.Fatal(err)
	}
	img := fixtureImage(t, io, "input_u8")
	H, W := img.Bounds().Dy(), img.Bounds().Dx()
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
	strength, _ := strconv.ParseFloat(md["strength"], 64)
	res, err := p.Img2Img(Img2ImgOptions{Options: Options{Prompt: md["prompt"], Negative: md["negative_prompt"], Steps: steps,
		Guidance: g, Sampler: sampler}, Image: img, Strength: strength,
		EncoderNoise: tensorOf("enc_noise"), Noise: tensorOf("noise")})
	if err != nil {
		t.Fatal(err)
	}
	sdfixtures.Compare(t, io, "latents", res.Latents[0], tolSteps)
	sdfixtures.Compare(t, io, "decoded", res.Decoded[0], tolSteps)
	want := sdfixtures.Uint8(t, io, "image_u8")
	off := 0
	for i := range H * W {
		for c := range 3 {
			if d := int(res.Images[0].Pix[4*i+c]) - int(want[3*i+c]); d != 0 {
				if d < -1 || d > 1 {
					t.Fatalf("pixel %d channel %d differs by %d", i, c, d)
				}
				off++
			}
		}
	}
	if off > 3 {
		t.Errorf("%d values off by one", off)
	}
	if _, err := p.Img2Img(Img2ImgOptions{Options: Options{Steps: 2}, Image: img, Strength: 0.2}); err == nil {
		t.Error("a strength that keeps no step ran")
	}
	big := image.NewNRGBA(image.Rect(0, 0, 3*W/2, 3*H/2)) // resized to the asked size first
	resized, err := p.Img2Img(Img2ImgOptions{Options: Options{Steps: 2, Width: W, Height: H}, Image: big, Strength: 0.5})
	if err != nil || resized.Images[0].Bounds().Dx() != W || resized.Images[0].Bounds().Dy() != H {
		t.Fatalf("img2img of a %d×%d image to %d×%d: %v", 3*W/2, 3*H/2, W, H, err)
	}
	odd := image.NewNRGBA(image.Rect(0, 0, W+1, H+1)) // not a multiple of the VAE factor, no size asked
	if _, err := p.Img2Img(Img2ImgOptions{Image: odd, Strength: 0.5}); err == nil || !strings.Contains(err.Error(), "-width") {
		t.Errorf("a %d×%d image without a size: %v", W+1, H+1, err)
	}
	if _, err := p.Img2Img(Img2ImgOptions{Image: img, Strength: 1.5}); err == nil {
		t.Error("strength 1.5 accepted")
	}
}

// fixtureImage is an (H, W, 3) uint8 tensor of a fixture as an opaque image.
func fixtureImage(t *testing.T, io *safetensors.File, key string) *image.NRGBA {
	t.Helper()
	u8 := sdfixtures.Uint8(t, io, key)
	_, shape, _ := io.Uint8(key)
	H, W := shape[0], shape[1]
	img := image.NewNRGBA(image.Rect(0, 0, W, H))
	for i := range H * W {
		copy(img.Pix[4*i:], u8[3*i:3*i+3])
		img.Pix[4*i+3] = 255
	}
	return img
}
