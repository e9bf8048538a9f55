package main

import (
	_ "embed"
	"fmt"
	"image"
	"image/draw"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/ddpm"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/nn/clip"
	"github.com/godiffuse/godiffuse/nn/unet"
	"github.com/godiffuse/godiffuse/pipeline"
	"github.com/godiffuse/godiffuse/safety"
)

// diffuse train -data shapes: text-to-image from scratch (pipeline.Trainer)
// on the generated shapes captions; the checkpoint is a pixel-space
// pipeline folder that diffuse generate and serve load.

var (
	//go:embed configs/shapes-unet.json
	shapesUNetConfig []byte
	//go:embed configs/shapes-text.json
	shapesTextConfig []byte
)

// Defaults of the text-to-image run: ten minutes, on 100,000 scenes of the
// training split (drawn as needed; data seed 1).
const (
	defaultTextTime = 10 * time.Minute
	shapesScenes    = 100_000
	// defaultTextObjective is -objective's default for captioned data: x0.
	// Trained for ε, the shapes model drew the same picture for every prompt
	// after 313 steps (2 % single-object accuracy); for x0, whose loss at high
	// noise is about the picture the caption asks for, it followed colours
	// after 300 (bench/RESULTS.md, 2026-12-03 (morning)).
	defaultTextObjective = "sample"
	// defaultTextBatch is -batch's default for captioned data. At the same
	// 16,000 scenes, 1,000 steps of 16 drew single objects right 77 % of the
	// time against 45 % for 500 steps of 32 (and 70 % for 2,000 of 8), and
	// two cores run a batch of 16 nearly as fast per scene (bench/RESULTS.md,
	// 2026-12-03 (evening)).
	defaultTextBatch = 16
)

// shapesPreview are the prompts of the sample grid: seen kinds of
// caption, then held-out combinations (every green triangle).
var shapesPreview = []string{
	"a small red circle", "a large blue square", "a yellow triangle", "a purple circle",
	"two white squares", "three red triangles", "a red circle and a blue square", "a yellow square and a purple triangle",
	"a blue circle to the left of a red square", "a white triangle above a yellow circle", "a red square below a blue circle", "a purple square to the right of a white circle",
	"a green triangle", "a large green triangle", "two green triangles", "a green triangle to the left of a red circle",
}

// isTextData says whether a -data spec is captioned (text-to-image).
func isTextData(spec string) bool {
	return spec == "shapes" || strings.HasPrefix(spec, "shapes:") || spec == "emoji" || strings.HasPrefix(spec, "emoji:")
}

// textRun holds what runTrain parsed for a text-to-image run.
type textRun struct {
	spec, config string
	textConfig   string // the text encoder's config.json; "": shapesTextConfig
	tc           ddpm.TrainConfig
	device       deviceFlags
	resume       *ddpm.ResumeChanges // continue OUT/checkpoint with these changes; nil: a new run
	sampleSteps  int
	loop         loopSettings
}

// textData is a captioned training set with its tokenizer vocabulary and
// the prompts of its preview grid.
type textData struct {
	ds         data.Captioned
	vocabulary []string
	preview    []string
	what       string
}

// loadTextData parses shapes[:N][,KIND=WEIGHT…] or emoji[:FONT[,EMOJI-TEST]].
func loadTextData(spec string) (textData, error) {
	kind, arg, hasArg := strings.Cut(spec, ":")
	if kind == "emoji" {
		font, test := data.NotoEmojiFont, data.EmojiTestFile
		if hasArg {
			font, test, _ = strings.Cut(arg, ",")
			if test == "" {
				test = data.EmojiTestFile
			}
		}
		ds, err := data.LoadEmoji(font, test, data.ShapesSize)
		if err != nil {
			return textData{}, fmt.Errorf("-data emoji (apt-get install fonts-noto-color-emoji unicode-data, or emoji:FONT.ttf,emoji-test.txt): %w", err)
		}
		td := textData{ds: ds, what: fmt.Sprintf("%d emoji (Noto Color Emoji) with their Unicode names", ds.Len())}
		for i := range ds.Len() {
			td.vocabulary = append(td.vocabulary, ds.Caption(i))
		}
		for k := range 16 {
			td.preview = append(td.preview, ds.Caption(k*ds.Len()/16))
		}
		return td, nil
	}
	n, mixPairs := shapesScenes, []string(nil)
	if hasArg {
		parts := strings.Split(arg, ",")
		if !strings.Contains(parts[0], "=") {
			v, err := strconv.Atoi(parts[0])
			if err != nil || v < 1 || v > 1<<30 {
				return textData{}, fmt.Errorf("-data shapes:N: want a number of scenes 1 … 2^30, have %q", parts[0])
			}
			n, parts = v, parts[1:]
		}
		mixPairs = parts
	}
	var mix data.ShapeMix
	if len(mixPairs) > 0 {
		var err error
		if mix, err = data.ParseShapeMix(mixPairs); err != nil {
			return textData{}, fmt.Errorf("-data %s: %w", spec, err)
		}
	}
	ds, err := data.ShapesMixed(n, 1, data.ShapesTrain, mix)
	if err != nil {
		return textData{}, err
	}
	return textData{ds: ds, vocabulary: shapesVocabulary(), preview: shapesPreview,
		what: fmt.Sprintf("%d captioned %dx%d scenes (held out: every green triangle%s)", n, data.ShapesSize, data.ShapesSize, mix)}, nil
}

