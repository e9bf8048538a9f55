package pipeline

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/ddpm"
	"github.com/godiffuse/godiffuse/tensor"
)

// TestGroundAttention: the object words of every kind of caption are found
// (and only they), their masks are the cells their objects touch, the loss
// of a known map is (1 − share)², and a run with the loss resumes exactly
// and can turn it on at a resume.
func TestGroundAttention(t *testing.T) {
	tr := newTestTrainer(t, 5, func(tc *ddpm.TrainConfig) { tc.GroundAttention, tc.Batch = 0.5, 8 })
	rng := rand.New(rand.NewPCG(1, 2))
	red, blue := data.ShapeSpec{Shape: "circle", Colour: "red", Size: "small"}, data.ShapeSpec{Shape: "square", Colour: "blue"}
	for _, c := range []struct {
		q    data.ShapeQuery
		want []uint8 // per word
	}{
		{data.ShapeQuery{Kind: "single", Objects: []data.ShapeSpec{red}}, []uint8{0, 1, 1, 1}},
		{data.ShapeQuery{Kind: "two", Objects: []data.ShapeSpec{red, blue}}, []uint8{0, 1, 1, 1, 0, 0, 2, 2}},
		{data.ShapeQuery{Kind: "position", Relation: "to the left of", Objects: []data.ShapeSpec{red, blue}}, []uint8{0, 1, 1, 1, 1, 1, 1, 1, 0, 2, 2}},
		{data.ShapeQuery{Kind: "position", Relation: "below", Objects: []data.ShapeSpec{blue, red}}, []uint8{0, 1, 1, 1, 0, 2, 2, 2}},
		{data.ShapeQuery{Kind: "counting", Count: 3, Objects: []data.ShapeSpec{blue}}, []uint8{0, 7, 7}},
	} {
		sc := data.SceneFor(c.q, rng)
		if got := captionWordOwners(sc.Caption, sc); !slices.Equal(got, c.want) {
			t.Errorf("%q: word owners %v, want %v", sc.Caption, got, c.want)
		}
		// Every token of an owned word has its owner, in the caption's token order.
		ids, _ := tr.Tokenizer.Tokenize(sc.Caption)
		owners := tr.tokenOwners(sc.Caption, sc, len(ids))
		n := 0
		for _, o := range c.want {
			if o != 0 {
				n++
			}
		}
		if got := len(slices.DeleteFunc(slices.Clone(owners), func(o uint8) bool { return o == 0 })); got < n {
			t.Errorf("%q: %d owned tokens for %d owned words", sc.Caption, got, n)
		}
	}
	if got := captionWordOwners("a red circle", data.ShapeScene{Kind: "two", Objects: make([]data.ShapeObject, 2)}); got != nil {
		t.Errorf("a caption without its separator: owners %v, want none", got)
	}

	// A known map: every pixel looks at every token alike, so each owned
	// word's share is its object's cells / H·W.
	sc := data.SceneFor(data.ShapeQuery{Kind: "single", Objects: []data.ShapeSpec{red}}, rng)
	ids, _ := tr.Tokenizer.Tokenize(sc.Caption)
	L, side := len(ids), 8
	cover := sc.Objects[0].Coverage(side)
	cells := 0
	for _, v := range cover {
		if v > 0 {
			cells++
		}
	}
	masks := attentionMasks([][]uint8{tr.tokenOwners(sc.Caption, sc, L)}, []data.ShapeScene{sc}, side, side, L)
	for p, v := range cover {
		if got := masks[p*L+2]; got != map[bool]float32{true: 1, false: 0}[v > 0] {
			t.Fatalf("mask of the colour word at cell %d: %g, coverage %g", p, got, v)
		}
	}
	uniform := make([]float32, 2*side*side*L)
	for i := range uniform {
		uniform[i] = 1 / float32(L)
	}
	dev := tr.UNet.Device
	var picked int
	for i := range tr.Data.Len() { // a caption of the data whose scene is this kind
		if tr.Data.(sceneSource).Scene(i).Kind == "single" {
			picked = i
			break
		}
	}
	psc := tr.Data.(sceneSource).Scene(picked)
	loss, err := tr.attentionGroundLoss([]observedMap{{tensor.FromFloat32(dev, uniform, 1, 2, side*side, L), side, side}}, []string{psc.Caption}, []int{picked})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := loss.Item()
	pcells := 0
	for _, v := range psc.Objects[0].Coverage(side) {
		if v > 0 {
			pcells++
		}
	}
	miss := 1 - float64(pcells)/float64(side*side)
	if want := tr.Config.GroundAttention * miss * miss; math.Abs(float64(got)-want) > 1e-5 {
		t.Errorf("loss of a uniform map %g, want %g (weight × (1 − %d/%d)²)", got, want, pcells, side*side)
	}
	if none, err := tr.attentionGroundLoss([]observedMap{{tensor.FromFloat32(dev, uniform, 1, 2, side*side, L), side, side}}, []string{""}, []int{picked}); none != nil || err != nil {
		t.Errorf("a dropped caption: loss %v, %v; want none", none, err)
	}

	dir := t.TempDir()
	grounded := false
	first, _ := resumeExactly(t, dir, func() *Trainer {
		return newTestTrainer(t, 5, func(tc *ddpm.TrainConfig) { tc.GroundAttention, tc.Batch = 0.5, 8 })
	}, func(tr *Trainer) { grounded = grounded || tr.AttentionLoss > 0 })
	if !grounded {
		t.Error("five steps of eight captions and not one attention grounding loss")
	}
	// Turned on at a resume of a run without it.
	plain := newTestTrainer(t, 2)
	for plain.Step < 2 {
		if _, err := plain.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	if err := plain.Save(filepath.Join(dir, "plain")); err != nil {
		t.Fatal(err)
	}
	w := 0.25
	on, err := Resume(first.UNet.Device, filepath.Join(dir, "plain"), plain.Data, ddpm.ResumeChanges{Steps: 4, GroundAttention: &w})
	if err != nil {
		t.Fatal(err)
	}
	if on.Config.GroundAttention != w {
		t.Errorf("resumed with the loss turned on: weight %g, want %g", on.Config.GroundAttention, w)
	}
	if _, err := on.TrainStep(); err != nil {
		t.Fatal(err)
	}
}
