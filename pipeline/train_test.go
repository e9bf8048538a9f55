package pipeline

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/ddpm"
	"github.com/godiffuse/godiffuse/device"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/nn/clip"
	"github.com/godiffuse/godiffuse/nn/unet"
)

const testTextUNet = `{"sample_size": 32, "in_channels": 3, "out_channels": 3, "block_out_channels": [16, 32],
 "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"], "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
 "layers_per_block": 1, "cross_attention_dim": 32, "attention_head_dim": 4, "norm_num_groups": 8}`

const testTextEncoder = `{"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
 "max_position_embeddings": 24, "projection_dim": 32}`

// newTestTrainer is a tiny text-to-image trainer on the shapes data.
func newTestTrainer(t *testing.T, steps int, change ...func(*ddpm.TrainConfig)) *Trainer {
	t.Helper()
	dev, _, err := device.SelectThreads("cpu", 0)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := data.Shapes(64, 1, data.ShapesTrain)
	if err != nil {
		t.Fatal(err)
	}
	uc, err := unet.ParseConditionConfig("test unet", []byte(testTextUNet))
	if err != nil {
		t.Fatal(err)
	}
	tcfg, err := clip.ParseTextConfig("test text encoder", []byte(testTextEncoder))
	if err != nil {
		t.Fatal(err)
	}
	full, err := clip.OpenAIBPE()
	if err != nil {
		t.Fatal(err)
	}
	var captions []string
	for i := range ds.Len() {
		captions = append(captions, ds.Caption(i))
	}
	tc := ddpm.DefaultTrainConfig()
	tc.Steps, tc.Batch, tc.WarmupSteps = steps, 2, 2
	for _, c := range change {
		c(&tc)
	}
	tr, err := NewTrainer(dev, uc, tcfg, full.Subset(captions, 24), tc, ds)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// resumeExactly trains one trainer of newTrainer 5 steps in one go and
// another 3 steps, saved, resumed and trained to 5; both folders
// (dir/straight, dir/resumed) must hold byte-identical weights and state.
// each, if not nil, sees the trainer after every step of the straight run.
// It returns the first (3-step) trainer and the resumed one.
func resumeExactly(t *testing.T, dir string, newTrainer func() *Trainer, each func(*Trainer)) (first, resumed *Trainer) {
	t.Helper()
	run := func(tr *Trainer, to int, each func(*Trainer)) {
		for tr.Step < to {
			if _, err := tr.TrainStep(); err != nil {
				t.Fatal(err)
			}
			if each != nil {
				each(tr)
			}
		}
	}
	straight := newTrainer()
	run(straight, 5, each)
	if err := straight.Save(filepath.Join(dir, "straight")); err != nil {
		t.Fatal(err)
	}
	first = newTrainer()
	run(first, 3, nil)
	if err := first.Save(filepath.Join(dir, "resumed")); err != nil {
		t.Fatal(err)
	}
	resumed, err := Resume(first.UNet.Device, filepath.Join(dir, "resumed"), first.Data, ddpm.ResumeChanges{Steps: 5})
	if err != nil {
		t.Fatal(err)
	}
	run(resumed, 5, nil)
	if err := resumed.Save(filepath.Join(dir, "resumed")); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors", ddpm.StateFile} {
		a, _ := os.ReadFile(filepath.Join(dir, "straight", f))
		b, _ := os.ReadFile(filepath.Join(dir, "resumed", f))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs between the straight and the resumed run", f)
		}
	}
	return first, resumed
}