func trainText(r textRun) error {
	td, err := loadTextData(r.spec)
	if err != nil {
		return err
	}
	ds := td.ds
	uc, err := unet.ParseConditionConfig("built-in shapes U-Net config", shapesUNetConfig)
	if r.config != "" {
		uc, err = unet.LoadConditionConfig(r.config)
	}
	if err != nil {
		return err
	}
	tcfg, err := clip.ParseTextConfig("built-in shapes text encoder config", shapesTextConfig)
	if r.textConfig != "" {
		var b []byte
		if b, err = os.ReadFile(r.textConfig); err == nil {
			tcfg, err = clip.ParseTextConfig(r.textConfig, b)
		}
	}
	if err != nil {
		return err
	}
	dev, err := pickDevice(r.device)
	if err != nil {
		return err
	}
	ckpt := filepath.Join(r.loop.out, "checkpoint")
	var tr *pipeline.Trainer
	if r.resume != nil {
		if tr, err = pipeline.Resume(dev, ckpt, ds, *r.resume); err != nil {
			return err
		}
	} else {
		full, err := clip.OpenAIBPE()
		if err != nil {
			return err
		}
		tok := full.Subset(td.vocabulary, tcfg.MaxPositionEmbeddings)
		if tr, err = pipeline.NewTrainer(dev, uc, tcfg, tok, r.tc, ds); err != nil {
			return err
		}
		if n := tr.Config.PretrainText; n > 0 {
			if err := pretrainText(tr, n); err != nil {
				return err
			}
		}
	}
	if err := os.MkdirAll(r.loop.out, 0o755); err != nil {
		return err
	}
	text := "and a"
	switch {
	case tr.Config.PretrainText > 0 && tr.Config.FreezeText:
		text = fmt.Sprintf("with a frozen (contrastively pre-trained for %d steps)", tr.Config.PretrainText)
	case tr.Config.PretrainText > 0:
		text = fmt.Sprintf("and a (contrastively pre-trained for %d steps, now training on)", tr.Config.PretrainText)
	case tr.Config.FreezeText:
		text = "with a frozen (randomly initialized)"
	}
	fmt.Fprintf(os.Stderr, "training a %d-parameter text-conditioned U-Net %s %d-parameter text encoder (vocabulary %d) on %s, batch %d, device %s\n",
		tr.UNet.NumParams(), text, nn.CountParams(tr.Text.Params()), tr.Tokenizer.VocabSize(), td.what, tr.Config.Batch, dev.Name())
	step := tr.TrainStep
	if tr.Ground != nil || tr.Config.GroundAttention > 0 {
		step = groundReport(tr)
	}
	run := trainRun{step: step, save: tr.Save, done: &tr.Step, total: &tr.Config.Steps, losses: &tr.Losses,
		grid: func(path string) error { return textGrid(tr.Pipeline(), path, r.sampleSteps, td.preview) }}
	return run.loop(r.loop)
}

// groundReport is tr's step, saying on stderr every 1,000 steps the mean
// grounding losses, unweighed, of the steps that had them: the text head's
// squared error per word (x and y together), the attention's mean (1 − f)²
// per object word.
func groundReport(tr *pipeline.Trainer) func() (ddpm.StepInfo, error) {
	var text, attn float64
	var kt, ka int
	return func() (ddpm.StepInfo, error) {
		info, err := tr.TrainStep()
		if err == nil && tr.GroundLoss > 0 {
			text, kt = text+float64(tr.GroundLoss)/tr.Config.GroundText, kt+1
		}
		if err == nil && tr.AttentionLoss > 0 {
			attn, ka = attn+float64(tr.AttentionLoss)/tr.Config.GroundAttention, ka+1
		}
		if err == nil && info.Step%1000 == 0 {
			if kt > 0 {
				fmt.Fprintf(os.Stderr, "\ngrounding loss %.4f (mean of the %d steps with position captions since the last report)\n", text/float64(kt), kt)
			}
			if ka > 0 {
				fmt.Fprintf(os.Stderr, "\nattention grounding loss %.4f (mean of the last %d steps; 1 − the share of an object word's attention on its object, squared)\n", attn/float64(ka), ka)
			}
			text, attn, kt, ka = 0, 0, 0, 0
		}
		return info, err
	}
}

