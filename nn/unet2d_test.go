package nn_test

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"weak"

	"github.com/godiffuse/godiffuse/internal/traincheck"
	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/safetensors"
	"github.com/godiffuse/godiffuse/tensor"
)

func tinyConfig(t *testing.T) nn.UNet2DConfig {
	cfg, err := nn.LoadUNet2DConfig("../testdata/configs/tiny-mnist.json")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestUNetParamCounts(t *testing.T) {
	// Counts printed by shared/reference/README.md for the reference configs.
	for name, want := range map[string]int{"tiny-mnist": 700929, "cifar-narrow": 2245763, "ddpm-cifar10-32": 35746307} {
		cfg, err := nn.LoadUNet2DConfig("../testdata/configs/" + name + ".json")
		if err != nil {
			t.Fatal(err)
		}
		m, err := nn.NewUNet2D(kernels.CPU(), cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.NumParams(); got != want {
			t.Errorf("%s: %d parameters, want %d", name, got, want)
		}
	}
}

func TestUNetKeysMatchDiffusers(t *testing.T) {
	// shared/reference/ddpm-cifar10-32.keys.txt lists diffusers' keys in state-dict order.
	data, err := os.ReadFile("../testdata/configs/ddpm-cifar10-32.keys.txt")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		want = append(want, strings.Fields(line)[0])
	}
	cfg, _ := nn.LoadUNet2DConfig("../testdata/configs/ddpm-cifar10-32.json")
	m, err := nn.NewUNet2D(kernels.CPU(), cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	ps := m.Params()
	if len(ps) != len(want) {
		t.Fatalf("%d keys, diffusers has %d", len(ps), len(want))
	}
	for i, p := range ps {
		if p.Name != want[i] {
			t.Fatalf("key %d is %q, diffusers has %q", i, p.Name, want[i])
		}
	}
}

func TestUNetSaveLoadBitIdentical(t *testing.T) {
	dev := kernels.CPU()
	m, err := nn.NewUNet2D(dev, tinyConfig(t), 3)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	m2, err := nn.LoadUNet2D(dev, dir)
	if err != nil {
		t.Fatal(err)
	}
	a, b := m.Params(), m2.Params()
	for i := range a {
		va, vb := a[i].T.MustFloat32s(), b[i].T.MustFloat32s()
		for j := range va {
			if va[j] != vb[j] {
				t.Fatalf("%s[%d]: %g became %g", a[i].Name, j, va[j], vb[j])
			}
		}
	}
	// Saving again gives the same bytes.
	dir2 := t.TempDir()
	if err := m2.Save(dir2); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{nn.ConfigFile, nn.WeightsFile} {
		x, _ := os.ReadFile(filepath.Join(dir, f))
		y, _ := os.ReadFile(filepath.Join(dir2, f))
		if string(x) != string(y) {
			t.Fatalf("%s differs after a load/save round trip", f)
		}
	}
}

func TestUNetLoadsLegacyAttentionNames(t *testing.T) {
	dev := kernels.CPU()
	m, _ := nn.NewUNet2D(dev, tinyConfig(t), 4)
	sd, err := m.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	renamed := 0
	for i, e := range sd {
		for _, r := range [][2]string{{".to_q.", ".query."}, {".to_k.", ".key."}, {".to_v.", ".value."}, {".to_out.0.", ".proj_attn."}} {
			if strings.Contains(e.Name, r[0]) {
				sd[i].Name = strings.Replace(e.Name, r[0], r[1], 1)
				renamed++
			}
		}
	}
	if renamed == 0 {
		t.Fatal("config has no attention")
	}
	path := filepath.Join(t.TempDir(), "legacy.safetensors")
	if err := safetensors.Write(path, sd, nil); err != nil {
		t.Fatal(err)
	}
	st, err := safetensors.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := nn.NewUNet2D(dev, tinyConfig(t), 5)
	if err := m2.LoadWeights(st); err != nil {
		t.Fatal(err)
	}
	a, b := m.Params(), m2.Params()
	for i := range a {
		if a[i].T.MustFloat32s()[0] != b[i].T.MustFloat32s()[0] {
			t.Fatalf("%s not loaded from its legacy name", a[i].Name)
		}
	}
}

func TestUNetLoadErrorsNameTheProblem(t *testing.T) {
	dev := kernels.CPU()
	m, _ := nn.NewUNet2D(dev, tinyConfig(t), 4)
	sd, _ := m.StateDict()
	dir := t.TempDir()
	write := func(ts []safetensors.Tensor) *safetensors.File {
		p := filepath.Join(dir, "w.safetensors")
		if err := safetensors.Write(p, ts, nil); err != nil {
			t.Fatal(err)
		}
		st, err := safetensors.Read(p)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	// Missing tensor.
	err := m.LoadWeights(write(sd[1:]))
	if err == nil || !strings.Contains(err.Error(), sd[0].Name) {
		t.Errorf("missing tensor: %v", err)
	}
	// Wrong shape.
	bad := append([]safetensors.Tensor(nil), sd...)
	bad[0] = safetensors.Tensor{Name: sd[0].Name, DType: safetensors.F32, Shape: []int{len(sd[0].F)}, F: sd[0].F}
	err = m.LoadWeights(write(bad))
	if err == nil || !strings.Contains(err.Error(), "shape") || !strings.Contains(err.Error(), sd[0].Name) {
		t.Errorf("wrong shape: %v", err)
	}
	// Extra tensor.
	err = m.LoadWeights(write(append(append([]safetensors.Tensor(nil), sd...), safetensors.Tensor{Name: "extra.weight", DType: safetensors.F32, Shape: []int{1}, F: []float32{1}})))
	if err == nil || !strings.Contains(err.Error(), "extra.weight") {
		t.Errorf("extra tensor: %v", err)
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	cases := map[string]string{
		`{"block_out_channels": [32, 48], "down_block_types": ["DownBlock2D"], "up_block_types": ["UpBlock2D"]}`: "down_block_types",
		`{"norm_num_groups": "eight"}`:             "norm_num_groups",
		`{"block_out_channels": [30, 64, 64, 64]}`: "block_out_channels[0]",
		`{"resnet_time_scale_shift": "film"}`:      "resnet_time_scale_shift",
		`{"time_embedding_type": "fourier"}`:       "time_embedding_type",
		`{"down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D", "DownBlock2D", "DownBlock2D"]}`: "down_block_types[0]",
		`[1, 2]`: "JSON object",
	}
	for js, want := range cases {
		_, err := nn.ParseUNet2DConfig("cfg.json", []byte(js))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "cfg.json") {
			t.Errorf("%s: error %v should name cfg.json and %q", js, err, want)
		}
	}
}

func TestForwardInputErrors(t *testing.T) {
	dev := kernels.CPU()
	m, _ := nn.NewUNet2D(dev, tinyConfig(t), 4)
	x := tensor.Zeros(dev, 2, 1, 28, 28)
	if _, err := m.Forward(x, []float32{1, 2}, nil, nil); err == nil || !strings.Contains(err.Error(), "class") {
		t.Errorf("missing labels: %v", err)
	}
	if _, err := m.Forward(x, []float32{1, 2}, []int64{0, 10}, nil); err == nil || !strings.Contains(err.Error(), "label 10") {
		t.Errorf("label out of range: %v", err)
	}
	if _, err := m.Forward(tensor.Zeros(dev, 2, 3, 28, 28), []float32{1}, []int64{0, 1}, nil); err == nil {
		t.Error("wrong channel count accepted")
	}
	if _, err := m.Forward(tensor.Zeros(dev, 2, 1, 30, 30), []float32{1}, []int64{0, 1}, nil); err == nil {
		t.Error("size not divisible by 4 accepted")
	}
}

// TestNoGradKeepsMemoryFlat runs a 30-step sampling-like loop with gradients
// off: nothing is recorded, so the live heap does not grow with the steps.
func TestNoGradKeepsMemoryFlat(t *testing.T) {
	dev := kernels.CPU()
	m, _ := nn.NewUNet2D(dev, tinyConfig(t), 4)
	defer m.NoGrad()()
	x := tensor.Zeros(dev, 2, 1, 28, 28)
	heap := func() uint64 {
		runtime.GC() // twice: the first moves the kernels' scratch pools to their victim caches,
		runtime.GC() // the second frees them, so only what the loop keeps alive is counted
		var s runtime.MemStats
		runtime.ReadMemStats(&s)
		return s.HeapAlloc
	}
	var after5 uint64
	for step := range 30 {
		eps, err := m.Forward(x, []float32{float32(999 - step)}, []int64{1, 2}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if eps.RequiresGrad() {
			t.Fatal("output records a graph under NoGrad")
		}
		x = tensor.Sub(x, tensor.Scale(eps, 0.01))
		if step == 4 {
			after5 = heap()
		}
	}
	// The kernels keep a few scratch buffers of ~1 MiB across calls, and
	// which ones depends on how the threads interleaved (seen: ±1.1 MB
	// between runs); a graph kept per step would add megabytes every step.
	if end := heap(); end > after5+4<<20 {
		t.Fatalf("live heap grew from %d to %d bytes over 25 steps", after5, end)
	}
}

// TestHostileConfigsAreRefused: configs that would exhaust memory or crash
// before any check (issue 22, item 2) are refused by field, fast.
func TestHostileConfigsAreRefused(t *testing.T) {
	base := `"block_out_channels": [8, 16], "down_block_types": ["DownBlock2D", "DownBlock2D"], "up_block_types": ["UpBlock2D", "UpBlock2D"], "norm_num_groups": 4`
	for _, c := range []struct{ extra, want string }{
		{`"num_class_embeds": 1099511627776`, "num_class_embeds"},
		{`"layers_per_block": 10000000`, "layers_per_block"},
		{`"sample_size": 1048576`, "sample_size"},
		{`"sample_size": -28`, "sample_size"},
		{`"time_embedding_dim": 1099511627776`, "time_embedding_dim"},
		{`"in_channels": 8388608`, "in_channels"},
		{`"num_train_timesteps": 2000000000`, "num_train_timesteps"},
	} {
		_, err := nn.ParseUNet2DConfig("hostile", []byte("{"+base+", "+c.extra+"}"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %s", c.extra, err, c.want)
		}
	}
	big := `{"block_out_channels": [8388608, 8388608], "down_block_types": ["DownBlock2D", "DownBlock2D"], "up_block_types": ["UpBlock2D", "UpBlock2D"], "norm_num_groups": 4}`
	if _, err := nn.ParseUNet2DConfig("hostile", []byte(big)); err == nil || !strings.Contains(err.Error(), "block_out_channels") {
		t.Errorf("8,388,608 channels: %v", err)
	}
	// within every per-field bound, but 16,384 channels in 16 blocks of 64 layers is too many parameters
	var b strings.Builder
	b.WriteString(`{"norm_num_groups": 4, "layers_per_block": 64, "block_out_channels": [`)
	for i := range 16 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("16384")
	}
	b.WriteString(`], "down_block_types": [` + strings.Repeat(`"DownBlock2D",`, 15) + `"DownBlock2D"], "up_block_types": [` + strings.Repeat(`"UpBlock2D",`, 15) + `"UpBlock2D"]}`)
	cfg, err := nn.ParseUNet2DConfig("huge", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nn.NewUNet2D(kernels.CPU(), cfg, 0); err == nil || !strings.Contains(err.Error(), "parameters") {
		t.Errorf("a 16×64-layer 16,384-channel U-Net: %v", err)
	}
}

// TestConcurrentInference: goroutines that each take NoGrad around their
// own forward passes of one shared model run in parallel, record nothing and
// get the same outputs as one after another (run it with -race: the grad
// switch used to race with the ops' grad checks).
func TestConcurrentInference(t *testing.T) {
	dev := kernels.CPU()
	m, err := nn.NewUNet2D(dev, tinyConfig(t), 3)
	if err != nil {
		t.Fatal(err)
	}
	h, w, _ := m.Config.SampleHW()
	x := tensor.Full(dev, 0.25, 2, m.Config.InChannels, h, w)
	labels := []int64{1, 2}
	if m.ClassEmbedding == nil {
		labels = nil
	}
	forward := func() ([]float32, bool) {
		restore := m.NoGrad()
		defer restore()
		out, err := m.Forward(x, []float32{500}, labels, nil)
		if err != nil {
			t.Error(err)
			return nil, false
		}
		return out.MustFloat32s(), out.RequiresGrad()
	}
	want, _ := forward()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for range 2 {
				got, recorded := forward()
				if recorded {
					t.Errorf("goroutine %d: the forward pass recorded a graph", g)
				}
				if !slices.Equal(got, want) {
					t.Errorf("goroutine %d: output differs from the sequential one", g)
				}
			}
		})
	}
	wg.Wait()
	for _, p := range m.Params() {
		if !p.T.RequiresGrad() {
			t.Fatalf("%s: gradients not restored after the last NoGrad", p.Name)
		}
	}
}

// FuzzUNet2DConfig: no config.json may panic the parser or the model
// construction; what the parser accepts builds on a shapes-only device (no
// memory), and one over the parameter bound is refused by a real device
// before it allocates. The seeds include the crashers of
// issue 22 (each once killed the process before any check).
func FuzzUNet2DConfig(f *testing.F) {
	blocks := `"block_out_channels": [8, 16], "down_block_types": ["DownBlock2D", "AttnDownBlock2D"], "up_block_types": ["AttnUpBlock2D", "UpBlock2D"], "norm_num_groups": 4`
	for _, extra := range []string{``, `, "num_class_embeds": 1099511627776`, `, "layers_per_block": 10000000`,
		`, "sample_size": 1048576`, `, "sample_size": -28`, `, "time_embedding_dim": 1099511627776`,
		`, "attention_head_dim": 0`, `, "attention_head_dim": 3`, `, "num_class_embeds": 10, "sample_size": [28, 30]`,
		`, "resnet_time_scale_shift": "scale_shift", "attn_norm_num_groups": 2`} {
		f.Add([]byte("{" + blocks + extra + "}"))
	}
	f.Add([]byte(`{"block_out_channels": [8388608, 8388608], "down_block_types": ["DownBlock2D", "DownBlock2D"], "up_block_types": ["UpBlock2D", "UpBlock2D"]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"block_out_channels": null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := nn.ParseUNet2DConfig("fuzz", data)
		if err != nil {
			return
		}
		m, err := nn.BuildUNet2D(tensor.ShapesOnly(), cfg)
		if err != nil {
			return
		}
		if n := m.NumParams(); n > nn.MaxParams {
			// a real device must refuse it before allocating anything
			if _, err := nn.NewUNet2D(kernels.CPU(), cfg, 0); err == nil {
				t.Fatalf("a config of %d parameters was built on the CPU", n)
			}
		}
	})
}

// TestReleasedIntermediatesKeepOutputs: in inference the blocks release
// their intermediates and later layers reuse the buffers uncleared
// (tensor.Release, emptyOut); every output must keep the bits of a forward
// that releases nothing (a traced one), pass after pass, with the device's
// free lists warm — on a device that recycles every length and fills each
// reused array with NaN first (PoisonRecycled), so an op that reads an
// uncleared output or a released tensor shows.
func TestReleasedIntermediatesKeepOutputs(t *testing.T) {
	for _, name := range []string{"tiny-mnist", "ddpm-cifar10-32"} {
		cfg, err := nn.LoadUNet2DConfig("../testdata/configs/" + name + ".json")
		if err != nil {
			t.Fatal(err)
		}
		if name != "tiny-mnist" { // fewer channels: the same blocks, a quicker test
			cfg.BlockOutChannels = []int{32, 32, 64, 64}
		}
		dev := kernels.PoisonedCPU(2)
		m, err := nn.NewUNet2D(dev, cfg, 5)
		if err != nil {
			t.Fatal(err)
		}
		restore := m.NoGrad()
		h, w, _ := m.Config.SampleHW()
		x := tensor.FromFloat32(dev, traincheck.Random(2*m.Config.InChannels*h*w, 9), 2, m.Config.InChannels, h, w)
		var labels []int64
		if m.ClassEmbedding != nil {
			labels = []int64{1, 2}
		}
		run := func(opt *nn.ForwardOptions) []float32 {
			out, err := m.Forward(x, []float32{321}, labels, opt)
			if err != nil {
				t.Fatal(err)
			}
			return out.MustFloat32s()
		}
		want := run(&nn.ForwardOptions{Trace: map[string]*tensor.Tensor{}})
		for pass := range 3 {
			if got := run(nil); !slices.Equal(got, want) {
				t.Fatalf("%s, pass %d: output differs from the forward that released nothing", name, pass)
			}
		}
		restore()
	}
}

// TestBackwardReleaseKeepsTraining: training steps that hand the graph's
// activations and spent gradients back after backward (BackwardRelease) —
// on a device that recycles every length and fills reused arrays with NaN —
// end with the same weights, bit for bit, as steps that leave them to the
// collector.
func TestBackwardReleaseKeepsTraining(t *testing.T) {
	traincheck.SameWhenReleased(t, 3, func(dev tensor.Device) traincheck.Model {
		m, err := nn.NewUNet2D(dev, tinyConfig(t), 6)
		if err != nil {
			t.Fatal(err)
		}
		h, w, _ := m.Config.SampleHW()
		c := m.Config.InChannels
		var params []*tensor.Tensor
		for _, p := range m.Params() {
			params = append(params, p.T)
		}
		return traincheck.Model{Params: params, Loss: func(step int) *tensor.Tensor {
			x := tensor.FromFloat32(dev, traincheck.Random(2*c*h*w, uint64(step)), 2, c, h, w)
			target := tensor.FromFloat32(dev, traincheck.Random(2*c*h*w, uint64(step+10)), 2, c, h, w)
			out, err := m.Forward(x, []float32{float32(100 * step), 900}, []int64{1, 2}, &nn.ForwardOptions{Train: true, Seed: 3})
			if err != nil {
				t.Fatal(err)
			}
			return tensor.MSELoss(out, target)
		}}
	})
}

// TestRepeatedForwardSameOutputs: a sampler's forward passes go through
// tensor.Repeat, which runs some of them on one thread and some on all
// while it times them; every one gives the same values bit for bit.
func TestRepeatedForwardSameOutputs(t *testing.T) {
	dev := kernels.NewCPU(2)
	m, err := nn.NewUNet2D(dev, tinyConfig(t), 5)
	if err != nil {
		t.Fatal(err)
	}
	defer m.NoGrad()()
	h, w, _ := m.Config.SampleHW()
	x := tensor.Full(dev, 0.5, 1, m.Config.InChannels, h, w)
	var want []float32
	for call := range 10 {
		out, err := m.Forward(x, []float32{321}, []int64{3}, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := out.MustFloat32s()
		if call == 0 {
			want = got
		} else if !slices.Equal(got, want) {
			t.Fatalf("forward %d differs from the first", call)
		}
	}
}

// TestRepeatKeepsNoModelAlive: the device remembers the timings of a
// model's forward passes by a key that holds the model weakly, so a model
// dropped after sampling is collected (a Stable Diffusion U-Net is
// gigabytes).
func TestRepeatKeepsNoModelAlive(t *testing.T) {
	dev := kernels.NewCPU(2)
	m, err := nn.NewUNet2D(dev, tinyConfig(t), 6)
	if err != nil {
		t.Fatal(err)
	}
	m.NoGrad()
	h, w, _ := m.Config.SampleHW()
	x := tensor.Full(dev, 0.5, 1, m.Config.InChannels, h, w)
	for range 3 {
		if _, err := m.Forward(x, []float32{10}, []int64{1}, nil); err != nil {
			t.Fatal(err)
		}
	}
	gone := weak.Make(m)
	m = nil
	for range 3 {
		runtime.GC()
	}
	if gone.Value() != nil {
		t.Fatal("the model is still reachable after its last use")
	}
}
