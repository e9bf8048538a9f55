// Package features holds the feature networks behind the quality metrics of
// package metrics:
//
//   - Judge, a small CNN classifier of 28×28 grey Fashion-MNIST images trained
//     with this engine (weights embedded, see cmd/trainjudge). Its penultimate
//     layer gives "FD-FMNIST" (a Fréchet distance in its features — not FID),
//     its class probabilities an IS-style score and the conditional accuracy
//     of class-conditional samples.
//   - Inception, pytorch-fid's FID InceptionV3 (FIDInceptionA/C/E blocks,
//     pool3 features and the 1008-way logits), loaded from a safetensors file
//     the user converts from pt_inception-2015-12-05. It is what FID, IS and
//     KID are defined with in papers; the weights cannot be shipped, and the
//     architecture is proven here by parity with a seeded PyTorch fixture.
//
// Every Extractor takes images in the engine's convention: N×C×H×W float32
// in [-1, 1], as samplers produce and data.Dataset returns.
package features

import "fmt"

// Extractor turns images into features and class probabilities.
type Extractor interface {
	// Name identifies the network and layer; statistics files record it so
	// that features of two networks are never compared.
	Name() string
	// FeatureDim and NumClasses size the outputs.
	FeatureDim() int
	NumClasses() int
	// Accepts reports whether images of this shape can be fed (Inception
	// resizes anything; the judge wants 1×28×28).
	Accepts(c, h, w int) error
	// Extract returns N×FeatureDim features and N×NumClasses probabilities
	// for n images (N×C×H×W in [-1, 1]).
	Extract(images []float32, n, c, h, w int) (feats, probs []float32, err error)
}

func checkImages(images []float32, n, c, h, w int) error {
	if n < 0 || c <= 0 || h <= 0 || w <= 0 || len(images) != n*c*h*w {
		return fmt.Errorf("features: %d values for %d images of %d×%d×%d", len(images), n, c, h, w)
	}
	return nil
}
