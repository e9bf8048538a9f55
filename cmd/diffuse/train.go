package main

import (
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/ddpm"
	"github.com/godiffuse/godiffuse/nn"
)

//go:embed configs/tiny-mnist.json
var tinyMNISTConfig []byte

// Defaults of `diffuse train` with no flags: five minutes of training
// (defaultTime), or defaultSteps when -time is 0.
const (
	defaultTime  = 5 * time.Minute
	defaultSteps = 500
	defaultBatch = 32
)

// trainDefaults are the training settings of `diffuse train` with no
// flags (the model is the built-in tiny-mnist config).
func trainDefaults() ddpm.TrainConfig {
	tc := ddpm.DefaultTrainConfig()
	tc.Steps, tc.Batch, tc.WarmupSteps, tc.EMADecay, tc.LRDecay = defaultSteps, defaultBatch, 20, 0.995, ddpm.LRConstant
	// Min-SNR-5 weighting (Hang et al. 2023): on the five-minute run it
	// lowered FD-FMNIST from 85.7 to 77.0 at the same accuracy (bench/RESULTS.md).
	tc.MinSNRGamma = 5
	return tc
}

// stepBudget turns a time budget into a step count: after a few steps it
// measures their speed and fixes the total so that training, the final
// save and the sample grid end within the budget. The speed is measured
// again every tenth of the budget over all steps since the first timed
// one, and the total raised when the machine turned out faster than the
// first steps said (another process may have run during them); if it
// slows down instead, training stops at the deadline.
type stepBudget struct {
	start    time.Time
	budget   time.Duration
	first    int // the step training started from
	t0       time.Time
	rate     float64 // steps per second, last measured
	total    int     // the total last returned
	recheck  time.Time
	announce bool
	now      func() time.Time
}

// Steps timed to estimate the speed (after skipWarm steps whose first
// allocations are slow), the time kept for the save and the grid, and how
// often the speed is measured again (in parts of the budget).
const (
	skipWarm     = 3
	timedSteps   = 12
	finishTime   = 20 * time.Second // the text grid took 14 s once on a slowed machine (a 10 min 2 s run)
	recheckParts = 10
)

func newStepBudget(start time.Time, budget time.Duration, first int) *stepBudget {
	return &stepBudget{start: start, budget: budget, first: first, announce: true, now: time.Now}
}

// after is called after each step: it returns the new total and true when
// the total changes (once measured, raised when faster, or at the deadline).
func (b *stepBudget) after(step int) (int, bool) {
	done := step - b.first
	now := b.now()
	deadline := b.start.Add(b.budget - finishTime)
	if now.After(deadline) {
		b.total = step
		return step, true
	}
	switch {
	case done == skipWarm:
		b.t0 = now
	case done == skipWarm+timedSteps && b.total == 0,
		b.total > 0 && !now.Before(b.recheck):
		b.rate = float64(done-skipWarm) / now.Sub(b.t0).Seconds()
		b.recheck = now.Add(b.budget / recheckParts)
		total := step + int(deadline.Sub(now).Seconds()*b.rate)
		if total > b.total {
			b.total = total
			return total, true
		}
	}
	return 0, false
}

