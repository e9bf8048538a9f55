package bench

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/tensor"
)

// peakRSSMiB reads the process's peak resident set (VmHWM) from /proc.
func peakRSSMiB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func randn(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// TestKernelLevel names the vector level the CPU kernels run at here
// (scripts/compare_torch.sh prints it above its figures).
func TestKernelLevel(t *testing.T) { t.Logf("kernel level %s", kernels.CPU().Level()) }

// BenchmarkUNet times the reference U-Nets as torch_bench.py and
// ort_bench.js do: the training batch forward and train, and batch-1
// forward (the latency of interactive sampling).
func BenchmarkUNet(b *testing.B) {
	for _, c := range []struct {
		config string
		batch  int
		modes  []string
	}{
		{"tiny-mnist", 64, []string{"forward", "train"}}, {"tiny-mnist", 1, []string{"forward"}},
		{"ddpm-cifar10-32", 8, []string{"forward", "train"}}, {"ddpm-cifar10-32", 1, []string{"forward"}},
	} {
		for _, mode := range c.modes {
			b.Run(fmt.Sprintf("config=%s/mode=%s/batch=%d", c.config, mode, c.batch), func(b *testing.B) {
				benchUNet(b, c.config, mode, c.batch)
			})
		}
	}
}

// benchUNet runs on a device of its own made at the GOMAXPROCS of the
// moment, so that `-cpu 1,2` times one and two threads: kernels.CPU() is
// made once per process, at the first benchmark's GOMAXPROCS.
func benchUNet(b *testing.B, config, mode string, batch int) {
	benchUNetOn(b, kernels.NewCPU(0), config, mode, batch)
}

func benchUNetOn(b *testing.B, dev tensor.Device, config, mode string, batch int) {
	cfg, err := nn.LoadUNet2DConfig("../testdata/configs/" + config + ".json")
	if err != nil {
		b.Fatal(err)
	}
	m, err := nn.NewUNet2D(dev, cfg, 0)
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(0, 0))
	h, w, _ := cfg.SampleHW()
	shape := []int{batch, cfg.InChannels, h, w}
	x := tensor.FromFloat32(dev, randn(r, batch*cfg.InChannels*h*w), shape...)
	ts := make([]float32, batch)
	for i := range ts {
		ts[i] = float32(r.IntN(1000))
	}
	var labels []int64
	if cfg.NumClassEmbeds != nil {
		for range batch {
			labels = append(labels, int64(r.IntN(*cfg.NumClassEmbeds)))
		}
	}
	target := tensor.FromFloat32(dev, randn(r, batch*cfg.OutChannels*h*w), batch, cfg.OutChannels, h, w)
	opt := nn.NewAdam(m.Params(), nn.AdamConfig{LR: 2e-4})
	if mode == "forward" { // as a sampler runs it: weights frozen, no gradients, for all its steps
		defer nn.Freeze(m.Params())()
		defer m.NoGrad()()
	}
	step := func() {
		if mode == "forward" {
			out, err := m.Forward(x, ts, labels, nil)
			if err != nil {
				b.Fatal(err)
			}
			if err := dev.Synchronize(); err != nil || out == nil {
				b.Fatal(err)
			}
			return
		}
		out, err := m.Forward(x, ts, labels, &nn.ForwardOptions{Train: true})
		if err != nil {
			b.Fatal(err)
		}
		opt.ZeroGrad()
		if err := tensor.Catch(func() { tensor.MSELoss(out, target).BackwardRelease() }); err != nil {
			b.Fatal(err)
		}
		if err := opt.Step(); err != nil {
			b.Fatal(err)
		}
		if err := dev.Synchronize(); err != nil {
			b.Fatal(err)
		}
	}
	step() // warm-up, as torch_bench.py does
	if mode == "forward" {
		// The weight cache keeps a buffer's prepared forms from its second
		// unchanged call on, the state a sampler's 20–50 steps run in (ONNX
		// Runtime packs its weights when the session is made, untimed too).
		step()
	}
	// Each call is timed too: the anchors (torch_bench.py, ort_bench.js)
	// report the median call, so scripts/compare_torch.sh compares medians;
	// img/s is the mean, garbage collections and slow spells included.
	var calls []time.Duration
	for b.Loop() {
		t0 := time.Now()
		step()
		calls = append(calls, time.Since(t0))
	}
	b.ReportMetric(float64(batch)*float64(len(calls))/b.Elapsed().Seconds(), "img/s")
	slices.Sort(calls)
	b.ReportMetric(float64(batch)/calls[len(calls)/2].Seconds(), "median-img/s")
	if mode == "train" {
		b.ReportMetric(peakRSSMiB(), "peak-RSS-MiB")
	}
	logGPUProfile(b, dev, step)
}