// pretrainLR is the contrastive pre-training's learning rate (after a
// warm-up over its first tenth).
const pretrainLR = 5e-4

// pretrainText runs the contrastive pre-training of tr's text encoder
// (pairs of tr's batch size: 2·batch captions a step), reporting on stderr
// every 50 steps and at the end.
func pretrainText(tr *pipeline.Trainer, steps int) error {
	fmt.Fprintf(os.Stderr, "pre-training the %d-parameter text encoder contrastively: %d steps of %d captions (each scene and its hard negative)\n",
		nn.CountParams(tr.Text.Params()), steps, 2*tr.Config.Batch)
	start := time.Now()
	var loss, acc, hard float64
	var k int
	byKind, kindSteps := map[string]float64{}, map[string]int{}
	return tr.PretrainText(steps, tr.Config.Batch, pretrainLR, func(info pipeline.PretrainInfo) {
		loss, acc, hard, k = loss+float64(info.Loss), acc+float64(info.Accuracy), hard+float64(info.HardWins), k+1
		for kind, w := range info.HardWinsByKind {
			byKind[kind] += float64(w)
			kindSteps[kind]++
		}
		if info.Step%50 == 0 || info.Step == steps {
			fmt.Fprintf(os.Stderr, "text pre-training %d/%d: loss %.3f, picks its own picture %.1f %%, beats its hard negative %.1f %% (mean of the last %d steps), %s\n",
				info.Step, steps, loss/float64(k), 100*acc/float64(k), 100*hard/float64(k), k, time.Since(start).Round(time.Second))
			loss, acc, hard, k = 0, 0, 0, 0
		}
		if info.Step%500 == 0 || info.Step == steps {
			var parts []string
			for _, kind := range append(slices.Clone(data.ShapeKinds), pipeline.PositionMirrored, pipeline.PositionOtherAxis) {
				if n := kindSteps[kind]; n > 0 {
					parts = append(parts, fmt.Sprintf("%s %.1f %%", kind, 100*byKind[kind]/float64(n)))
				}
			}
			fmt.Fprintf(os.Stderr, "  beats its hard negative, by kind over the last 500 steps: %s\n", strings.Join(parts, ", "))
			byKind, kindSteps = map[string]float64{}, map[string]int{}
		}
	})
}

// shapesVocabulary are texts that hold every word of the shapes captions.
func shapesVocabulary() []string {
	words := append(append(append([]string{"a", "and", "two", "three", "to the left of", "to the right of", "above", "below"},
		data.ShapeNames...), data.ShapeColours...), data.ShapeSizes...)
	for _, s := range data.ShapeNames {
		words = append(words, s+"s")
	}
	return words
}

// textGrid samples the preview prompts (the folder's suggested guidance
// and sampler) into a 4×4 grid, the prompts in the PNG's parameters text.
func textGrid(p *pipeline.Pipeline, path string, steps int, prompts []string) error {
	g, sampler := p.Suggested.Guidance, p.Suggested.Sampler
	const scale = 3
	side := data.ShapesSize*scale + 4
	img := image.NewRGBA(image.Rect(0, 0, 4*side+4, 4*side+4))
	for i, prompt := range prompts[:min(len(prompts), 16)] {
		res, err := p.Generate(pipeline.Options{Prompt: prompt, Steps: steps, Guidance: g, Sampler: sampler, Seed: uint64(i),
			Width: data.ShapesSize, Height: data.ShapesSize, NoWatermark: true, SafetyPolicy: safety.Off})
		if err != nil {
			return err
		}
		x, y := 4+(i%4)*side, 4+(i/4)*side
		draw.Draw(img, image.Rect(x, y, x+side-4, y+side-4), scaleUp(toRGBA(res.Images[0]), scale), image.Point{}, draw.Src)
	}
	prov := newProvenance("txt2img")
	prov.Model, prov.Sampler, prov.Steps, prov.Guidance, prov.Images = "training", sampler.String(), steps, g, len(prompts)
	params := "prompts, row by row: " + strings.Join(prompts, " | ")
	off, none := "off", "none"
	return writeImage(path, img, params, prov, outputFlags{watermark: &off, noMeta: new(bool), policy: &off, checker: &none})
}
