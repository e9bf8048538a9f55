// Package eval measures generated images against real ones from the
// features of any features.Extractor: the Fréchet distance (FD-FMNIST with
// the judge, FID with InceptionV3), the Inception Score, KID,
// precision/recall and, for class-conditional samples, the share the
// extractor's classifier puts in the requested class. `diffuse eval` is
// its command line.
package eval

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/godiffuse/godiffuse/features"
	"github.com/godiffuse/godiffuse/metrics"
)

// Set is one side's features.
type Set struct {
	Feats  *metrics.Features // N×D features
	Probs  *metrics.Features // N×K class probabilities
	Labels []int64           // the classes asked for, for generated images (nil: none)
}

// Batch is how many images Extract feeds the network at a time.
const Batch = 256

// Extract runs ext over n images (n×c×h×w values in [-1, 1]), Batch at a
// time; progress (may be nil) sees how many are done.
func Extract(ext features.Extractor, pix []float32, n, c, h, w int, progress func(done int)) (Set, error) {
	if err := ext.Accepts(c, h, w); err != nil {
		return Set{}, err
	}
	if len(pix) != n*c*h*w {
		return Set{}, fmt.Errorf("eval: %d values for %d images of %d×%d×%d", len(pix), n, c, h, w)
	}
	per := c * h * w
	var fv, pv []float32
	for i := 0; i < n; i += Batch {
		k := min(Batch, n-i)
		f, p, err := ext.Extract(pix[i*per:(i+k)*per], k, c, h, w)
		if err != nil {
			return Set{}, err
		}
		fv, pv = append(fv, f...), append(pv, p...)
		if progress != nil {
			progress(i + k)
		}
	}
	feats, err := metrics.NewFeatures(n, ext.FeatureDim(), fv)
	if err != nil {
		return Set{}, err
	}
	probs, err := metrics.NewFeatures(n, ext.NumClasses(), pv)
	return Set{Feats: feats, Probs: probs}, err
}

// Options tune Metrics.
type Options struct {
	ISSplits   int    // splits of the Inception Score (capped at the image count)
	KIDSubsets int    // KID subsets
	KIDSize    int    // KID subset size (capped at the smaller side)
	PRK        int    // k of precision/recall's k-NN manifolds (0: skip)
	Seed       uint64 // KID's subset draws
	// ClassAccuracy scores gen.Labels against the extractor's classes (the
	// judge's are Fashion-MNIST's).
	ClassAccuracy bool
}

// Metrics compares the generated set with the real side: its statistics
// (the Fréchet distance; always) and its features (KID and
// precision/recall; nil skips them). Keys: FD, IS, IS_std, KID, KID_std,
// precision, recall, class_accuracy.
func Metrics(gen Set, feature string, real *metrics.Stats, realFeats *metrics.Features, o Options) (map[string]float64, error) {
	if gen.Feats == nil || gen.Feats.N < 2 {
		return nil, fmt.Errorf("eval: need at least 2 generated images")
	}
	stats, err := metrics.ComputeStats(feature, gen.Feats)
	if err != nil {
		return nil, err
	}
	if stats.Dim() != real.Dim() {
		return nil, fmt.Errorf("eval: features of %d and %d dimensions", stats.Dim(), real.Dim())
	}
	out := map[string]float64{}
	if out["FD"], err = metrics.FrechetDistance(stats, real); err != nil {
		return nil, err
	}
	if out["IS"], out["IS_std"], err = metrics.InceptionScore(gen.Probs, max(1, min(o.ISSplits, gen.Feats.N))); err != nil {
		return nil, err
	}
	if realFeats != nil {
		size := min(o.KIDSize, realFeats.N, gen.Feats.N)
		if out["KID"], out["KID_std"], err = metrics.KID(gen.Feats, realFeats, metrics.KIDOptions{Subsets: o.KIDSubsets, SubsetSize: size, Seed: o.Seed}); err != nil {
			return nil, err
		}
		if o.PRK > 0 {
			if out["precision"], out["recall"], err = metrics.PrecisionRecall(realFeats, gen.Feats, o.PRK); err != nil {
				return nil, err
			}
		}
	}
	if o.ClassAccuracy && gen.Labels != nil {
		right := 0
		for i, want := range gen.Labels {
			row := gen.Probs.Row(i)
			if int64(slices.Index(row, slices.Max(row))) == want {
				right++
			}
		}
		out["class_accuracy"] = float64(right) / float64(len(gen.Labels))
	}
	return out, nil
}