// TestTextTrainerResumesExactlyAndLoads: 3 steps, save, resume to 5 equals
// 5 steps in one go (byte-identical folders), and the folder loads as a
// pixel-space pipeline that generates.
func TestTextTrainerResumesExactlyAndLoads(t *testing.T) {
	dir := t.TempDir()
	first, _ := resumeExactly(t, dir, func() *Trainer { return newTestTrainer(t, 5) }, nil)
	if !IsTrainedPipeline(filepath.Join(dir, "resumed")) {
		t.Error("IsTrainedPipeline is false for a Trainer.Save folder")
	}
	p, err := Load(first.UNet.Device, filepath.Join(dir, "resumed"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Suggested != TrainedSuggested {
		t.Errorf("suggested %+v, want %+v", p.Suggested, TrainedSuggested)
	}
	if p.VAE != nil || p.ImageFactor() != 1 || p.DefaultSize() != 32 {
		t.Fatalf("loaded as vae %v, factor %d, size %d", p.VAE != nil, p.ImageFactor(), p.DefaultSize())
	}
	res, err := p.Generate(Options{Prompt: "a red circle", Steps: 3, Guidance: 3, NoWatermark: true})
	if err != nil {
		t.Fatal(err)
	}
	if b := res.Images[0].Bounds(); b.Dx() != 32 || b.Dy() != 32 {
		t.Errorf("image %v", b)
	}
}

// TestTextTrainerFrozenText: with FreezeText the text encoder (and its EMA
// copy, the one saved) keeps its initial weights while the U-Net trains, and
// a resumed run keeps it frozen.
func TestTextTrainerFrozenText(t *testing.T) {
	tr := newTestTrainer(t, 4, func(tc *ddpm.TrainConfig) { tc.FreezeText = true })
	snapshot := func(ps []nn.Param) [][]float32 {
		var out [][]float32
		for _, p := range ps {
			v, err := p.T.Float32s()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
		}
		return out
	}
	text0, unet0 := snapshot(tr.TextEMA.Params()), snapshot(tr.UNet.Params())
	for tr.Step < 2 {
		if _, err := tr.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), "frozen")
	if err := tr.Save(dir); err != nil {
		t.Fatal(err)
	}
	resumed, err := Resume(tr.UNet.Device, dir, tr.Data, ddpm.ResumeChanges{Steps: 4})
	if err != nil {
		t.Fatal(err)
	}
	if !resumed.Config.FreezeText {
		t.Fatal("the resumed run forgot FreezeText")
	}
	for resumed.Step < 4 {
		if _, err := resumed.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []*clip.TextModel{resumed.Text, resumed.TextEMA} {
		for i, v := range snapshot(m.Params()) {
			if !slices.Equal(v, text0[i]) {
				t.Fatalf("text parameter %s changed", m.Params()[i].Name)
			}
		}
	}
	changed := false
	for i, v := range snapshot(resumed.UNet.Params()) {
		changed = changed || !slices.Equal(v, unet0[i])
	}
	if !changed {
		t.Error("the U-Net did not train")
	}
}

// TestPretrainText: the contrastive pre-training changes the frozen text
// encoder, leaves its EMA copy equal to it and its gradients paused, the
// U-Net trains after it, a resumed run gets the pre-trained encoder back,
// and it refuses an encoder that is not frozen.
func TestPretrainText(t *testing.T) {
	tr := newTestTrainer(t, 3, func(tc *ddpm.TrainConfig) { tc.FreezeText, tc.PretrainText = true, 3 })
	before, _ := tr.Text.Params()[0].T.Float32s()
	var infos []PretrainInfo
	if err := tr.PretrainText(3, 3, 1e-3, func(i PretrainInfo) { infos = append(infos, i) }); err != nil {
		t.Fatal(err)
	}
	if len(infos) != 3 || infos[2].Step != 3 || !(infos[0].Loss > 0) || infos[0].Accuracy < 0 || infos[0].HardWins > 1 {
		t.Fatalf("progress: %+v", infos)
	}
	after, _ := tr.Text.Params()[0].T.Float32s()
	if slices.Equal(before, after) {
		t.Fatal("the text encoder did not change")
	}
	for i, p := range tr.Text.Params() {
		a, _ := p.T.Float32s()
		b, _ := tr.TextEMA.Params()[i].T.Float32s()
		if !slices.Equal(a, b) {
			t.Fatalf("text parameter %s: the EMA copy differs", p.Name)
		}
	}
	for tr.Step < 2 {
		if _, err := tr.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	if now, _ := tr.Text.Params()[0].T.Float32s(); !slices.Equal(now, after) {
		t.Fatal("the U-Net's steps changed the frozen encoder")
	}
	dir := filepath.Join(t.TempDir(), "pretrained")
	if err := tr.Save(dir); err != nil {
		t.Fatal(err)
	}
	resumed, err := Resume(tr.UNet.Device, dir, tr.Data, ddpm.ResumeChanges{Steps: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := resumed.Text.Params()[0].T.Float32s(); !slices.Equal(got, after) {
		t.Fatal("the resumed run's text encoder is not the pre-trained one")
	}
	if _, err := resumed.TrainStep(); err != nil {
		t.Fatal(err)
	}
	// Pre-trained, then trained on with the U-Net (freeze_text false).
	joint := newTestTrainer(t, 3, func(tc *ddpm.TrainConfig) { tc.PretrainText = 2 })
	if err := joint.PretrainText(2, 2, 1e-3, nil); err != nil {
		t.Fatal(err)
	}
	pre, _ := joint.Text.Params()[0].T.Float32s()
	if _, err := joint.TrainStep(); err != nil {
		t.Fatal(err)
	}
	if now, _ := joint.Text.Params()[0].T.Float32s(); slices.Equal(now, pre) {
		t.Fatal("the U-Net's step left an encoder that trains on unchanged")
	}
}

// TestPositionNegative: the pre-training splits position pairs by their
// negative's relation.
func TestPositionNegative(t *testing.T) {
	for _, c := range []struct{ caption, negative, want string }{
		{"a red circle to the left of a blue square", "a red circle to the right of a blue square", PositionMirrored},
		{"a red circle above a blue square", "a red circle below a blue square", PositionMirrored},
		{"a red circle to the left of a blue square", "a red circle below a blue square", PositionOtherAxis},
		{"a red circle above a blue square", "a red circle to the right of a blue square", PositionOtherAxis},
		{"a red circle", "a blue circle", ""},
		{"a red circle to the left of a blue square", "two red circles", ""},
	} {
		q, err1 := data.ParseShapeCaption(c.caption)
		n, err2 := data.ParseShapeCaption(c.negative)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if got := positionNegative(q, n); got != c.want {
			t.Errorf("%q against %q: %q, want %q", c.caption, c.negative, got, c.want)
		}
	}
}

// TestGroundText: the grounding loss's targets sit on the tokens of each
// object's phrase and hold that object's centre; a run with it resumes
// exactly (the head is in the training state) and its pipeline folder has
// no trace of the head.
func TestGroundText(t *testing.T) {
	tr := newTestTrainer(t, 5, func(tc *ddpm.TrainConfig) { tc.GroundText, tc.Batch = 0.5, 8 })
	q := data.ShapeQuery{Kind: "position", Relation: "to the left of",
		Objects: []data.ShapeSpec{{Shape: "circle", Colour: "red", Size: "small"}, {Shape: "square", Colour: "blue"}}}
	sc := data.SceneFor(q, rand.New(rand.NewPCG(1, 2)))
	ids, _ := tr.Tokenizer.Tokenize(sc.Caption)
	spans, ok := tr.objectSpans(sc.Caption)
	if !ok {
		t.Fatalf("no spans in %q", sc.Caption)
	}
	for k, phrase := range []string{"a small red circle", "a blue square"} {
		var got []int
		for _, id := range ids[spans[k][0]:spans[k][1]] {
			got = append(got, int(id))
		}
		if want := tr.Tokenizer.Encode(phrase); !slices.Equal(got, want) {
			t.Errorf("object %d: tokens %v, want those of %q, %v", k, got, phrase, want)
		}
	}
	L := len(ids)
	single := data.SceneFor(data.ShapeQuery{Kind: "single", Objects: []data.ShapeSpec{{Shape: "circle", Colour: "red"}}}, rand.New(rand.NewPCG(3, 4)))
	target, mask, n := tr.groundTargets([]string{sc.Caption, "", single.Caption}, []data.ShapeScene{sc, sc, single}, L)
	if want := (spans[0][1] - spans[0][0]) + (spans[1][1] - spans[1][0]); n != want {
		t.Errorf("%d masked tokens, want %d (only the position caption's object words)", n, want)
	}
	for k, span := range spans {
		o := sc.Objects[k]
		for tok := span[0]; tok < span[1]; tok++ {
			i := tok * 2
			if mask[i] != 1 || target[i] != float32(o.X/16-1) || target[i+1] != float32(o.Y/16-1) {
				t.Errorf("token %d: mask %g target (%g, %g), want 1 and object %d's centre (%g, %g)", tok, mask[i], target[i], target[i+1], k, o.X/16-1, o.Y/16-1)
			}
		}
	}
	if slices.ContainsFunc(mask[L*2:], func(v float32) bool { return v != 0 }) {
		t.Error("a dropped or single-object caption has grounding targets")
	}

	dir := t.TempDir()
	grounded := false
	grounding := func() *Trainer {
		return newTestTrainer(t, 5, func(tc *ddpm.TrainConfig) { tc.GroundText, tc.Batch = 0.5, 8 })
	}
	first, resumed := resumeExactly(t, dir, grounding, func(tr *Trainer) { grounded = grounded || tr.GroundLoss > 0 })
	if !grounded {
		t.Error("five steps of eight captions and not one grounding loss")
	}
	if resumed.Ground == nil {
		t.Error("the resumed run lost its grounding head")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "resumed", "text_encoder", "model.safetensors")); bytes.Contains(b, []byte("ground")) {
		t.Error("the text encoder's weights hold the grounding head")
	}
	if _, err := Load(first.UNet.Device, filepath.Join(dir, "resumed")); err != nil {
		t.Fatal(err)
	}
	frozen := func(tc *ddpm.TrainConfig) { tc.GroundText, tc.FreezeText = 1, true }
	tc := first.Config
	frozen(&tc)
	if _, err := NewTrainer(first.UNet.Device, first.UNet.Config, first.Text.Config, first.Tokenizer, tc, first.Data); err == nil {
		t.Error("a grounding loss on a frozen encoder: no error")
	}
}
