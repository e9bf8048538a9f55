package ddpm

import (
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/nn"
)

// smallModel is a two-level U-Net on 8×8 grey images with attention, small
// enough for a test to train it for dozens of steps in seconds.
func smallModel(t testing.TB) nn.UNet2DConfig {
	cfg, err := nn.ParseUNet2DConfig("small", []byte(`{"sample_size": 8, "in_channels": 1, "out_channels": 1,
		"block_out_channels": [16, 32], "layers_per_block": 1, "norm_num_groups": 4, "attention_head_dim": 8,
		"down_block_types": ["DownBlock2D", "AttnDownBlock2D"], "up_block_types": ["AttnUpBlock2D", "UpBlock2D"]}`))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// handful returns 8 images of two classes: bright squares and dark rings.
func handful(t testing.TB) data.Dataset {
	r := rand.New(rand.NewPCG(3, 3))
	var pix []byte
	var labels []int
	for i := range 8 {
		for y := range 8 {
			for x := range 8 {
				v := 30
				inner := x >= 2 && x < 6 && y >= 2 && y < 6
				if (i%2 == 0) == inner {
					v = 220
				}
				pix = append(pix, byte(v+r.IntN(20)))
			}
		}
		labels = append(labels, i%2)
	}
	ds, err := data.FromBytes(1, 8, 8, pix, labels, []string{"square", "ring"})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func trainConfig(steps int) TrainConfig {
	tc := DefaultTrainConfig()
	tc.Steps, tc.Batch, tc.WarmupSteps, tc.LR, tc.HFlip = steps, 8, 5, 2e-3, true
	return tc
}

func TestTrainingLossFalls(t *testing.T) {
	tr, err := NewTrainer(kernels.CPU(), smallModel(t), trainConfig(60), handful(t))
	if err != nil {
		t.Fatal(err)
	}
	for range 60 {
		if _, err := tr.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	mean := func(v []float32) float64 {
		s := 0.0
		for _, x := range v {
			s += float64(x)
		}
		return s / float64(len(v))
	}
	first, last := mean(tr.Losses[:10]), mean(tr.Losses[50:])
	t.Logf("mean loss of steps 1–10: %.4f, of steps 51–60: %.4f", first, last)
	if !(last < 0.7*first) {
		t.Fatalf("loss did not fall: %.4f -> %.4f", first, last)
	}
}

func TestResumeIsExact(t *testing.T) {
	dev := kernels.CPU()
	const N = 3
	straight, err := NewTrainer(dev, smallModel(t), trainConfig(2*N), handful(t))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 * N {
		if _, err := straight.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	first, _ := NewTrainer(dev, smallModel(t), trainConfig(2*N), handful(t))
	for range N {
		if _, err := first.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), "checkpoint")
	if err := first.Save(dir); err != nil {
		t.Fatal(err)
	}
	resumed, err := Resume(dev, dir, handful(t), ResumeChanges{})
	if err != nil {
		t.Fatal(err)
	}
	if resumed.Step != N {
		t.Fatalf("resumed at step %d, want %d", resumed.Step, N)
	}
	for range N {
		if _, err := resumed.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	for _, pair := range [][2]Network{{straight.Model, resumed.Model}, {straight.EMA, resumed.EMA}} {
		a, b := pair[0].Params(), pair[1].Params()
		for i := range a {
			va, vb := a[i].T.MustFloat32s(), b[i].T.MustFloat32s()
			for j := range va {
				if va[j] != vb[j] {
					t.Fatalf("%s[%d]: %g after 2N steps, %g after N + resume + N", a[i].Name, j, va[j], vb[j])
				}
			}
		}
	}
	for i := range straight.Losses {
		if straight.Losses[i] != resumed.Losses[i] {
			t.Fatalf("loss %d: %g vs %g", i, straight.Losses[i], resumed.Losses[i])
		}
	}
}

// nanData wraps a dataset and poisons every image with NaN.
type nanData struct{ data.Dataset }

func (n nanData) Image(i int, dst []float32) int {
	l := n.Dataset.Image(i, dst)
	dst[0] = float32(math.NaN())
	return l
}

func TestNonFiniteLossStopsWithoutUpdating(t *testing.T) {
	tr, err := NewTrainer(kernels.CPU(), smallModel(t), trainConfig(10), handful(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.TrainStep(); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "checkpoint")
	if err := tr.Save(dir); err != nil {
		t.Fatal(err)
	}
	before := tr.Model.Params()[0].T.MustFloat32s()
	tr.Data = nanData{tr.Data}
	_, err = tr.TrainStep()
	if !errors.Is(err, ErrNonFinite) {
		t.Fatalf("NaN loss gave %v, want ErrNonFinite", err)
	}
	after := tr.Model.Params()[0].T.MustFloat32s()
	for i := range before {
		if before[i] != after[i] {
			t.Fatal("weights changed on a NaN step")
		}
	}
	if tr.Step != 1 {
		t.Fatalf("step count %d after a failed step, want 1", tr.Step)
	}
	if _, info, err := LoadCheckpoint(kernels.CPU(), dir, true); err != nil || info.Step != 1 {
		t.Fatalf("checkpoint after the NaN: step %d, %v", info.Step, err)
	}
}

// TestTrainingIndependentOfThreads: three training steps on 1 and on 3
// threads give bit-identical weights (issue 22, item 9).
func TestTrainingIndependentOfThreads(t *testing.T) {
	var want []float32
	for _, threads := range []int{1, 3} {
		tr, err := NewTrainer(kernels.NewCPU(threads), smallModel(t), trainConfig(3), handful(t))
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := tr.TrainStep(); err != nil {
				t.Fatal(err)
			}
		}
		var got []float32
		for _, p := range tr.Model.Params() {
			got = append(got, p.T.MustFloat32s()...)
		}
		if want == nil {
			want = got
		} else if !slices.Equal(got, want) {
			t.Fatalf("weights after 3 steps on %d threads differ from 1 thread's", threads)
		}
	}
}

// TestLearningRateDecayAtResume: the cosine runs from the end of the warm-up
// when the run starts with it, and from the resume step when a resumed
// run turns it on; constant and unchanged runs keep their rate.
func TestLearningRateDecayAtResume(t *testing.T) {
	tc := DefaultTrainConfig()
	tc.Steps, tc.WarmupSteps, tc.LR = 1000, 100, 1e-3
	near := func(what string, have, want float64) {
		t.Helper()
		if math.Abs(have-want) > 1e-12 {
			t.Fatalf("%s: rate %g, want %g", what, have, want)
		}
	}
	near("warm-up", LearningRate(tc, 49), 0.5e-3)
	near("constant", LearningRate(tc, 900), 1e-3)
	tc.LRDecay = LRCosine
	near("cosine half-way", LearningRate(tc, 550), 0.5e-3)
	near("cosine end", LearningRate(tc, 1000), 0)

	tc.LRDecay = LRConstant
	same, err := ResumeChanges{}.Apply(tc, 600)
	if err != nil || same != tc {
		t.Fatalf("no changes: %+v, %v; want the saved configuration", same, err)
	}
	cos, err := ResumeChanges{Steps: 1600, LR: 2e-3, LRDecay: LRCosine}.Apply(tc, 600)
	if err != nil {
		t.Fatal(err)
	}
	near("resumed, first step", LearningRate(cos, 600), 2e-3)
	near("resumed, half-way", LearningRate(cos, 1100), 1e-3)
	near("resumed, end", LearningRate(cos, 1600), 0)
	back, err := ResumeChanges{LRDecay: LRConstant}.Apply(cos, 1200)
	if err != nil || back.DecayStart != 0 || LearningRate(back, 1300) != 2e-3 {
		t.Fatalf("cosine turned off: %+v, %v", back, err)
	}
	tc.Data = "folder:old"
	if moved, err := (ResumeChanges{Data: "folder:new"}).Apply(tc, 600); err != nil || moved.Data != "folder:new" {
		t.Fatalf("data given again: %q, %v", moved.Data, err)
	}
	if kept, _ := (ResumeChanges{}).Apply(tc, 600); kept.Data != "folder:old" {
		t.Fatalf("data not given: %q, want the saved one", kept.Data)
	}
	if _, err := (ResumeChanges{LRDecay: "linear"}).Apply(tc, 600); err == nil {
		t.Fatal("an unknown decay was accepted")
	}
}
