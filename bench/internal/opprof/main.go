// Command opprof times a U-Net forward pass (or, with -train, a train step:
// forward, MSE loss, backward, Adam) op by op, on one thread and on all of
// them, and prints where the time goes and how well each kind of op
// spreads over the threads — what a CPU profile cannot say (it shows where
// the cores are busy, not where one core works while the others wait).
//
//	go run ./bench/internal/opprof -config testdata/configs/tiny-mnist.json -batch 1
//	go run ./bench/internal/opprof -config testdata/configs/ddpm-cifar10-32.json -batch 8 -train -iters 4
//
// Each kind of op is timed from call to return through a wrapping device,
// so the figures include the ops' own goroutine start-up and waits.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/tensor"
)

// timed is a device that adds the wall time of every op call to its kind.
type timed struct {
	tensor.Device
	spent map[string]time.Duration
	calls map[string]int
}

func (t *timed) add(kind string, start time.Time) {
	t.spent[kind] += time.Since(start)
	t.calls[kind]++
}

func (t *timed) Fill(dst tensor.Buffer, n int, v float32) {
	defer t.add("Fill", time.Now())
	t.Device.Fill(dst, n, v)
}

func (t *timed) Copy(dst, src tensor.Strided, shape []int) {
	defer t.add("Copy", time.Now())
	t.Device.Copy(dst, src, shape)
}

func (t *timed) Unary(op tensor.UnaryOp, dst, x tensor.Buffer, n int, p tensor.UnaryParams) {
	defer t.add(fmt.Sprintf("Unary %v", op), time.Now())
	t.Device.Unary(op, dst, x, n, p)
}

func (t *timed) Binary(op tensor.BinaryOp, dst tensor.Buffer, a, b tensor.Strided, shape []int) {
	defer t.add(fmt.Sprintf("Binary %v", op), time.Now())
	t.Device.Binary(op, dst, a, b, shape)
}

func (t *timed) Reduce(op tensor.ReduceOp, dst, x tensor.Buffer, p tensor.ReduceParams) {
	defer t.add("Reduce", time.Now())
	t.Device.Reduce(op, dst, x, p)
}

func (t *timed) MatMul(c, a, b tensor.Buffer, p tensor.MatMulParams) {
	defer t.add("MatMul", time.Now())
	t.Device.MatMul(c, a, b, p)
}

func (t *timed) Conv2D(y, x, w, b tensor.Buffer, p tensor.ConvParams) {
	defer t.add(convKind("Conv2D", p), time.Now())
	t.Device.Conv2D(y, x, w, b, p)
}

func (t *timed) Norm(y, mean, rstd, x, gamma, beta tensor.Buffer, p tensor.NormParams) {
	defer t.add("Norm", time.Now())
	t.Device.Norm(y, mean, rstd, x, gamma, beta, p)
}

func (t *timed) Softmax(y, x tensor.Buffer, p tensor.SoftmaxParams) {
	defer t.add("Softmax", time.Now())
	t.Device.Softmax(y, x, p)
}

func (t *timed) Attention(o, probs, q, k, v tensor.Buffer, p tensor.AttentionParams) {
	defer t.add("Attention", time.Now())
	t.Device.Attention(o, probs, q, k, v, p)
}

func (t *timed) Upsample2x(y, x tensor.Buffer, p tensor.UpsampleParams) {
	defer t.add("Upsample2x", time.Now())
	t.Device.Upsample2x(y, x, p)
}

func (t *timed) Gather(dst, table, idx tensor.Buffer, p tensor.GatherParams) {
	defer t.add("Gather", time.Now())
	t.Device.Gather(dst, table, idx, p)
}

// convKind names a convolution by its kernel, channels and input size.
func convKind(op string, p tensor.ConvParams) string {
	kind := fmt.Sprintf("%s %dx%d %d→%d at %dx%d", op, p.KH, p.KW, p.C, p.F, p.H, p.W)
	if p.StrideH != 1 || p.StrideW != 1 {
		kind += fmt.Sprintf(" stride %d", p.StrideH)
	}
	return kind
}