// flagSet says whether the command line set the flag.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func runTrain(args []string) error {
	fs := newFlags("train", "Trains a UNet2DModel as a DDPM and writes OUT/checkpoint (diffusers folders unet/ and\n"+
		"unet_ema/ plus the training state), OUT/loss.png and OUT/samples.png. With no flags it trains the\n"+
		"class-conditional tiny-mnist model on the embedded 5,000-image Fashion-MNIST slice.")
	config := fs.String("config", "", "UNet2DModel config.json (default: the built-in tiny-mnist config)")
	dataSpec := fs.String("data", "embedded", "training images: embedded | idx:IMAGES[,LABELS] | folder:DIR | shapes[:N][,KIND=WEIGHT…] | emoji[:FONT[,EMOJI-TEST]]\n"+
		"(captioned scenes; shapes:100000,position=3 draws position captions three times as often as each other kind: trains a text-to-image pipeline, OUT/checkpoint being its folder; -config is then a UNet2DConditionModel config;\n"+
		"default -time 10m, -batch 16, -objective sample)\n"+
		"| shapes3d[:N] | voxels:FILE.npy|FILE.binvox|DIR (volumes: trains a class-conditional UNet3D, -config a UNet3D config;\n"+
		"default -time 10m, -batch 16, -objective sample, -snr-shift 8, -min-snr 0, -ema 0.999, -lr-decay cosine;\n"+
		"diffuse sample3d makes meshes)")
	textConfig := fs.String("text-config", "", "with captioned -data: the text encoder's CLIPTextModel config.json (default: the built-in one)")
	freezeText := fs.Bool("freeze-text", false, "with captioned -data: keep the text encoder at its random initialization; only the U-Net trains")
	pretrainText := fs.Int("pretrain-text", 0, "with -data shapes: first train the text encoder for this many steps contrastively (CLIP's loss against a small\n"+
		"image encoder, each scene beside a hard negative: the opposite relation, swapped colours, the other count), then freeze it\n"+
		"(implies -freeze-text unless -freeze-text=false is given: then it trains on with the U-Net) and train the U-Net against it")
	groundText := fs.Float64("ground-text", 0, "with -data shapes: weight of an auxiliary loss on the text encoder: a linear head reads each object's place in the\n"+
		"picture from the states of its words in position captions (pairs with a bidirectional encoder: -text-config\n"+
		"bench/configs/shapes-text-bidirectional.json; the head is not part of the pipeline folder); 0: off")
	groundAttention := fs.Float64("ground-attention", 0, "with -data shapes: weight of an auxiliary loss on the U-Net's cross-attention: each object word's attention\n"+
		"(a relation's words: the first object's) should fall on that object's mask (after TokenCompose); may change at -resume; 0: off")
	size := fs.Int("size", 0, "image size for -data folder: (default: the config's sample_size)")
	devSpec := deviceFlag(fs)
	dropout := fs.Float64("dropout", -1, "dropout probability inside the U-Net (default: the config's dropout)")
	tc := trainDefaults()
	fs.IntVar(&tc.Steps, "steps", tc.Steps, "total optimization steps (with -resume: the new total); given, it wins over -time")
	fs.IntVar(&tc.Batch, "batch", tc.Batch, "images per step")
	fs.Float64Var(&tc.LR, "lr", tc.LR, "peak learning rate of AdamW")
	fs.IntVar(&tc.WarmupSteps, "warmup", tc.WarmupSteps, "steps of linear learning-rate warm-up")
	fs.StringVar(&tc.LRDecay, "lr-decay", tc.LRDecay, "learning rate after the warm-up: constant, or cosine (to 0 at the last step)")
	fs.Float64Var(&tc.WeightDecay, "weight-decay", tc.WeightDecay, "AdamW decoupled weight decay")
	fs.Float64Var(&tc.ClipNorm, "clip", tc.ClipNorm, "clip the global gradient norm to this (0: off)")
	fs.Float64Var(&tc.EMADecay, "ema", tc.EMADecay, "EMA decay cap (the warm-up is (1+n)/(10+n))")
	fs.Float64Var(&tc.CondDrop, "cond-drop", tc.CondDrop, "probability of training a sample with the null label (for guidance)")
	fs.BoolVar(&tc.HFlip, "hflip", false, "random horizontal flips")
	fs.Var(&tc.Schedule, "schedule", "noise schedule: "+strings.Join(ddpm.BetaSchedules, ", "))
	fs.IntVar(&tc.T, "timesteps", tc.T, "diffusion steps T")
	fs.StringVar(&tc.Objective, "objective", tc.Objective, "epsilon, v_prediction or sample")
	fs.Float64Var(&tc.MinSNRGamma, "min-snr", tc.MinSNRGamma, "min-SNR-γ loss weighting (0: plain MSE)")
	fs.Float64Var(&tc.SNRShift, "snr-shift", 0, "divide the schedule's SNR by this at every step (0: none; volumes: 8, for 32³ volumes against the\n32×32 images the schedules were made for: Hoogeboom et al. 2023's shifted schedule)")
	fs.Uint64Var(&tc.Seed, "seed", tc.Seed, "seed of every random choice")
	out := fs.String("out", "out", "output folder")
	resume := fs.Bool("resume", false, "continue from OUT/checkpoint with its settings and data; -steps (the new total), -lr and -lr-decay\n"+
		"(cosine from the resume step to the last) may change")
	ckptEvery := fs.Int("checkpoint-every", 50, "write OUT/checkpoint every N steps (0: only at the end)")
	sampleEvery := fs.Int("sample-every", 0, "write OUT/samples/step_N.png every N steps (0: only OUT/samples.png at the end)")
	sampleSteps := fs.Int("sample-steps", defaultSampleSteps, "sampler steps for the sample grids (the grids use diffuse sample's defaults)")
	budget := fs.Duration("time", defaultTime, "train for this long, then save and sample the grid (the step count is\n"+
		"estimated from the first steps' speed and logged; the whole command fits the budget); -steps, when given, wins; 0: -steps")
	if err := parse(fs, args); err != nil {
		return err
	}
	timed := *budget > 0 && !flagSet(fs, "steps")
	start := time.Now() // the budget counts from here: loading and the grid are in it
	switch {
	case tc.Steps < 0:
		return fmt.Errorf("-steps: want ≥ 0, have %d", tc.Steps)
	case *budget < 0 || *budget > 1000*time.Hour:
		return fmt.Errorf("-time: want 0 (use -steps) … 1000h, have %s", *budget)
	case *ckptEvery < 0 || *sampleEvery < 0:
		return fmt.Errorf("-checkpoint-every and -sample-every: want ≥ 0")
	case *sampleSteps < 1 || *sampleSteps > ddpm.MaxTimesteps:
		return fmt.Errorf("-sample-steps: want 1 … %d, have %d", ddpm.MaxTimesteps, *sampleSteps)
	case *size < 0 || *size > maxImageSize:
		return fmt.Errorf("-size: want 0 (the config's sample_size) … %d, have %d", maxImageSize, *size)
	case math.IsNaN(*dropout) || *dropout >= 1:
		return fmt.Errorf("-dropout: want 0 ≤ p < 1 (or < 0: the config's), have %g", *dropout)
	}
	if err := tc.Validate(); err != nil && !*resume {
		return fmt.Errorf("-%w", err)
	}
	if *resume && !flagSet(fs, "data") {
		// The run's data as it was named at the start (checkpoints from before
		// the field was saved need -data again).
		if saved, err := ddpm.SavedTrainConfig(filepath.Join(*out, "checkpoint")); err == nil && saved.Data != "" {
			*dataSpec = saved.Data
		}
	}
	tc.Data = *dataSpec
	// A resumed run keeps the checkpoint's configuration but for these.
	var changes *ddpm.ResumeChanges
	if *resume {
		changes = &ddpm.ResumeChanges{Steps: tc.Steps}
		if flagSet(fs, "lr") {
			changes.LR = tc.LR
		}
		if flagSet(fs, "lr-decay") {
			changes.LRDecay = tc.LRDecay
		}
		if flagSet(fs, "data") {
			changes.Data = *dataSpec
		}
		if flagSet(fs, "ground-attention") {
			changes.GroundAttention = groundAttention
		}
	}

	if *freezeText && (!isTextData(*dataSpec) || *resume) {
		return fmt.Errorf("-freeze-text applies to a new run on captioned -data (shapes, emoji); a resumed run keeps its setting")
	}
	if *pretrainText != 0 && (!strings.HasPrefix(*dataSpec, "shapes") || strings.HasPrefix(*dataSpec, "shapes3d") || *resume || *pretrainText < 0) {
		return fmt.Errorf("-pretrain-text %d: want a count of steps ≥ 0 for a new run on -data shapes (its scenes make the hard negatives); a resumed run keeps its encoder", *pretrainText)
	}
	// -pretrain-text freezes the encoder unless -freeze-text=false says
	// to train it on with the U-Net.
	freezeGiven := false
	fs.Visit(func(f *flag.Flag) { freezeGiven = freezeGiven || f.Name == "freeze-text" })
	tc.FreezeText = *freezeText || (*pretrainText > 0 && !freezeGiven)
	tc.PretrainText = *pretrainText
	if *groundText != 0 && (!strings.HasPrefix(*dataSpec, "shapes") || strings.HasPrefix(*dataSpec, "shapes3d") || *resume || tc.FreezeText || !(*groundText > 0 && *groundText <= 100)) {
		return fmt.Errorf("-ground-text %g: want a weight 0 … 100 for a new run on -data shapes (its scenes say where each object is) whose text encoder trains; a resumed run keeps its setting", *groundText)
	}
	tc.GroundText = *groundText
	if *groundAttention != 0 && (!strings.HasPrefix(*dataSpec, "shapes") || strings.HasPrefix(*dataSpec, "shapes3d") || !(*groundAttention > 0 && *groundAttention <= 100)) {
		return fmt.Errorf("-ground-attention %g: want a weight 0 … 100 for a run on -data shapes (its scenes give each object's mask)", *groundAttention)
	}
	tc.GroundAttention = *groundAttention
	if isVolumeData(*dataSpec) {
		switch {
		case *size != 0 || *dropout >= 0 || *textConfig != "":
			return fmt.Errorf("-size, -dropout and -text-config do not apply to volumes")
		}
		if !flagSet(fs, "time") {
			*budget = defaultVolumeTime
		}
		volumeDefaults(&tc, func(name string) bool { return flagSet(fs, name) })
		return trainVolumes(volumeRun{spec: *dataSpec, config: *config, tc: tc, device: devSpec, resume: changes, sampleSteps: *sampleSteps,
			loop: loopSettings{out: *out, start: start, budget: *budget, timed: timed && *budget > 0, ckptEvery: *ckptEvery, sampleEvery: *sampleEvery}})
	}
	if isTextData(*dataSpec) {
		switch {
		case tc.HFlip:
			return fmt.Errorf("-hflip: flipping would contradict the captions' left and right")
		case *size != 0 || *dropout >= 0:
			return fmt.Errorf("-size and -dropout do not apply to -data shapes")
		}
		if !flagSet(fs, "time") {
			*budget = defaultTextTime
		}
		if !flagSet(fs, "batch") {
			tc.Batch = defaultTextBatch
		}
		if !flagSet(fs, "objective") {
			tc.Objective = defaultTextObjective
		}
		return trainText(textRun{spec: *dataSpec, config: *config, textConfig: *textConfig, tc: tc, device: devSpec, resume: changes, sampleSteps: *sampleSteps,
			loop: loopSettings{out: *out, start: start, budget: *budget, timed: timed && *budget > 0, ckptEvery: *ckptEvery, sampleEvery: *sampleEvery}})
	}
	if *textConfig != "" {
		return fmt.Errorf("-text-config applies to captioned -data (shapes, emoji) only")
	}
	var cfg nn.UNet2DConfig
	var err error
	if *config == "" {
		cfg, err = nn.ParseUNet2DConfig("built-in tiny-mnist config", tinyMNISTConfig)
	} else {
		cfg, err = nn.LoadUNet2DConfig(*config)
	}
	if err != nil {
		return err
	}
	if len(cfg.Ignored) > 0 {
		fmt.Fprintf(os.Stderr, "note: %s: unknown keys ignored: %s\n", *config, strings.Join(cfg.Ignored, ", "))
	}
	if *dropout >= 0 {
		cfg.Dropout = *dropout
	}
	ds, err := loadData("-data", *dataSpec, cfg, *size)
	if err != nil {
		return err
	}
	dev, err := pickDevice(devSpec)
	if err != nil {
		return err
	}
	// A training step allocates its activations and gradients afresh and
	// drops them all at its end; with Go's default GOGC=100 the heap grows to
	// twice that before a collection. GOGC=15 measured the same speed within
	// the machine's noise and peak RSS 1268–1290 MiB instead of 2146 MiB
	// (GOGC=100) and 1327–1367 MiB (GOGC=25) on the ddpm-cifar10-32 step at
	// batch 8 (bench/RESULTS.md). An explicit GOGC or GOMEMLIMIT wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(15)
	}
	ckpt := filepath.Join(*out, "checkpoint")
	var tr *ddpm.Trainer
	if *resume {
		if tr, err = ddpm.Resume(dev, ckpt, ds, *changes); err != nil {
			return err
		}
	} else {
		if tr, err = ddpm.NewTrainer(dev, cfg, tc, ds); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	c, h, w := ds.Shape()
	fmt.Fprintf(os.Stderr, "training %d-parameter U-Net on %d images (%dx%dx%d, %d classes), %d steps of batch %d, %s schedule, %s objective, device %s\n",
		tr.Model.NumParams(), ds.Len(), c, h, w, len(tr.Classes), tr.Config.Steps, tr.Config.Batch, tr.Schedule.Name, tr.Config.Objective, dev.Name())
	run := trainRun{step: tr.TrainStep, save: tr.Save, done: &tr.Step, total: &tr.Config.Steps, losses: &tr.Losses,
		grid: func(path string) error { return previewGrid(tr, path, *sampleSteps) }}
	return run.loop(loopSettings{out: *out, start: start, budget: *budget, timed: timed, ckptEvery: *ckptEvery, sampleEvery: *sampleEvery})
}

