// Command mkrandom writes a full-size Stable Diffusion pipeline folder with
// random weights, for timing and memory runs without downloading a model:
//
//	go run ./pipeline/internal/mkrandom -config testdata/sd-configs/sd15 -out /tmp/sd15-random
//
// The configs come from -config (model_index.json and the parts' configs,
// as in shared/reference/sd/configs), the vocabulary from -tokenizer. Linear
// and Conv2d weights are U(±1/√fan_in) as PyTorch initialises them, norm
// weights 1, biases and embeddings small; stored as -dtype (F16 by default,
// as the fp16 folders people download).
package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/nn/clip"
	"github.com/godiffuse/godiffuse/nn/unet"
	"github.com/godiffuse/godiffuse/nn/vae"
	"github.com/godiffuse/godiffuse/safetensors"
	"github.com/godiffuse/godiffuse/tensor"
)

func main() {
	cfgDir := flag.String("config", "testdata/sd-configs/sd15", "folder with model_index.json and the parts' configs")
	tokDir := flag.String("tokenizer", "testdata/sd/tiny-pipeline/tokenizer", "folder with vocab.json and merges.txt")
	out := flag.String("out", "", "folder to write")
	dtype := flag.String("dtype", "F16", "F16 or F32")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	if err := run(*cfgDir, *tokDir, *out, safetensors.DType(*dtype), *seed); err != nil {
		fmt.Fprintln(os.Stderr, "mkrandom:", err)
		os.Exit(1)
	}
}

func run(cfgDir, tokDir, out string, dt safetensors.DType, seed uint64) error {
	if out == "" {
		return fmt.Errorf("-out: give a folder")
	}
	if dt != safetensors.F16 && dt != safetensors.F32 {
		return fmt.Errorf("-dtype %s: want F16 or F32", dt)
	}
	for _, part := range []string{"", "unet", "vae", "text_encoder", "tokenizer", "scheduler"} {
		if err := os.MkdirAll(filepath.Join(out, part), 0o755); err != nil {
			return err
		}
	}
	copies := map[string]string{
		"model_index.json": "model_index.json", "unet/config.json": "unet/config.json", "vae/config.json": "vae/config.json",
		"text_encoder/config.json": "text_encoder/config.json", "scheduler/scheduler_config.json": "scheduler/scheduler_config.json",
		"tokenizer/tokenizer_config.json": "tokenizer/tokenizer_config.json", "tokenizer/special_tokens_map.json": "tokenizer/special_tokens_map.json",
	}
	for dst, src := range copies {
		if err := copyFile(filepath.Join(cfgDir, src), filepath.Join(out, dst)); err != nil {
			return err
		}
	}
	for _, f := range []string{"vocab.json", "merges.txt"} {
		if err := copyFile(filepath.Join(tokDir, f), filepath.Join(out, "tokenizer", f)); err != nil {
			return err
		}
	}
	dev := tensor.ShapesOnly()
	r := rand.New(rand.NewPCG(seed, 7))
	suffix := ".safetensors"
	if dt == safetensors.F16 {
		suffix = ".fp16.safetensors"
	}
	ucfg, err := unet.LoadConditionConfig(filepath.Join(out, "unet", "config.json"))
	if err != nil {
		return err
	}
	u, err := unet.BuildCondition(dev, ucfg)
	if err != nil {
		return err
	}
	if err := write(filepath.Join(out, "unet", "diffusion_pytorch_model"+suffix), u.Params(), dt, r); err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(out, "vae", "config.json"))
	if err != nil {
		return err
	}
	vcfg, err := vae.ParseConfig("vae config", b)
	if err != nil {
		return err
	}
	v, err := vae.Build(dev, vcfg)
	if err != nil {
		return err
	}
	if err := write(filepath.Join(out, "vae", "diffusion_pytorch_model"+suffix), v.Params(), dt, r); err != nil {
		return err
	}
	b, err = os.ReadFile(filepath.Join(out, "text_encoder", "config.json"))
	if err != nil {
		return err
	}
	tcfg, err := clip.ParseTextConfig("text config", b)
	if err != nil {
		return err
	}
	te, err := clip.NewTextModel(dev, tcfg, nil)
	if err != nil {
		return err
	}
	if err := write(filepath.Join(out, "text_encoder", "model"+suffix), te.Params(), dt, r); err != nil {
		return err
	}
	fmt.Println("wrote", out)
	return nil
}

// write streams random values for every parameter of ps into path.
func write(path string, ps []nn.Param, dt safetensors.DType, r *rand.Rand) error {
	var ts []safetensors.Tensor
	for _, p := range ps {
		shape := p.T.Shape()
		fill := func(dst []float32) {
			switch {
			case p.Matrix:
				fanIn := 1
				for _, d := range shape[1:] {
					fanIn *= d
				}
				bound := float32(1 / math.Sqrt(float64(fanIn)))
				for i := range dst {
					dst[i] = (2*r.Float32() - 1) * bound
				}
			case strings.Contains(p.Name, "norm") && strings.HasSuffix(p.Name, ".weight"):
				for i := range dst {
					dst[i] = 1
				}
			default: // biases, embeddings
				for i := range dst {
					dst[i] = (2*r.Float32() - 1) * 0.02
				}
			}
		}
		ts = append(ts, safetensors.Tensor{Name: p.Name, DType: dt, Shape: shape, Fill: fill})
	}
	return safetensors.Write(path, ts, map[string]string{"format": "pt", "note": "random weights (mkrandom)"})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	o, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(o, in); err != nil {
		o.Close()
		return err
	}
	return o.Close()
}