// The backward ops and the optimizer (-train).

func (t *timed) UnaryBackward(op tensor.UnaryOp, dx, x, dy tensor.Buffer, n int, p tensor.UnaryParams) {
	defer t.add(fmt.Sprintf("UnaryBackward %v", op), time.Now())
	t.Device.UnaryBackward(op, dx, x, dy, n, p)
}

func (t *timed) Conv2DBackwardInput(dx, dy, w tensor.Buffer, p tensor.ConvParams) {
	defer t.add(convKind("Conv2DBackwardInput", p), time.Now())
	t.Device.Conv2DBackwardInput(dx, dy, w, p)
}

func (t *timed) Conv2DBackwardWeight(dw, db, x, dy tensor.Buffer, p tensor.ConvParams) {
	defer t.add(convKind("Conv2DBackwardWeight", p), time.Now())
	t.Device.Conv2DBackwardWeight(dw, db, x, dy, p)
}

func (t *timed) NormBackward(dx, dgamma, dbeta, dy, x, mean, rstd, gamma tensor.Buffer, p tensor.NormParams) {
	defer t.add("NormBackward", time.Now())
	t.Device.NormBackward(dx, dgamma, dbeta, dy, x, mean, rstd, gamma, p)
}

func (t *timed) SoftmaxBackward(dx, y, dy tensor.Buffer, p tensor.SoftmaxParams) {
	defer t.add("SoftmaxBackward", time.Now())
	t.Device.SoftmaxBackward(dx, y, dy, p)
}

func (t *timed) AttentionBackward(dq, dk, dv, do, q, k, v, probs tensor.Buffer, p tensor.AttentionParams) {
	defer t.add("AttentionBackward", time.Now())
	t.Device.AttentionBackward(dq, dk, dv, do, q, k, v, probs, p)
}

func (t *timed) Upsample2xBackward(dx, dy tensor.Buffer, p tensor.UpsampleParams) {
	defer t.add("Upsample2xBackward", time.Now())
	t.Device.Upsample2xBackward(dx, dy, p)
}

func (t *timed) ScatterAdd(dtable, idx, src tensor.Buffer, p tensor.GatherParams) {
	defer t.add("ScatterAdd", time.Now())
	t.Device.ScatterAdd(dtable, idx, src, p)
}

func (t *timed) AdamStep(param, grad, m, v tensor.Buffer, n int, p tensor.AdamParams) {
	defer t.add("AdamStep", time.Now())
	t.Device.AdamStep(param, grad, m, v, n, p)
}

func (t *timed) Alloc(dt tensor.DType, n int) (tensor.Buffer, error) {
	defer t.add("Alloc", time.Now())
	return t.Device.Alloc(dt, n)
}

// AllocDirty and Recycle pass the device's buffer recycling through: a
// forward whose released intermediates came back as fresh memory would time
// page faults and clearing, not the ops.
func (t *timed) AllocDirty(n int) tensor.Buffer {
	defer t.add("Alloc", time.Now())
	if d, ok := t.Device.(tensor.DirtyAllocator); ok {
		return d.AllocDirty(n)
	}
	b, err := t.Device.Alloc(tensor.F32, n)
	if err != nil {
		panic(err)
	}
	return b
}

func (t *timed) Recycle(b tensor.Buffer) {
	if r, ok := t.Device.(tensor.Recycler); ok {
		r.Recycle(b)
	}
}

func main() {
	config := flag.String("config", "testdata/configs/tiny-mnist.json", "UNet2DModel config.json")
	batch := flag.Int("batch", 1, "images per forward pass")
	iters := flag.Int("iters", 50, "forward passes (train steps) timed per thread count")
	train := flag.Bool("train", false, "time train steps (forward, MSE loss, backward, Adam) instead of sampling's forward passes")
	flag.Parse()
	if err := run(*config, *batch, *iters, *train); err != nil {
		fmt.Fprintln(os.Stderr, "opprof:", err)
		os.Exit(1)
	}
}

