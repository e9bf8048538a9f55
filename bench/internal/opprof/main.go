// Command opprof times a U-Net forward pass op by op, on one thread and on
// all of them, and prints where the time goes and how well each kind of op
// spreads over the threads — what a CPU profile cannot say (it shows where
// the cores are busy, not where one core works while the others wait).
//
//	go run ./bench/internal/opprof -config testdata/configs/tiny-mnist.json -batch 1
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
	kind := fmt.Sprintf("Conv2D %dx%d %d→%d at %dx%d", p.KH, p.KW, p.C, p.F, p.H, p.W)
	if p.StrideH != 1 || p.StrideW != 1 {
		kind += fmt.Sprintf(" stride %d", p.StrideH)
	}
	defer t.add(kind, time.Now())
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
	iters := flag.Int("iters", 50, "forward passes timed per thread count")
	flag.Parse()
	if err := run(*config, *batch, *iters); err != nil {
		fmt.Fprintln(os.Stderr, "opprof:", err)
		os.Exit(1)
	}
}

func run(config string, batch, iters int) error {
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
		restore, thaw := m.NoGrad(), nn.Freeze(m.Params()) // as a sampler runs it
		forward := func() error {
			_, err := m.Forward(x, ts, labels, nil)
			if err == nil {
				err = dev.Synchronize()
			}
			return err
		}
		if err := forward(); err != nil { // warm-up
			return err
		}
		dev.spent, dev.calls = map[string]time.Duration{}, map[string]int{}
		start := time.Now()
		for range iters {
			if err := forward(); err != nil {
				return err
			}
		}
		results = append(results, result{dev.spent, dev.calls, time.Since(start)})
		thaw()
		restore()
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
	fmt.Printf("%s, batch %d, %d forward passes: %.0f µs per pass on 1 thread, %.0f µs on %d (%.2f×); ops %.0f µs, between ops %.0f µs\n",
		config, batch, iters, per(one.total), per(all.total), threadCounts[1], float64(one.total)/float64(all.total), per(inOps), per(all.total-inOps))
	fmt.Printf("%-36s %6s %10s %10s %8s %7s\n", "op", "calls", "1 thread", "threads", "speedup", "share")
	for _, k := range kinds {
		fmt.Printf("%-36s %6d %8.0fµs %8.0fµs %7.2f× %6.1f%%\n", k, all.calls[k]/iters, per(one.spent[k]), per(all.spent[k]),
			float64(one.spent[k])/float64(all.spent[k]), 100*float64(all.spent[k])/float64(all.total))
	}
	return nil
}
