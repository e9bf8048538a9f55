package bench

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/nn/clip"
	"github.com/godiffuse/godiffuse/nn/unet"
	"github.com/godiffuse/godiffuse/nn/vae"
	"github.com/godiffuse/godiffuse/tensor"
)

// BenchmarkSD times the SD 1.5-size parts with random weights, as
// shared/reference/sd/bench_sd.py does for PyTorch (its same-run anchor):
//
//	part=unet  UNet2DConditionModel forward, batch 2 (one guided step), 64×64 latents, context (2, 77, 768), t = 500
//	part=vae   AutoencoderKL decode of one (1, 4, 64, 64) latent to 512×512
//	part=text  CLIPTextModel on (2, 77) ids
//
// Each reports s/run and the process's peak RSS so far (run one part per
// process, -bench 'SD/part=unet', to read a part's own peak).
//
//	go test ./bench -run XXX -bench 'SD/part=unet' -benchtime 2x -timeout 30m
func BenchmarkSD(b *testing.B) { benchSDOn(b, kernels.CPU()) }

// BenchmarkSDVulkan is BenchmarkSD on the Vulkan device (a GPU; lavapipe
// skips, see gpu). A 25-step 512×512 txt2img with guidance costs
// 25 × unet + vae + text.
// Each GEMM path in turn, as BenchmarkUNetVulkan.
func BenchmarkSDVulkan(b *testing.B) {
	dev := gpu(b)
	for _, mm := range matMulPaths {
		b.Run("matmul="+mm, func(b *testing.B) {
			defer useMatMul(b, dev, mm)()
			benchSDOn(b, dev)
		})
	}
}

func benchSDOn(b *testing.B, dev tensor.Device) {
	dir := filepath.Join("..", "testdata", "sd-configs", "sd15")
	r := rand.New(rand.NewPCG(1, 2))
	b.Run("part=unet", func(b *testing.B) {
		cfg, err := unet.LoadConditionConfig(filepath.Join(dir, "unet", "config.json"))
		if err != nil {
			b.Fatal(err)
		}
		m, err := unet.NewCondition(dev, cfg, 1)
		if err != nil {
			b.Fatal(err)
		}
		defer m.NoGrad()()
		x := tensor.FromFloat32(dev, randn(r, 2*4*64*64), 2, 4, 64, 64)
		ctx := tensor.FromFloat32(dev, randn(r, 2*77*768), 2, 77, 768)
		run := func() {
			out, err := m.Forward(x, []float32{500}, ctx, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := out.Float32s(); err != nil {
				b.Fatal(err)
			}
		}
		timeRuns(b, dev, run)
	})
	b.Run("part=vae", func(b *testing.B) {
		raw, err := os.ReadFile(filepath.Join(dir, "vae", "config.json"))
		if err != nil {
			b.Fatal(err)
		}
		cfg, err := vae.ParseConfig("sd15 vae", raw)
		if err != nil {
			b.Fatal(err)
		}
		v, err := vae.New(dev, cfg, 1)
		if err != nil {
			b.Fatal(err)
		}
		defer v.NoGrad()()
		z := tensor.FromFloat32(dev, randn(r, 4*64*64), 1, 4, 64, 64)
		timeRuns(b, dev, func() {
			img, err := v.Decode(z)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := img.Float32s(); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("part=text", func(b *testing.B) {
		raw, err := os.ReadFile(filepath.Join(dir, "text_encoder", "config.json"))
		if err != nil {
			b.Fatal(err)
		}
		cfg, err := clip.ParseTextConfig("sd15 text", raw)
		if err != nil {
			b.Fatal(err)
		}
		m, err := clip.NewTextModel(dev, cfg, r)
		if err != nil {
			b.Fatal(err)
		}
		defer m.NoGrad()()
		tok, err := clip.LoadTokenizer(filepath.Join("..", "testdata", "sd", "tiny-pipeline", "tokenizer"))
		if err != nil {
			b.Fatal(err)
		}
		a, _ := tok.Tokenize("a photograph of an astronaut riding a horse")
		e, _ := tok.Tokenize("")
		ids := append(a, e...)
		timeRuns(b, dev, func() {
			out, err := m.Forward(ids, 2)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := out.LastHidden.Float32s(); err != nil {
				b.Fatal(err)
			}
		})
	})
}

// timeRuns runs fn once untimed (warm-up), then b.N times, and reports
// seconds per run and the peak RSS (and, on a GPU, logs a profile; see
// logGPUProfile).
func timeRuns(b *testing.B, dev tensor.Device, fn func()) {
	defer logGPUProfile(b, dev, fn)
	fn()
	b.ResetTimer()
	for range b.N {
		fn()
	}
	b.StopTimer()
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/run")
	b.ReportMetric(peakRSSMiB(), "peakRSS-MiB")
}