func run(config string, batch, iters int, train bool) error {
	cfg, err := nn.LoadUNet2DConfig(config)
	if err != nil {
		return err
	}
	type result struct {
		spent map[string]time.Duration
		calls map[string]int
		total time.Duration
	}
	var results []result
	threadCounts := []int{1, runtime.GOMAXPROCS(0)}
	for _, threads := range threadCounts {
		dev := &timed{Device: kernels.NewCPU(threads), spent: map[string]time.Duration{}, calls: map[string]int{}}
		m, err := nn.NewUNet2D(dev, cfg, 0)
		if err != nil {
			return err
		}
		r := rand.New(rand.NewPCG(0, 0))
		h, w, _ := cfg.SampleHW()
		xs := make([]float32, batch*cfg.InChannels*h*w)
		for i := range xs {
			xs[i] = float32(r.NormFloat64())
		}
		x := tensor.FromFloat32(dev, xs, batch, cfg.InChannels, h, w)
		ts := make([]float32, batch)
		var labels []int64
		if cfg.NumClassEmbeds != nil {
			labels = make([]int64, batch)
		}
		cleanup := func() {}
		step := func() error {
			_, err := m.Forward(x, ts, labels, nil)
			if err == nil {
				err = dev.Synchronize()
			}
			return err
		}
		if train { // as bench.BenchmarkUNet's train mode runs it
			target := tensor.Zeros(dev, batch, cfg.OutChannels, h, w)
			opt := nn.NewAdam(m.Params(), nn.AdamConfig{LR: 2e-4})
			step = func() error {
				out, err := m.Forward(x, ts, labels, &nn.ForwardOptions{Train: true})
				if err != nil {
					return err
				}
				opt.ZeroGrad()
				if err := tensor.Catch(func() { tensor.MSELoss(out, target).BackwardRelease() }); err != nil {
					return err
				}
				if err := opt.Step(); err != nil {
					return err
				}
				return dev.Synchronize()
			}
		} else { // as a sampler runs it
			restore, thaw := m.NoGrad(), nn.Freeze(m.Params())
			cleanup = func() { thaw(); restore() }
		}
		if err := step(); err != nil { // warm-up
			return err
		}
		dev.spent, dev.calls = map[string]time.Duration{}, map[string]int{}
		start := time.Now()
		for range iters {
			if err := step(); err != nil {
				return err
			}
		}
		results = append(results, result{dev.spent, dev.calls, time.Since(start)})
		cleanup()
	}
	one, all := results[0], results[1]
	kinds := make([]string, 0, len(all.spent))
	var inOps time.Duration
	for k, v := range all.spent {
		kinds = append(kinds, k)
		if k != "Alloc" {
			inOps += v
		}
	}
	slices.SortFunc(kinds, func(a, b string) int { return int(all.spent[b] - all.spent[a]) })
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(iters) }
	what := "forward passes"
	if train {
		what = "train steps"
	}
	fmt.Printf("%s, batch %d, %d %s: %.0f µs per pass on 1 thread, %.0f µs on %d (%.2f×); ops %.0f µs, between ops %.0f µs\n",
		config, batch, iters, what, per(one.total), per(all.total), threadCounts[1], float64(one.total)/float64(all.total), per(inOps), per(all.total-inOps))
	fmt.Printf("%-52s %6s %10s %10s %8s %7s\n", "op", "calls", "1 thread", "threads", "speedup", "share")
	for _, k := range kinds {
		fmt.Printf("%-52s %6d %8.0fµs %8.0fµs %7.2f× %6.1f%%\n", k, all.calls[k]/iters, per(one.spent[k]), per(all.spent[k]),
			float64(one.spent[k])/float64(all.spent[k]), 100*float64(all.spent[k])/float64(all.total))
	}
	return nil
}