// trainRun is what the training loop drives: a trainer of this engine's
// U-Nets (ddpm.Trainer) or of text-to-image pipelines (pipeline.Trainer).
type trainRun struct {
	step   func() (ddpm.StepInfo, error)
	save   func(dir string) error
	done   *int // steps done
	total  *int // the planned total (the time budget sets it)
	losses *[]float32
	grid   func(path string) error // the sample grid
}

// loopSettings are the loop's flags.
type loopSettings struct {
	out                    string
	start                  time.Time
	budget                 time.Duration
	timed                  bool
	ckptEvery, sampleEvery int
}

// loop trains to the total (or the time budget) with a progress bar,
// checkpoints, loss plots and sample grids, then saves, plots and writes
// OUT/samples.png.
func (r trainRun) loop(o loopSettings) error {
	ckpt := filepath.Join(o.out, "checkpoint")
	bar := newProgress(os.Stderr, *r.done, *r.total, isTerminal(os.Stderr))
	var clock *stepBudget
	if o.timed {
		clock = newStepBudget(o.start, o.budget, *r.done)
		*r.total = *r.done + *r.total // until the speed is known
		bar.total = *r.total
	}
	for *r.done < *r.total {
		info, err := r.step()
		if err != nil {
			bar.finish()
			if errors.Is(err, ddpm.ErrNonFinite) {
				return fmt.Errorf("%w\ntraining stopped; the last good checkpoint in %s is untouched", err, ckpt)
			}
			return err
		}
		if clock != nil {
			if steps, ok := clock.after(*r.done); ok {
				switch {
				case clock.announce:
					bar.finish()
					fmt.Fprintf(os.Stderr, "time budget %s: %d steps at %.2f steps/s (give -steps for a fixed count)\n", o.budget, steps, clock.rate)
					clock.announce = false
				case steps < *r.total:
					bar.finish()
					fmt.Fprintf(os.Stderr, "note: the machine slowed down; the time budget ends training at step %d of %d\n", steps, *r.total)
				default:
					bar.finish()
					fmt.Fprintf(os.Stderr, "note: %.2f steps/s on average now; the time budget allows %d steps (was %d)\n", clock.rate, steps, *r.total)
				}
				*r.total, bar.total = steps, steps
			}
		}
		bar.update(info.Step, fmt.Sprintf("loss %.4f", info.Loss), info.ImagesPer, false)
		if o.ckptEvery > 0 && *r.done%o.ckptEvery == 0 && *r.done < *r.total {
			if err := r.save(ckpt); err != nil {
				return err
			}
			if err := lossPlot(filepath.Join(o.out, "loss.png"), *r.losses); err != nil {
				return err
			}
		}
		if o.sampleEvery > 0 && *r.done%o.sampleEvery == 0 {
			if err := os.MkdirAll(filepath.Join(o.out, "samples"), 0o755); err != nil {
				return err
			}
			if err := r.grid(filepath.Join(o.out, "samples", fmt.Sprintf("step_%06d.png", *r.done))); err != nil {
				return err
			}
		}
	}
	bar.finish()
	if err := r.save(ckpt); err != nil {
		return err
	}
	if err := lossPlot(filepath.Join(o.out, "loss.png"), *r.losses); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "trained to step %d in %s; sampling the grid …\n", *r.done, time.Since(o.start).Round(time.Second))
	if err := r.grid(filepath.Join(o.out, "samples.png")); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s, %s and %s (total %s)\n", ckpt, filepath.Join(o.out, "loss.png"),
		filepath.Join(o.out, "samples.png"), time.Since(o.start).Round(time.Second))
	return nil
}

