package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/ddpm"
	"github.com/godiffuse/godiffuse/eval"
	"github.com/godiffuse/godiffuse/features"
	"github.com/godiffuse/godiffuse/internal/atomicfile"
	"github.com/godiffuse/godiffuse/metrics"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/tensor"
)

// evalReport is what diffuse eval prints and writes as JSON.
type evalReport struct {
	Features  string         `json:"features"`
	Generated evalSide       `json:"generated"`
	Real      evalSide       `json:"real"`
	Metrics   map[string]any `json:"metrics"`
	Seconds   float64        `json:"seconds"`
}

type evalSide struct {
	Source   string  `json:"source"`
	N        int     `json:"n"`
	Sampler  string  `json:"sampler,omitempty"`
	Steps    int     `json:"steps,omitempty"`
	Guidance float64 `json:"guidance,omitempty"`
	Seed     uint64  `json:"seed,omitempty"`
}

func runEval(args []string) error {
	fs := newFlags("eval", "Measures sample quality: samples N images from a checkpoint (or reads a folder of images),\n"+
		"extracts features with the Fashion-MNIST judge (default; its Fréchet distance is reported as FD-FMNIST, not FID)\n"+
		"or pytorch-fid's InceptionV3 (FID), and compares them with a real set: Fréchet distance, IS, KID,\n"+
		"precision/recall and, for class-conditional checkpoints, the share of samples judged to be the requested class.")
	ckpt := fs.String("checkpoint", "", "checkpoint folder to sample from (written by diffuse train)")
	folder := fs.String("images", "", "or: a folder of PNG/JPEG images of one size to evaluate")
	feat := fs.String("features", "judge", "feature network: judge (28×28 grey Fashion-MNIST) or inception:WEIGHTS.safetensors")
	realSpec := fs.String("real", "embedded", "real images: embedded | idx:IMAGES[,LABELS] | folder:DIR | stats:FILE")
	realN := fs.Int("real-n", 0, "use at most this many real images (0: all)")
	saveStats := fs.String("save-stats", "", "write the real set's feature statistics to this file (for -real stats:FILE)")
	noEMA := fs.Bool("no-ema", false, "sample with the raw weights instead of the EMA ones")
	spec := sampleSpec{}
	samplerFlags(fs, &spec)
	fs.IntVar(&spec.n, "n", 1000, "images to sample from -checkpoint")
	batch := fs.Int("batch", 200, "images per sampling batch")
	splits := fs.Int("is-splits", 10, "splits of the Inception Score")
	kidSubsets := fs.Int("kid-subsets", 100, "KID subsets")
	kidSize := fs.Int("kid-size", 1000, "KID subset size (capped at the smaller set)")
	prK := fs.Int("pr-k", 3, "k of the k-NN manifolds of precision/recall (0: skip)")
	noise := fs.Bool("noise-baseline", false, "also report the Fréchet distance of pure noise (clipped N(0,1) images) to the real set")
	jsonPath := fs.String("json", "", "also write the report as JSON to this file")
	devSpec := deviceFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case (*ckpt == "") == (*folder == ""):
		return fmt.Errorf("give exactly one of -checkpoint and -images")
	case *ckpt != "" && (spec.n < 2 || spec.n > maxSampleImages):
		return fmt.Errorf("-n: want 2 … %d, have %d", maxSampleImages, spec.n)
	case *batch < 1 || *batch > 4096:
		return fmt.Errorf("-batch: want 1 … 4096, have %d", *batch)
	case *realN < 0:
		return fmt.Errorf("-real-n: want ≥ 0, have %d", *realN)
	case *splits < 1 || *splits > 1000:
		return fmt.Errorf("-is-splits: want 1 … 1000, have %d", *splits)
	case *kidSubsets < 0 || *kidSubsets > 100000:
		return fmt.Errorf("-kid-subsets: want 0 … 100000, have %d", *kidSubsets)
	case *kidSize < 2:
		return fmt.Errorf("-kid-size: want ≥ 2, have %d", *kidSize)
	case *prK < 0 || *prK > 1000:
		return fmt.Errorf("-pr-k: want 0 … 1000 (0: skip), have %d", *prK)
	case *saveStats != "" && strings.HasPrefix(*realSpec, "stats:"):
		return fmt.Errorf("-save-stats: the real side is already a statistics file")
	}
	if err := spec.check(); err != nil {
		return err
	}
	if err := checkOutputs("-json", *jsonPath, "-save-stats", *saveStats); err != nil {
		return err
	}
	start := time.Now()
	dev, err := pickDevice(devSpec)
	if err != nil {
		return err
	}
	ext, err := loadExtractor(*feat, dev)
	if err != nil {
		return err
	}
	rep := &evalReport{Features: ext.Name(), Metrics: map[string]any{}}
	dim := "FD"
	if ext.Name() == features.InceptionName {
		dim = "FID"
	} else if ext.Name() == features.JudgeName {
		dim = "FD-FMNIST"
	}

	// A folder of generated images is read (and a checkpoint loaded) and
	// checked before any real features are computed; sampling comes after.
	var gen *eval.Images
	var model *evalModel
	if *ckpt != "" {
		if model, err = loadForEval(dev, *ckpt, !*noEMA, ext); err != nil {
			return err
		}
	}
	if *folder != "" {
		ds, err := data.LoadFolderAsIs(*folder, channelsFor(ext))
		if err != nil {
			return fmt.Errorf("-images: %w", err)
		}
		gen = datasetImages(ds, 0)
		if err := ext.Accepts(gen.C, gen.H, gen.W); err != nil {
			return fmt.Errorf("-images %s: %w", *folder, err)
		}
		rep.Generated = evalSide{Source: *folder, N: gen.N}
	}

	// The real side: images, or saved statistics only.
	var real eval.Real
	if path, ok := strings.CutPrefix(*realSpec, "stats:"); ok {
		if real.Stats, err = metrics.LoadStats(path); err != nil {
			return fmt.Errorf("-real: %w", err)
		}
		if real.Stats.Feature != ext.Name() {
			return fmt.Errorf("-real %s: statistics of feature network %q, but -features is %q", path, real.Stats.Feature, ext.Name())
		}
		rep.Real = evalSide{Source: *realSpec, N: real.Stats.N}
	} else {
		ds, err := loadRealSet(*realSpec, ext)
		if err != nil {
			return err
		}
		set := datasetImages(ds, *realN)
		if err := ext.Accepts(set.C, set.H, set.W); err != nil {
			return fmt.Errorf("-real %s: %w", *realSpec, err)
		}
		real.Images = set
		rep.Real = evalSide{Source: *realSpec, N: set.N}
	}

	// The generated side: sampled now, or read earlier (above).
	if gen == nil {
		if gen, err = model.sample(spec, *batch); err != nil {
			return err
		}
		rep.Generated = evalSide{Source: *ckpt, N: gen.N, Sampler: spec.sampler, Steps: spec.steps, Seed: spec.seed}
		if gen.Labels != nil {
			rep.Generated.Guidance = spec.guidance
		}
	}
	var bar *progress // one progress line per side
	var barSide string
	var barStart time.Time
	res, err := eval.Evaluate(ext, *gen, real, eval.EvaluateOptions{
		Options: eval.Options{ISSplits: *splits, KIDSubsets: *kidSubsets, KIDSize: *kidSize, PRK: *prK, Seed: spec.seed,
			ClassAccuracy: ext.Name() == features.JudgeName},
		NoiseBaseline: *noise,
		Progress: func(side string, done, total int) {
			if side != barSide {
				if bar != nil {
					bar.finish()
				}
				bar, barSide, barStart = newProgress(os.Stderr, 0, total, isTerminal(os.Stderr)), side, time.Now()
			}
			bar.update(done, "features of "+side+" images", float64(done)/time.Since(barStart).Seconds(), done == total)
		}})
	if bar != nil {
		bar.finish()
	}
	if err != nil {
		return err
	}
	if *saveStats != "" && real.Images != nil {
		if err := metrics.SaveStats(*saveStats, res.RealStats); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "wrote", *saveStats)
	}
	for k, v := range res.Metrics {
		switch k {
		case "FD":
			k = dim
		case "FD_noise":
			k = dim + "_noise"
		}
		rep.Metrics[k] = v
	}
	rep.Seconds = math.Round(time.Since(start).Seconds()*10) / 10
	printReport(os.Stdout, rep)
	if *jsonPath != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := atomicfile.Write(*jsonPath, append(b, '\n')); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "wrote", *jsonPath)
	}
	return nil
}

