package features

import (
	"math"
	"slices"
	"testing"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/kernels"
)

// The committed judge must classify the committed slice of the Fashion-MNIST
// test set (its first 2,000 images, made with
// `go run ./data/internal/mkembed -set t10k -n 2000 -dst features/testdata`)
// with at least 90 % accuracy. cmd/trainjudge reports the accuracy on all
// 10,000 test images.
func TestJudgeAccuracy(t *testing.T) {
	j, err := LoadJudge(kernels.CPU())
	if err != nil {
		t.Fatal(err)
	}
	ds, err := data.LoadIDX("testdata/t10k-images-idx3-ubyte.gz", "testdata/t10k-labels-idx1-ubyte.gz", data.FashionMNISTClasses)
	if err != nil {
		t.Fatal(err)
	}
	n := ds.Len()
	x := make([]float32, n*784)
	labels := make([]int, n)
	for i := range n {
		labels[i] = ds.Image(i, x[i*784:(i+1)*784])
	}
	feats, probs, err := j.Extract(x, n, 1, 28, 28)
	if err != nil {
		t.Fatal(err)
	}
	if len(feats) != n*JudgeFeatureDim || len(probs) != n*10 {
		t.Fatalf("%d features and %d probabilities for %d images", len(feats), len(probs), n)
	}
	right := 0
	perClass := make([]int, 10)
	for i, l := range labels {
		row := probs[i*10 : (i+1)*10]
		if slices.Index(row, slices.Max(row)) == l {
			right++
			perClass[l]++
		}
	}
	acc := float64(right) / float64(n)
	t.Logf("judge accuracy on %d test images: %.2f %% (right per class %v)", n, 100*acc, perClass)
	if acc < 0.90 {
		t.Errorf("accuracy %.2f %% < 90 %%", 100*acc)
	}

	// An image's features do not depend on its batch (GroupNorm is per image).
	f1, _, err := j.Extract(x[5*784:6*784], 1, 1, 28, 28)
	if err != nil {
		t.Fatal(err)
	}
	for k := range f1 {
		if math.Abs(float64(f1[k]-feats[5*JudgeFeatureDim+k])) > 1e-5*(1+math.Abs(float64(f1[k]))) {
			t.Fatalf("feature %d of image 5 alone %g, in a batch %g", k, f1[k], feats[5*JudgeFeatureDim+k])
		}
	}
}

func TestJudgeRejectsOtherShapes(t *testing.T) {
	j, err := LoadJudge(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := j.Extract(make([]float32, 3*32*32), 1, 3, 32, 32); err == nil {
		t.Error("a 3×32×32 image was accepted")
	}
	if _, _, err := j.Extract(make([]float32, 100), 1, 1, 28, 28); err == nil {
		t.Error("100 values for a 28×28 image were accepted")
	}
}
