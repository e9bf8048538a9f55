// Package pipeline runs Stable Diffusion 1.x/2.x pipelines from their
// diffusers folders: model_index.json, tokenizer/, text_encoder/, unet/,
// vae/ and scheduler/. It is what `diffuse generate` and `diffuse img2img`
// call, and what a Go program embeds:
//
//	p, err := pipeline.Load(kernels.CPU(), "stable-diffusion-v1-5")
//	res, err := p.Generate(pipeline.Options{Prompt: "a red circle", Steps: 25, Seed: 1})
//	// res.Images[0] is an *image.NRGBA; res.Parameters the PNG "parameters" text
//
// Text-to-image follows diffusers' StableDiffusionPipeline (classifier-free
// guidance with the unconditional batch first, latents/scaling_factor to the
// VAE); image-to-image its StableDiffusionImg2ImgPipeline.
package pipeline

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/godiffuse/godiffuse/ddpm"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/nn/clip"
	"github.com/godiffuse/godiffuse/nn/unet"
	"github.com/godiffuse/godiffuse/nn/vae"
	"github.com/godiffuse/godiffuse/safety"
	"github.com/godiffuse/godiffuse/tensor"
)

// Pipeline is a loaded Stable Diffusion folder. A folder whose
// model_index.json names the vae as [null, null] is a pixel-space pipeline
// (as diffuse train -data shapes writes): the U-Net denoises RGB pixels
// and VAE is nil.
type Pipeline struct {
	Dir         string
	Name        string // the folder's base name, written into image metadata
	Class       string // model_index.json's _class_name
	Device      tensor.Device
	Tokenizer   *clip.Tokenizer
	TextEncoder *clip.TextModel
	UNet        *unet.Condition
	VAE         *vae.AutoencoderKL
	Scheduler   ddpm.SchedulerConfig
	// Safety checks every image a run makes (under Options.SafetyPolicy):
	// the folder's safety_checker/ when it has one (diffusers'
	// StableDiffusionSafetyChecker), else nil; replace it with any
	// safety.Checker, or set it to nil to check nothing.
	Safety safety.Checker
	// Notes are things a user may want to know about the folder (config keys
	// that were ignored); nothing in them stops the pipeline from running.
	Notes []string
	// Suggested holds the sampling settings the folder suggests (zero:
	// none; front-ends then use Stable Diffusion's usual 7.5 and 25).
	Suggested Suggested
}

// Suggested is what a pipeline folder's model_index.json may suggest under
// "_godiffuse_sampling" (diffusers ignores keys that start with "_"):
// models trained here from scratch draw best at a lower guidance than
// Stable Diffusion's 7.5. Zero fields suggest nothing.
type Suggested struct {
	Guidance float64               `json:"guidance_scale,omitempty"`
	Steps    int                   `json:"num_inference_steps,omitempty"`
	Sampler  ddpm.SigmaSamplerKind `json:"sampler,omitempty"` // a name of ddpm.SigmaSamplerNames
}

// suggestedKey is Suggested's key in model_index.json.
const suggestedKey = "_godiffuse_sampling"

// readSuggested reads and checks the suggested settings of model_index.json
// (path names it in errors).
func readSuggested(path string, raw json.RawMessage) (Suggested, error) {
	var s Suggested
	if raw == nil {
		return s, nil
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return s, fmt.Errorf("pipeline: %s: %s: want {\"guidance_scale\": number, \"num_inference_steps\": integer, \"sampler\": name}: %v", path, suggestedKey, err)
	}
	if !(s.Guidance >= 0 && s.Guidance <= 100) {
		return s, fmt.Errorf("pipeline: %s: %s.guidance_scale %v: want 0 … 100", path, suggestedKey, s.Guidance)
	}
	if s.Steps < 0 || s.Steps > MaxSteps {
		return s, fmt.Errorf("pipeline: %s: %s.num_inference_steps %d: want 1 … %d", path, suggestedKey, s.Steps, MaxSteps)
	}
	return s, nil
}

// parts a text-to-image pipeline folder must have.
var parts = []string{"tokenizer", "text_encoder", "unet", "vae", "scheduler"}

// Load reads a diffusers Stable Diffusion folder onto dev, keeping the
// weights the files hold in F16 in half precision (LoadWith sets that).
// Errors name the folder and the part that is missing or not supported.
func Load(dev tensor.Device, dir string) (*Pipeline, error) {
	return LoadWith(dev, dir, nn.StoreAsFile)
}