// FrechetToNoise is the Fréchet distance of n clipped N(0, 1) images
// (n×c×h×w, from seed) to the real statistics: the baseline a generator
// must beat.
func FrechetToNoise(ext features.Extractor, noise []float32, n, c, h, w int, real *metrics.Stats) (float64, error) {
	s, err := Extract(ext, noise, n, c, h, w, nil)
	if err != nil {
		return 0, err
	}
	ns, err := metrics.ComputeStats(ext.Name(), s.Feats)
	if err != nil {
		return 0, err
	}
	return metrics.FrechetDistance(ns, real)
}

// Images is a set of N images, N×C×H×W values in [-1, 1]; Labels are the
// classes generated images were asked for (nil: none).
type Images struct {
	Pix        []float32
	N, C, H, W int
	Labels     []int64
}

// Real is what generated images are compared with: images (every metric),
// or saved statistics alone (then KID and precision/recall are skipped).
type Real struct {
	Images *Images
	Stats  *metrics.Stats
}

// Report is what Evaluate measured.
type Report struct {
	// Metrics has the keys of Metrics, and FD_noise with NoiseBaseline.
	Metrics map[string]float64
	// RealStats are the real side's feature statistics, to save for later
	// runs (metrics.SaveStats).
	RealStats *metrics.Stats
}

// EvaluateOptions are Options plus what Evaluate does around Metrics.
type EvaluateOptions struct {
	Options
	// NoiseBaseline also measures the Fréchet distance of as many clipped
	// N(0, 1) images as were generated (NoiseImages from Options.Seed) to
	// the real side: the baseline a generator must beat.
	NoiseBaseline bool
	// Progress (may be nil) sees feature extraction advance: side is
	// "real", "generated" or "noise".
	Progress func(side string, done, total int)
}

// Evaluate compares generated images with the real side through the
// features of ext: it extracts both sides' features (the real side's only
// when given as images) and computes Metrics. This is diffuse eval without
// the command line.
func Evaluate(ext features.Extractor, gen Images, real Real, o EvaluateOptions) (Report, error) {
	extract := func(side string, s *Images) (Set, error) {
		var progress func(int)
		if o.Progress != nil {
			progress = func(done int) { o.Progress(side, done, s.N) }
		}
		return Extract(ext, s.Pix, s.N, s.C, s.H, s.W, progress)
	}
	var rep Report
	var realFeats *metrics.Features
	switch {
	case real.Images != nil:
		rs, err := extract("real", real.Images)
		if err != nil {
			return rep, fmt.Errorf("eval: real images: %w", err)
		}
		realFeats = rs.Feats
		if rep.RealStats, err = metrics.ComputeStats(ext.Name(), realFeats); err != nil {
			return rep, fmt.Errorf("eval: real images: %w", err)
		}
	case real.Stats != nil:
		if real.Stats.Feature != ext.Name() {
			return rep, fmt.Errorf("eval: statistics of feature network %q, features of %q", real.Stats.Feature, ext.Name())
		}
		rep.RealStats = real.Stats
	default:
		return rep, fmt.Errorf("eval: no real side (images or statistics)")
	}
	if gen.N < 2 {
		return rep, fmt.Errorf("eval: %d generated image(s): need at least 2", gen.N)
	}
	gs, err := extract("generated", &gen)
	if err != nil {
		return rep, fmt.Errorf("eval: generated images: %w", err)
	}
	gs.Labels = gen.Labels
	if rep.Metrics, err = Metrics(gs, ext.Name(), rep.RealStats, realFeats, o.Options); err != nil {
		return rep, err
	}
	if o.NoiseBaseline {
		noise := NoiseImages(gen.N, gen.C, gen.H, gen.W, o.Seed)
		if rep.Metrics["FD_noise"], err = FrechetToNoise(ext, noise, gen.N, gen.C, gen.H, gen.W, rep.RealStats); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// NoiseImages draws n clipped N(0, 1) images (n×c×h×w) from seed.
func NoiseImages(n, c, h, w int, seed uint64) []float32 {
	pix := make([]float32, n*c*h*w)
	r := rand.New(rand.NewPCG(seed, 0x6e6f697365))
	for i := range pix {
		pix[i] = float32(max(-1, min(1, r.NormFloat64())))
	}
	return pix
}