// loadData parses a data spec given with flag (-data, -real).
func loadData(flag, spec string, cfg nn.UNet2DConfig, size int) (data.Dataset, error) {
	kind, arg, _ := strings.Cut(spec, ":")
	switch kind {
	case "embedded":
		return data.Embedded()
	case "idx":
		images, labels, _ := strings.Cut(arg, ",")
		if images == "" {
			return nil, fmt.Errorf("%s idx:IMAGES[,LABELS]: no image file given", flag)
		}
		return data.LoadIDX(images, labels, nil)
	case "folder":
		if size == 0 {
			h, _, ok := cfg.SampleHW()
			if !ok {
				return nil, fmt.Errorf("-size: the config has no sample_size, give the image size")
			}
			size = h
		}
		return data.LoadFolder(arg, size, cfg.InChannels)
	}
	return nil, fmt.Errorf("%s %q: want embedded, idx:IMAGES[,LABELS] or folder:DIR", flag, spec)
}

// previewGrid samples the EMA model: two images per class (or 16 without
// classes) with diffuse sample's defaults (sampler, guidance) and x̂_0 clipped to the data range.
func previewGrid(tr *ddpm.Trainer, path string, steps int) error {
	c, h, w := tr.Data.Shape()
	var labels []int64
	n, cols := 16, 4
	if tr.Conditional() {
		cols = len(tr.Classes)
		for range 2 {
			for k := range tr.Classes {
				labels = append(labels, int64(k))
			}
		}
		n = len(labels)
	}
	ema, ok := tr.EMA.(*nn.UNet2D)
	if !ok {
		return fmt.Errorf("the image preview needs a 2-D U-Net")
	}
	pix, err := sampleImages(ema, tr.Schedule, tr.Objective, sampleSpec{sampler: defaultSampler, steps: steps, n: n,
		seed: 0, labels: labels, null: tr.NullClass(), guidance: defaultGuidance, clip: 1}, nil)
	if err != nil {
		return err
	}
	prov := newProvenance("train-preview")
	prov.Model, prov.ModelHash, prov.Sampler, prov.Steps, prov.Guidance, prov.Images = "training step "+strconv.Itoa(tr.Step), "in training", defaultSampler, steps, defaultGuidance, n
	on, off, none := "on", "off", "none"
	return writeImage(path, scaleUp(grid(pix, n, c, h, w, cols), 2), parametersText(prov), prov,
		outputFlags{policy: &off, checker: &none, watermark: &on, noMeta: new(bool)})
}

// isTerminal reports whether f is a character device (a terminal), for the progress bar.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