// LoadWith is Load with the precision the Linear and Conv2d weights are kept
// in: nn.StoreF16 halves a float32 folder's memory (values rounded to half
// precision), nn.StoreF32 widens an F16 folder.
func LoadWith(dev tensor.Device, dir string, storage nn.Storage) (*Pipeline, error) {
	return LoadWithOptions(dev, dir, LoadOptions{Storage: storage})
}

// LoadOptions tune LoadWithOptions.
type LoadOptions struct {
	Storage nn.Storage // as for LoadWith
	// SkipSafetyChecker leaves the folder's safety_checker/ unloaded (a
	// caller that checks with another Checker, or not at all, saves its
	// memory: about 1.2 GB in float32 for SD 1.x).
	SkipSafetyChecker bool
}

// LoadWithOptions is Load with options.
func LoadWithOptions(dev tensor.Device, dir string, o LoadOptions) (*Pipeline, error) {
	storage := o.Storage
	idxPath := filepath.Join(dir, "model_index.json")
	b, err := os.ReadFile(idxPath)
	if os.IsNotExist(err) {
		if _, serr := os.Stat(dir); serr != nil {
			return nil, fmt.Errorf("pipeline: %w", serr)
		}
		return nil, fmt.Errorf("pipeline: %s is not a diffusers pipeline folder (no model_index.json)", dir)
	} else if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	var index map[string]json.RawMessage
	if err := json.Unmarshal(b, &index); err != nil {
		return nil, fmt.Errorf("pipeline: %s: not a JSON object: %v", idxPath, err)
	}
	var class string
	json.Unmarshal(index["_class_name"], &class)
	if err := checkClass(idxPath, class); err != nil {
		return nil, err
	}
	var vaeEntry []any
	json.Unmarshal(index["vae"], &vaeEntry)
	pixelSpace := len(vaeEntry) == 2 && vaeEntry[0] == nil && vaeEntry[1] == nil
	for _, part := range parts {
		if part == "vae" && pixelSpace {
			continue
		}
		if _, ok := index[part]; !ok {
			return nil, fmt.Errorf("pipeline: %s names no %q part (a Stable Diffusion pipeline has %s)", idxPath, part, strings.Join(parts, ", "))
		}
		if st, err := os.Stat(filepath.Join(dir, part)); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("pipeline: %s: the %s/ folder is missing", dir, part)
		}
	}
	suggested, err := readSuggested(idxPath, index[suggestedKey])
	if err != nil {
		return nil, err
	}
	abs, _ := filepath.Abs(dir)
	p := &Pipeline{Dir: dir, Name: filepath.Base(abs), Class: class, Device: dev, Suggested: suggested}
	if p.Tokenizer, err = clip.LoadTokenizer(filepath.Join(dir, "tokenizer")); err != nil {
		return nil, err
	}
	if p.TextEncoder, err = clip.LoadTextModel(dev, filepath.Join(dir, "text_encoder"), storage); err != nil {
		return nil, err
	}
	if p.UNet, err = unet.LoadCondition(dev, filepath.Join(dir, "unet"), storage); err != nil {
		return nil, err
	}
	if !pixelSpace {
		if p.VAE, err = vae.Load(dev, filepath.Join(dir, "vae"), storage); err != nil {
			return nil, err
		}
	}
	if p.Scheduler, err = ddpm.LoadSchedulerConfig(filepath.Join(dir, "scheduler", "scheduler_config.json")); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "safety_checker")); err == nil && !o.SkipSafetyChecker {
		if p.Safety, err = safety.LoadSDCheckerWith(dev, dir, storage); err != nil {
			return nil, fmt.Errorf("pipeline: %w", err)
		}
	}
	// StableDiffusionPipeline rewrites outdated scheduler configs so.
	p.Scheduler.StepsOffset, p.Scheduler.ClipSample = 1, false
	for _, k := range p.UNet.Config.Ignored {
		p.Notes = append(p.Notes, fmt.Sprintf("unet/config.json: %s ignored", k))
	}
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("pipeline: %s: %w", dir, err)
	}
	p.TextEncoder.NoGrad() // a loaded pipeline is for inference; train the parts themselves
	p.UNet.NoGrad()
	if p.VAE != nil {
		p.VAE.NoGrad()
	}
	return p, nil
}

