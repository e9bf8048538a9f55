// Command trainjudge trains the Fashion-MNIST judge of package features (the
// feature network behind FD-FMNIST and conditional accuracy) with this
// engine, on the full Fashion-MNIST training set from Debian's
// dataset-fashion-mnist, and writes its weights as F16 safetensors:
//
//	apt-get install dataset-fashion-mnist
//	go run ./cmd/trainjudge            # writes features/weights/fmnist-judge-v1.safetensors
//
// It trains with AdamW, a cosine learning-rate decay after a short warm-up,
// random horizontal flips and shifts of up to 2 pixels, and dropout before
// the last layer; it prints the test accuracy of the F32 weights after each
// epoch and of the F16 weights it saves at the end. The metadata of the file
// records the accuracy, the command and the settings.
//
// With -shapes3d it trains the 3-D shape judge of package eval instead, on
// fresh procedural volumes (data.Shapes3D, nothing to download), and tests
// it on the held-out split:
//
//	go run ./cmd/trainjudge -shapes3d   # writes eval/weights/shapes3d-judge-v1.safetensors
package main

import (
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/eval"
	"github.com/godiffuse/godiffuse/features"
	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/safetensors"
	"github.com/godiffuse/godiffuse/tensor"
)

func main() {
	src := flag.String("src", "/usr/share/datasets/fashion-mnist", "folder with Fashion-MNIST's gzipped IDX files")
	out := flag.String("out", "features/weights/fmnist-judge-v1.safetensors", "output weights")
	epochs := flag.Int("epochs", 6, "passes over the 60,000 training images")
	batch := flag.Int("batch", 128, "images per step")
	lr := flag.Float64("lr", 2e-3, "peak learning rate")
	seed := flag.Uint64("seed", 1, "seed of the initialisation, the order and the augmentation")
	shapes3d := flag.Bool("shapes3d", false, "train the 3-D shape judge (eval.Shape3DJudge) instead; -out defaults to eval/weights/shapes3d-judge-v1.safetensors")
	steps := flag.Int("steps", 800, "with -shapes3d: steps (a fresh batch of volumes each)")
	flag.Parse()
	if *shapes3d {
		o := *out
		if !flagGiven("out") {
			o = "eval/weights/shapes3d-judge-v1.safetensors"
		}
		if err := runShapes3D(o, *steps, min(*batch, 32), *lr, *seed); err != nil {
			log.Fatal(err)
		}
		return
	}
	if err := run(*src, *out, *epochs, *batch, *lr, *seed); err != nil {
		log.Fatal(err)
	}
}

type set struct {
	x      []float32 // N×784 in [-1, 1]
	labels []int
}

func load(src, prefix string) (*set, error) {
	ds, err := data.LoadIDX(filepath.Join(src, prefix+"-images-idx3-ubyte.gz"), filepath.Join(src, prefix+"-labels-idx1-ubyte.gz"), data.FashionMNISTClasses)
	if err != nil {
		return nil, err
	}
	s := &set{x: make([]float32, ds.Len()*784), labels: make([]int, ds.Len())}
	for i := range ds.Len() {
		s.labels[i] = ds.Image(i, s.x[i*784:(i+1)*784])
	}
	return s, nil
}

// augment copies image src into dst, flipped horizontally when flip is set
// and shifted by (dy, dx) with the background (-1) filling in.
func augment(dst, src []float32, flip bool, dy, dx int) {
	for y := range 28 {
		for x := range 28 {
			sy, sx := y-dy, x-dx
			if flip {
				sx = 27 - sx
			}
			v := float32(-1)
			if sy >= 0 && sy < 28 && sx >= 0 && sx < 28 {
				v = src[sy*28+sx]
			}
			dst[y*28+x] = v
		}
	}
}

// crossEntropy is the mean of −log softmax(logits)[label].
func crossEntropy(dev tensor.Device, logits *tensor.Tensor, labels []int) *tensor.Tensor {
	n := len(labels)
	onehot := make([]float32, n*10)
	for i, l := range labels {
		onehot[i*10+l] = 1
	}
	logp := tensor.Log(tensor.Clamp(tensor.Softmax(logits), 1e-30, 1))
	return tensor.Scale(tensor.Sum(tensor.Mul(logp, tensor.FromFloat32(dev, onehot, n, 10))), -1/float32(n))
}

func accuracy(j *features.Judge, s *set) (float64, error) {
	_, probs, err := j.Extract(s.x, len(s.labels), 1, 28, 28)
	if err != nil {
		return 0, err
	}
	right := 0
	for i, l := range s.labels {
		best := 0
		for k := 1; k < 10; k++ {
			if probs[i*10+k] > probs[i*10+best] {
				best = k
			}
		}
		if best == l {
			right++
		}
	}
	return float64(right) / float64(len(s.labels)), nil
}

