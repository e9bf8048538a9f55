package pipeline

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/godiffuse/godiffuse/ddpm"
	"github.com/godiffuse/godiffuse/internal/sdfixtures"
	"github.com/godiffuse/godiffuse/kernels"
)

// copyDir copies a fixture folder so a test can break it.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLoadErrorsNameTheProblem breaks a copy of the tiny pipeline in one
// way at a time; each load must fail with an error naming what is wrong.
func TestLoadErrorsNameTheProblem(t *testing.T) {
	src := sdfixtures.Folders(t, sdfixtures.Pipeline)[0]
	edit := func(file, old, new string) func(dir string) {
		return func(dir string) {
			p := filepath.Join(dir, file)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			s := string(b)
			if !strings.Contains(s, old) {
				t.Fatalf("%s has no %q", file, old)
			}
			os.WriteFile(p, []byte(strings.Replace(s, old, new, 1)), 0o644)
		}
	}
	type breakage struct {
		name   string
		break_ func(dir string)
		want   string
	}
	var extra []breakage
	if sd2 := filepath.Join(filepath.Dir(src), "tiny-sd2-unet"); sdfixtures.Kind(sd2) == sdfixtures.UNet {
		extra = append(extra, breakage{"a unet whose cross-attention width is not the text encoder's", func(dir string) {
			os.RemoveAll(filepath.Join(dir, "unet"))
			copyDir(t, sd2, filepath.Join(dir, "unet"))
		}, "cross_attention_dim 48 differs from the text encoder's hidden_size 32"})
	}
	for _, c := range append([]breakage{
		{"no model_index.json", func(dir string) { os.Remove(filepath.Join(dir, "model_index.json")) }, "not a diffusers pipeline folder"},
		{"suggested guidance out of range", edit("model_index.json", `{`, `{"_godiffuse_sampling": {"guidance_scale": -2},`), "_godiffuse_sampling.guidance_scale -2: want 0 … 100"},
		{"suggested steps not a number", edit("model_index.json", `{`, `{"_godiffuse_sampling": {"num_inference_steps": "many"},`), "_godiffuse_sampling: want {"},
		{"suggested sampler unknown", edit("model_index.json", `{`, `{"_godiffuse_sampling": {"sampler": "plms"},`), `_godiffuse_sampling: want {"guidance_scale": number, "num_inference_steps": integer, "sampler": name}: unknown sampler "plms" (want one of ddim, euler`},
		{"SDXL", edit("model_index.json", `"StableDiffusionPipeline"`, `"StableDiffusionXLPipeline"`), "StableDiffusionXLPipeline is not supported"},
		{"not SD", edit("model_index.json", `"StableDiffusionPipeline"`, `"KandinskyPipeline"`), "not a Stable Diffusion pipeline"},
		{"missing vae folder", func(dir string) { os.RemoveAll(filepath.Join(dir, "vae")) }, "vae/ folder is missing"},
		{"missing weights", func(dir string) { os.Remove(filepath.Join(dir, "unet", "diffusion_pytorch_model.safetensors")) }, "no weights"},
		{"unsupported unet option", edit("unet/config.json", `"act_fn": "silu"`, `"act_fn": "silu", "dual_cross_attention": true`), "dual_cross_attention"},
		{"bad unet field", edit("unet/config.json", `"norm_num_groups": 8`, `"norm_num_groups": 7`), "norm_num_groups"},
		{"bad clip activation", edit("text_encoder/config.json", `"quick_gelu"`, `"swiglu"`), "hidden_act"},
		{"bad scheduler", edit("scheduler/scheduler_config.json", `"scaled_linear"`, `"exotic"`), "beta_schedule"},
		{"vae block type", edit("vae/config.json", `"DownEncoderBlock2D",`, `"AttnDownEncoderBlock2D",`), "down_block_types[0]"},
		{"truncated weights", func(dir string) {
			p := filepath.Join(dir, "vae", "diffusion_pytorch_model.safetensors")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)/2], 0o644)
		}, "invalid safetensors"},
	}, extra...) {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, src, dir)
			c.break_(dir)
			_, err := Load(kernels.CPU(), dir)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

// FuzzReadSuggested: whatever model_index.json holds under
// _godiffuse_sampling, reading it never panics, and what it accepts is in
// range (a guidance 0 … 100, steps 0 … MaxSteps, a sampler it has; zero
// suggests nothing).
func FuzzReadSuggested(f *testing.F) {
	for _, seed := range []string{`{"guidance_scale": 3, "num_inference_steps": 20, "sampler": "euler-a"}`, `{"sampler": 4}`, `{"sampler": ""}`, `{}`, `null`, `{"guidance_scale": -1}`,
		`{"guidance_scale": 1e400}`, `{"num_inference_steps": 1.5}`, `[3, 20]`, `"3"`, `{"guidance_scale": "NaN"}`, ``} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := readSuggested("model_index.json", raw)
		if err != nil {
			if !strings.Contains(err.Error(), "model_index.json") {
				t.Errorf("error %q does not name the file", err)
			}
			return
		}
		if !(s.Guidance >= 0 && s.Guidance <= 100) || s.Steps < 0 || s.Steps > MaxSteps || !slices.Contains(ddpm.SigmaSamplerNames, s.Sampler.String()) {
			t.Errorf("accepted %+v from %q", s, raw)
		}
	})
}
