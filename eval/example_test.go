package eval_test

import (
	"fmt"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/eval"
	"github.com/godiffuse/godiffuse/features"
	"github.com/godiffuse/godiffuse/kernels"
)

// Evaluating a set of images against real ones with the Fashion-MNIST judge:
// here 200 test images play the generated set (labelled with their own
// classes) and the next 400 the real one, so the class accuracy is the
// judge's own (94 %) and the distance is the small-sample bias alone (41 on
// 200 images; it falls with N).
func Example() {
	ds, err := data.LoadIDX("../features/testdata/t10k-images-idx3-ubyte.gz", "../features/testdata/t10k-labels-idx1-ubyte.gz", data.FashionMNISTClasses)
	if err != nil {
		panic(err)
	}
	images := func(from, n int) ([]float32, []int64) {
		pix := make([]float32, n*28*28)
		labels := make([]int64, n)
		for i := range n {
			labels[i] = int64(ds.Image(from+i, pix[i*784:(i+1)*784]))
		}
		return pix, labels
	}
	judge, err := features.LoadJudge(kernels.CPU())
	if err != nil {
		panic(err)
	}
	genPix, genLabels := images(0, 200)
	realPix, _ := images(200, 400)
	rep, err := eval.Evaluate(judge, eval.Images{Pix: genPix, N: 200, C: 1, H: 28, W: 28, Labels: genLabels},
		eval.Real{Images: &eval.Images{Pix: realPix, N: 400, C: 1, H: 28, W: 28}},
		eval.EvaluateOptions{Options: eval.Options{ISSplits: 10, KIDSubsets: 10, KIDSize: 100, PRK: 3, ClassAccuracy: true}})
	if err != nil {
		panic(err)
	}
	m := rep.Metrics
	fmt.Println(m["class_accuracy"] > 0.9, m["FD"] < 100, m["IS"] > 5, m["precision"] > 0.5)
	// Output: true true true true
}