func run(src, out string, epochs, batch int, peak float64, seed uint64) error {
	train, err := load(src, "train")
	if err != nil {
		return err
	}
	test, err := load(src, "t10k")
	if err != nil {
		return err
	}
	dev := kernels.CPU()
	j := features.NewJudge(dev, seed)
	var params []nn.Param
	names, ts := j.Tensors()
	for i := range names {
		params = append(params, nn.Param{Name: names[i], T: ts[i]})
	}
	opt := nn.NewAdamW(params, nn.AdamConfig{LR: peak, WeightDecay: 1e-4})
	r := rand.New(rand.NewPCG(seed, 2))
	n := len(train.labels)
	perEpoch := n / batch
	total := epochs * perEpoch
	const warmup = 100
	xb := make([]float32, batch*784)
	lb := make([]int, batch)
	start := time.Now()
	step := 0
	for e := range epochs {
		order := r.Perm(n)
		var lossSum float64
		for s := range perEpoch {
			for i := range batch {
				k := order[s*batch+i]
				augment(xb[i*784:(i+1)*784], train.x[k*784:(k+1)*784], r.IntN(2) == 1, r.IntN(5)-2, r.IntN(5)-2)
				lb[i] = train.labels[k]
			}
			step++
			lr := peak * 0.5 * (1 + math.Cos(math.Pi*float64(step)/float64(total)))
			if step < warmup {
				lr = peak * float64(step) / warmup
			}
			opt.SetLR(lr)
			var loss float32
			err := tensor.Catch(func() {
				_, logits := j.Forward(tensor.FromFloat32(dev, xb, batch, 1, 28, 28), 0.3, seed<<32+uint64(step))
				l := crossEntropy(dev, logits, lb)
				opt.ZeroGrad()
				l.Backward()
				loss, _ = l.Item()
			})
			if err != nil {
				return err
			}
			if err := opt.Step(); err != nil {
				return err
			}
			lossSum += float64(loss)
		}
		acc, err := accuracy(j, test)
		if err != nil {
			return err
		}
		fmt.Printf("epoch %d/%d: train loss %.4f, test accuracy %.2f %% (%s)\n", e+1, epochs, lossSum/float64(perEpoch), 100*acc, time.Since(start).Round(time.Second))
	}
	meta := map[string]string{
		"model": features.JudgeName, "trained_by": "go run ./cmd/trainjudge " + strings.Join(os.Args[1:], " "),
		"data": "Fashion-MNIST train (60,000), Debian dataset-fashion-mnist", "epochs": strconv.Itoa(epochs),
		"batch": strconv.Itoa(batch), "lr": strconv.FormatFloat(peak, 'g', -1, 64), "seed": strconv.FormatUint(seed, 10),
	}
	if err := j.Save(out, meta); err != nil {
		return err
	}
	st, err := safetensors.Read(out)
	if err != nil {
		return err
	}
	back := features.NewJudge(dev, 0)
	if err := back.Load(st); err != nil {
		return err
	}
	acc, err := accuracy(back, test)
	if err != nil {
		return err
	}
	meta["test_accuracy"] = strconv.FormatFloat(acc, 'f', 4, 64)
	if err := j.Save(out, meta); err != nil {
		return err
	}
	fmt.Printf("wrote %s: F16 weights, test accuracy %.2f %% on the 10,000 test images (%s in all)\n", out, 100*acc, time.Since(start).Round(time.Second))
	return nil
}

func flagGiven(name string) bool {
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

// runShapes3D trains eval.Shape3DJudge and tests it on 1,400 held-out volumes.
func runShapes3D(out string, steps, batch int, peak float64, seed uint64) error {
	dev := kernels.CPU()
	start := time.Now()
	var avg float64
	j, err := eval.TrainShape3DJudge(dev, steps, batch, peak, seed, func(step int, loss float64) {
		avg = 0.95*avg + 0.05*loss
		if step%50 == 0 {
			fmt.Printf("step %d/%d: loss %.4f (%s)\n", step, steps, avg, time.Since(start).Round(time.Second))
		}
	})
	if err != nil {
		return err
	}
	test, err := data.Shapes3D(1400, 1, "test")
	if err != nil {
		return err
	}
	vols, want := make([][]float32, test.Len()), make([]int, test.Len())
	for i := range vols {
		vols[i] = make([]float32, data.Shape3DSize*data.Shape3DSize*data.Shape3DSize)
		want[i] = test.Image(i, vols[i])
	}
	s, err := eval.JudgeVolumes(j, vols, want)
	if err != nil {
		return err
	}
	meta := map[string]string{
		"model": "shapes3d-judge-v1", "trained_by": "go run ./cmd/trainjudge " + strings.Join(os.Args[1:], " "),
		"data": "data.Shapes3D train split, a fresh draw each step", "steps": strconv.Itoa(steps), "batch": strconv.Itoa(batch),
		"lr": strconv.FormatFloat(peak, 'g', -1, 64), "seed": strconv.FormatUint(seed, 10),
		"test_accuracy": strconv.FormatFloat(s.Accuracy, 'f', 4, 64), "test_one_piece": strconv.FormatFloat(s.OnePiece, 'f', 4, 64),
	}
	if err := j.Save(out, meta); err != nil {
		return err
	}
	fmt.Printf("wrote %s: test accuracy %.2f %% on 1,400 held-out volumes (per class %.3f); %.1f %% mesh into one watertight piece (%s in all)\n",
		out, 100*s.Accuracy, s.PerClass, 100*s.OnePiece, time.Since(start).Round(time.Second))
	return nil
}