func checkClass(path, class string) error {
	switch {
	case class == "":
		return fmt.Errorf("pipeline: %s has no _class_name", path)
	case strings.HasPrefix(class, "StableDiffusionXL"), strings.HasPrefix(class, "StableDiffusion3"):
		return fmt.Errorf("pipeline: %s: %s is not supported (Stable Diffusion 1.x and 2.x pipelines are)", path, class)
	case strings.HasPrefix(class, "StableDiffusion"):
		return nil
	}
	return fmt.Errorf("pipeline: %s: %s is not a Stable Diffusion pipeline", path, class)
}

// check that the parts fit together.
// freeze marks the weights of every model of p unchanging until thaw, for
// one run (nn.Freeze).
func (p *Pipeline) freeze() (thaw func()) {
	ps := append(p.UNet.Params(), p.TextEncoder.Params()...)
	if p.VAE != nil {
		ps = append(ps, p.VAE.Params()...)
	}
	return nn.Freeze(ps)
}

func (p *Pipeline) check() error {
	ctx, te := p.UNet.Config.CrossAttentionDim.At(0), p.TextEncoder.Config.HiddenSize
	if ctx != te {
		return fmt.Errorf("the unet's cross_attention_dim %d differs from the text encoder's hidden_size %d", ctx, te)
	}
	if p.VAE == nil {
		if p.UNet.Config.InChannels != 3 || p.UNet.Config.OutChannels != 3 {
			return fmt.Errorf("a pixel-space pipeline (vae null) needs an RGB unet (in and out_channels 3), not %d and %d",
				p.UNet.Config.InChannels, p.UNet.Config.OutChannels)
		}
	} else if in, lat := p.UNet.Config.InChannels, p.VAE.Config.LatentChannels; in != lat && in != 2*lat+1 {
		return fmt.Errorf("the unet's in_channels %d is neither the vae's latent_channels %d nor %d (an inpainting model's)", in, lat, 2*lat+1)
	}
	if p.Tokenizer.MaxLength > p.TextEncoder.Config.MaxPositionEmbeddings {
		return fmt.Errorf("tokenizer model_max_length %d exceeds the text encoder's max_position_embeddings %d",
			p.Tokenizer.MaxLength, p.TextEncoder.Config.MaxPositionEmbeddings)
	}
	return nil
}

// IsInpainting reports a dedicated inpainting U-Net (in_channels 2·latent+1:
// the latents, the mask and the masked image's latents), which only Inpaint
// drives.
func (p *Pipeline) IsInpainting() bool {
	return p.VAE != nil && p.UNet.Config.InChannels == 2*p.LatentChannels()+1
}

// LatentChannels is the VAE's latent_channels (3, the pixels, in a
// pixel-space pipeline).
func (p *Pipeline) LatentChannels() int {
	if p.VAE == nil {
		return 3
	}
	return p.VAE.Config.LatentChannels
}

// scaling is the VAE's scaling_factor (1 in pixel space).
func (p *Pipeline) scaling() float64 {
	if p.VAE == nil {
		return 1
	}
	return p.VAE.Config.ScalingFactor
}

// Objective is what the U-Net predicts (scheduler prediction_type).
func (p *Pipeline) Objective() ddpm.Objective {
	o, _ := ddpm.ParseObjective(p.Scheduler.PredictionType)
	return o
}

// ImageFactor is the ratio of image to latent size (8 for SD, 1 in pixel
// space).
func (p *Pipeline) ImageFactor() int {
	if p.VAE == nil {
		return 1
	}
	return p.VAE.DownFactor()
}

// SizeStep is what width and height must be multiples of: the VAE's factor
// (8 for SD; the U-Net takes latents of any size, as diffusers' does).
func (p *Pipeline) SizeStep() int {
	if p.VAE == nil {
		return 8 // pixel space: the U-Net's own down-sampling wants whole halvings
	}
	return p.ImageFactor()
}

// DefaultSize is the U-Net's sample_size times the VAE factor (512 for SD 1.5).
func (p *Pipeline) DefaultSize() int {
	var n int
	if json.Unmarshal(p.UNet.Config.SampleSize, &n) == nil && n > 0 {
		return n * p.ImageFactor()
	}
	return 64 * p.ImageFactor()
}