func loadExtractor(spec string, dev tensor.Device) (features.Extractor, error) {
	if spec == "judge" {
		return features.LoadJudge(dev)
	}
	if path, ok := strings.CutPrefix(spec, "inception:"); ok && path != "" {
		m, err := features.LoadInception(path, dev)
		if err != nil {
			return nil, fmt.Errorf("-features: %w", err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("-features %q: want judge or inception:WEIGHTS.safetensors", spec)
}

func loadRealSet(spec string, ext features.Extractor) (data.Dataset, error) {
	if dir, ok := strings.CutPrefix(spec, "folder:"); ok {
		return data.LoadFolderAsIs(dir, channelsFor(ext))
	}
	if strings.HasPrefix(spec, "embedded") || strings.HasPrefix(spec, "idx:") {
		return loadData("-real", spec, nn.UNet2DConfig{}, 0)
	}
	return nil, fmt.Errorf("-real %q: want embedded, idx:IMAGES[,LABELS], folder:DIR or stats:FILE", spec)
}

// channelsFor is what a folder's images are read as: grey for the judge,
// RGB for Inception.
func channelsFor(ext features.Extractor) int {
	if ext.Name() == features.JudgeName {
		return 1
	}
	return 3
}

func datasetImages(ds data.Dataset, limit int) *eval.Images {
	c, h, w := ds.Shape()
	n := ds.Len()
	if limit > 0 {
		n = min(n, limit)
	}
	s := &eval.Images{Pix: make([]float32, n*c*h*w), N: n, C: c, H: h, W: w}
	per := c * h * w
	for i := range n {
		ds.Image(i, s.Pix[i*per:(i+1)*per])
	}
	return s
}

// evalModel is a checkpoint loaded for sampling.
type evalModel struct {
	m       *nn.UNet2D
	info    ddpm.CheckpointInfo
	c, h, w int
}

// loadForEval loads a checkpoint and checks that the feature network takes
// its images (and, for the judge, its classes).
func loadForEval(dev tensor.Device, dir string, ema bool, ext features.Extractor) (*evalModel, error) {
	m, info, err := ddpm.LoadCheckpoint(dev, dir, ema)
	if err != nil {
		return nil, err
	}
	h, w, _ := m.Config.SampleHW()
	e := &evalModel{m: m, info: info, c: m.Config.InChannels, h: h, w: w}
	if err := ext.Accepts(e.c, e.h, e.w); err != nil {
		return nil, fmt.Errorf("-checkpoint %s: %w", dir, err)
	}
	if len(info.Classes) > 0 && ext.Name() == features.JudgeName && len(info.Classes) != 10 {
		return nil, fmt.Errorf("-checkpoint %s: %d classes; the Fashion-MNIST judge knows 10", dir, len(info.Classes))
	}
	return e, nil
}

// sample draws spec.n images, batch at a time, cycling through the classes
// of a class-conditional model; batch i uses seed spec.seed + i·batch.
func (e *evalModel) sample(spec sampleSpec, batch int) (*eval.Images, error) {
	set := &eval.Images{N: spec.n, C: e.c, H: e.h, W: e.w}
	conditional := len(e.info.Classes) > 0
	bar := newProgress(os.Stderr, 0, spec.n, isTerminal(os.Stderr))
	start := time.Now()
	for i := 0; i < spec.n; i += batch {
		k := min(batch, spec.n-i)
		s := spec
		s.n, s.seed, s.clip, s.labels = k, spec.seed+uint64(i), 1, nil
		if conditional {
			s.null = e.info.NullClass()
			for j := range k {
				s.labels = append(s.labels, int64((i+j)%len(e.info.Classes)))
			}
		}
		pix, err := sampleImages(e.m, e.info.Schedule, e.info.Objective, s, nil)
		if err != nil {
			return nil, err
		}
		set.Pix = append(set.Pix, pix...)
		set.Labels = append(set.Labels, s.labels...)
		bar.update(i+k, "sampling", float64(i+k)/time.Since(start).Seconds(), i+k == spec.n)
	}
	bar.finish()
	if !conditional {
		set.Labels = nil
	}
	return set, nil
}

func printReport(w io.Writer, r *evalReport) {
	fmt.Fprintf(w, "features:  %s\n", r.Features)
	g := r.Generated
	fmt.Fprintf(w, "generated: %d images from %s", g.N, g.Source)
	if g.Sampler != "" {
		fmt.Fprintf(w, " (%s, %d steps, guidance %g, seed %d)", g.Sampler, g.Steps, g.Guidance, g.Seed)
	}
	fmt.Fprintf(w, "\nreal:      %d images from %s\n\n", r.Real.N, r.Real.Source)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "metric\tvalue\t")
	keys := make([]string, 0, len(r.Metrics))
	for k := range r.Metrics {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%.6g\t\n", k, r.Metrics[k])
	}
	tw.Flush()
	fmt.Fprintf(w, "\n(%.1f s)\n", r.Seconds)
}
