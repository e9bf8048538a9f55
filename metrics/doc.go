// Package metrics measures sample quality the way papers do, in float64:
//
//   - Fréchet distance between Gaussian fits of two feature sets (FID when the
//     features are pytorch-fid's InceptionV3 pool3; FD-FMNIST with the built-in
//     Fashion-MNIST judge),
//   - Inception Score from class probabilities, over splits,
//   - KID, the unbiased squared MMD with the cubic polynomial kernel, over
//     random subsets,
//   - precision and recall on k-nearest-neighbour manifolds (Kynkäänniemi et
//     al., 2019).
//
// Feature extraction lives in package features; this package only sees
// matrices of features (one row per image). Statistics of the real side can
// be saved once (SaveStats) and loaded for every later comparison; the file
// records which feature network made them so a mismatch is an error, not a
// silently meaningless number.
package metrics
