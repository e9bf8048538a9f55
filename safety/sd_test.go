package safety_test

import (
	"fmt"
	"image"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/internal/sdfixtures"
	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/nn/clip"
	"github.com/godiffuse/godiffuse/pipeline"
	"github.com/godiffuse/godiffuse/safetensors"
	"github.com/godiffuse/godiffuse/safety"
	"github.com/godiffuse/godiffuse/tensor"
)

func testdata() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata")
}

// fixtures lists the safety fixture folders: every folder of
// GODIFFUSE_SAFETY_FIXTURES (or testdata/safety) with a safety_checker/; a
// root with none fails.
func fixtures(t *testing.T) []string {
	root := os.Getenv("GODIFFUSE_SAFETY_FIXTURES")
	if root == "" {
		root = filepath.Join(testdata(), "safety")
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatalf("safety fixtures: %v", err)
	}
	var out []string
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(root, e.Name(), "safety_checker", "config.json")); err == nil {
			out = append(out, filepath.Join(root, e.Name()))
		}
	}
	if len(out) == 0 {
		t.Fatalf("safety fixtures: %s holds no folder with safety_checker/", root)
	}
	return out
}

// TestSafetyCheckerParity: for every fixture, the preprocessing (decoded →
// uint8 exact, Pillow's resize exact, pixel values bit-exact, the extra
// preprocessing cases too), the vision tower's intermediates, pooled output
// and image embeddings (1e-5 of max|ref|), the cosines and raw scores
// (1e-5 absolute) and the decisions (milli-scores, special care, bad
// concepts, adjustment, flags: exactly) match the reference.
func TestSafetyCheckerParity(t *testing.T) {
	dev := kernels.CPU()
	for _, dir := range fixtures(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			io, err := safetensors.Read(filepath.Join(dir, "io.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			defer io.Close()
			c, err := safety.LoadSDChecker(dev, dir)
			if err != nil {
				t.Fatal(err)
			}
			// Preprocessing: decoded → uint8 → resized → pixel values.
			dec, dshape := sdfixtures.Float32(t, io, "pipeline/decoded")
			B, H, W := dshape[0], dshape[2], dshape[3]
			raw := sdfixtures.Uint8(t, io, "pipeline/raw_images")
			resized := sdfixtures.Uint8(t, io, "pre/resized")
			pix, _ := sdfixtures.Float32(t, io, "pixel_values")
			per := len(pix) / B
			for b := range B {
				im, err := pipeline.ToImage(tensor.FromFloat32(dev, dec[b*3*H*W:(b+1)*3*H*W], 1, 3, H, W))
				if err != nil {
					t.Fatal(err)
				}
				rgb := safety.ToRGB(im)
				if !slices.Equal(rgb.Pix, raw[b*H*W*3:(b+1)*H*W*3]) {
					t.Fatalf("image %d: decoded → uint8 differs", b)
				}
				checkPre(t, c.Preprocess, fmt.Sprintf("image %d", b), rgb, resized[len(resized)/B*b:len(resized)/B*(b+1)], pix[b*per:(b+1)*per])
			}
			extras := 0
			for k := 0; ; k++ {
				p := fmt.Sprintf("pre/extra%d/", k)
				if _, ok := io.Tensors[p+"raw"]; !ok {
					break
				}
				_, s, _ := io.Uint8(p + "raw")
				img := safety.RGB{H: s[0], W: s[1], Pix: sdfixtures.Uint8(t, io, p+"raw")}
				want, _ := sdfixtures.Float32(t, io, p+"pixel_values")
				checkPre(t, c.Preprocess, p, img, sdfixtures.Uint8(t, io, p+"resized"), want)
				extras++
			}
			t.Logf("%d pipeline images and %d extra preprocessing cases: bit-exact", B, extras)
			// The model, from the stored pixel values.
			_, pshape := sdfixtures.Float32(t, io, "pixel_values")
			out, err := c.Run(tensor.FromFloat32(dev, pix, pshape...))
			if err != nil {
				t.Fatal(err)
			}
			hidden := []string{"hidden/embeddings", "hidden/pre_layrnorm"}
			for l := range len(c.Vision.Layers) {
				hidden = append(hidden, fmt.Sprintf("hidden/layers.%d", l))
			}
			for i, key := range hidden {
				sdfixtures.Compare(t, io, key, out.Vision.Hidden[i], 1e-5)
			}
			sdfixtures.Compare(t, io, "last_hidden_state", out.Vision.LastHidden, 1e-5)
			sdfixtures.Compare(t, io, "pooled_output", out.Pooled, 1e-5)
			sdfixtures.Compare(t, io, "image_embeds", out.ImageEmbeds, 1e-5)
			f32 := func(key string) []float32 { v, _ := sdfixtures.Float32(t, io, key); return v }
			i64 := func(key string) []int64 { v := sdfixtures.Int64(t, io, key); return v }
			near := func(key string, got []float64, want []float32) {
				for i := range want {
					if d := got[i] - float64(want[i]); d > 1e-5 || d < -1e-5 {
						t.Errorf("%s[%d] = %.7f, reference %.7f", key, i, got[i], want[i])
					}
				}
			}
			var cos, scos, raw1, sraw, adj []float64
			var milli, smilli, bad, care, flags []int64
			b2i := func(v bool) int64 {
				if v {
					return 1
				}
				return 0
			}
			for _, s := range out.Scores {
				for _, v := range s.ConceptCos {
					cos = append(cos, float64(v))
				}
				for _, v := range s.SpecialCos {
					scos = append(scos, float64(v))
				}
				raw1, sraw = append(raw1, s.ConceptRaw...), append(sraw, s.SpecialRaw...)
				milli, smilli = append(milli, s.ConceptMilli...), append(smilli, s.SpecialMilli...)
				for _, v := range s.BadConcepts {
					bad = append(bad, b2i(v))
				}
				for _, v := range s.SpecialCare {
					care = append(care, b2i(v))
				}
				adj, flags = append(adj, s.Adjustment), append(flags, b2i(s.Flagged))
			}
			near("cos_dist", cos, f32("cos_dist"))
			near("special_cos_dist", scos, f32("special_cos_dist"))
			near("concept_scores_raw", raw1, f32("concept_scores_raw"))
			near("special_scores_raw", sraw, f32("special_scores_raw"))
			for _, c := range []struct {
				key string
				got []int64
			}{{"concept_scores_milli", milli}, {"special_scores_milli", smilli}, {"bad_concepts", bad},
				{"special_care", care}, {"has_nsfw_concepts", flags}} {
				if want := i64(c.key); !slices.Equal(c.got, want) {
					t.Errorf("%s = %v, reference %v", c.key, c.got, want)
				}
			}
			wantAdj := f32("adjustment")
			for i := range wantAdj {
				if float32(adj[i]) != wantAdj[i] {
					t.Errorf("adjustment[%d] = %g, reference %g", i, adj[i], wantAdj[i])
				}
			}
			t.Logf("flags %v, special care %v", flags, care)
		})
	}
}

func checkPre(t *testing.T, p safety.Preprocessor, name string, img safety.RGB, wantResized []uint8, wantPix []float32) {
	t.Helper()
	if r := p.Resize(img); !slices.Equal(r.Pix, wantResized) {
		n := 0
		for i := range r.Pix {
			if i < len(wantResized) && r.Pix[i] != wantResized[i] {
				n++
			}
		}
		t.Fatalf("%s: the resize (%d×%d → %d×%d) differs from Pillow's at %d of %d values", name, img.W, img.H, r.W, r.H, n, len(wantResized))
	}
	if got := p.PixelValues(img); !slices.Equal(got, wantPix) {
		t.Fatalf("%s: pixel values differ", name)
	}
}

// TestFullSizeSafetyChecker: SD 1.x's safety_checker config (current and
// transformers 4.22 forms) builds, on a shapes-only device, exactly the
// keys, dtypes and shapes of the real model.safetensors (keys.txt), with
// 303,981,588 parameters.
func TestFullSizeSafetyChecker(t *testing.T) {
	dir := filepath.Join(testdata(), "safety-configs")
	for _, name := range []string{"safety_checker.config.json", "safety_checker.config.legacy-4.22.json"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		vc, proj, err := clip.VisionFromCLIPConfig(name, b)
		if err != nil {
			t.Fatal(err)
		}
		ps, err := safety.StateDictParams(vc, proj)
		if err != nil {
			t.Fatal(err)
		}
		if n := sdfixtures.CheckKeys(t, filepath.Join(dir, "safety_checker.keys.txt"), ps); n != 303_981_588 {
			t.Errorf("%s: %d parameters, want 303,981,588", name, n)
		}
	}
}

// TestClassifierChecker: the Fashion-MNIST judge as a checker flags the
// test images of a flagged class (here: sneakers and ankle boots) and
// passes the others, and each policy does what it says: block withholds,
// blur pixelates, warn keeps, off checks nothing.
func TestClassifierChecker(t *testing.T) {
	dev := kernels.CPU()
	j, err := safety.NewJudgeClassifier(dev, data.FashionMNISTClasses)
	if err != nil {
		t.Fatal(err)
	}
	c, err := safety.NewClassifierChecker("judge", j, []string{"sneaker", "ankle-boot"}, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := data.LoadIDX(filepath.Join(testdata(), "..", "features", "testdata", "t10k-images-idx3-ubyte.gz"),
		filepath.Join(testdata(), "..", "features", "testdata", "t10k-labels-idx1-ubyte.gz"), data.FashionMNISTClasses)
	if err != nil {
		t.Fatal(err)
	}
	var imgs []image.Image
	var shoe []bool
	buf := make([]float32, 28*28)
	for i := range 200 {
		label := ds.Image(i, buf)
		g := image.NewGray(image.Rect(0, 0, 28, 28))
		for k, v := range buf {
			g.Pix[k] = uint8((v + 1) * 127.5)
		}
		imgs = append(imgs, g)
		shoe = append(shoe, label == 7 || label == 9)
	}
	vs, err := c.Check(imgs)
	if err != nil {
		t.Fatal(err)
	}
	agree := 0
	for i, v := range vs {
		if v.Flagged == shoe[i] {
			agree++
		}
		if v.Flagged && !strings.Contains(v.Message, "threshold") {
			t.Errorf("image %d: message %q", i, v.Message)
		}
	}
	if agree < 190 {
		t.Errorf("the checker agrees with the labels on %d of 200 images", agree)
	}
	t.Logf("flags agree with 'sneaker or ankle boot' on %d of 200 test images", agree)
	flagged := slices.IndexFunc(vs, func(v safety.Verdict) bool { return v.Flagged })
	clean := slices.IndexFunc(vs, func(v safety.Verdict) bool { return !v.Flagged })
	pair := []image.Image{imgs[flagged], imgs[clean]}
	for _, c2 := range []struct {
		p    safety.Policy
		want [2]string
	}{{safety.Block, [2]string{"blocked", "ok"}}, {safety.Blur, [2]string{"blurred", "ok"}},
		{safety.Warn, [2]string{"warned", "ok"}}, {safety.Off, [2]string{"unchecked", "unchecked"}}} {
		out, err := safety.Apply(c, c2.p, pair)
		if err != nil {
			t.Fatal(err)
		}
		for k := range 2 {
			if out[k].Action != c2.want[k] {
				t.Errorf("%s: image %d %s, want %s", c2.p, k, out[k].Action, c2.want[k])
			}
		}
		switch c2.p {
		case safety.Block:
			if out[0].Image != nil {
				t.Error("block: the flagged image is still there")
			}
		case safety.Blur:
			if out[0].Image == pair[0] {
				t.Error("blur: the flagged image is unchanged")
			}
		}
		if out[1].Image != pair[1] {
			t.Errorf("%s: the clean image was changed", c2.p)
		}
	}
	if _, err := safety.NewClassifierChecker("judge", j, []string{"unicorn"}, 0.5); err == nil {
		t.Error("an unknown class was taken")
	}
	if f, th, err := safety.ParseCheckerSpec("judge:sneaker,bag:0.8"); err != nil || th != 0.8 || !slices.Equal(f, []string{"sneaker", "bag"}) {
		t.Errorf("ParseCheckerSpec: %v %v %v", f, th, err)
	}
}

// FuzzParsePreprocessor: no preprocessor_config.json may panic the parser;
// what it accepts preprocesses a small image without panicking.
func FuzzParsePreprocessor(f *testing.F) {
	for _, seed := range []string{
		`{"crop_size": {"height": 32, "width": 32}, "size": {"shortest_edge": 32}, "resample": 3}`,
		`{"crop_size": 224, "size": 224}`, `{"crop_size": 0}`, `{"size": {"height": 8, "width": 9}, "do_center_crop": false}`,
		`{"image_std": [0, 1, 1]}`, `{"resample": 7}`, `{"size": 1e9}`, `[]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := safety.ParsePreprocessor("fuzz", data)
		if err != nil {
			return
		}
		if p.DoResize && (p.ShortestEdge > 64 || p.Height > 64 || p.Width > 64) || p.DoCenterCrop && p.CropH*p.CropW > 64*64 {
			return // valid, but too big to run in a fuzz iteration
		}
		img := safety.RGB{H: 5, W: 7, Pix: make([]uint8, 3*5*7)}
		_ = p.PixelValues(img)
	})
}

// FuzzVisionFromCLIPConfig: no safety_checker/config.json may panic the
// parser, and what it accepts builds on a shapes-only device.
func FuzzVisionFromCLIPConfig(f *testing.F) {
	for _, seed := range []string{
		`{"projection_dim": 16, "vision_config": {"hidden_size": 32, "num_attention_heads": 4, "image_size": 32, "patch_size": 8}}`,
		`{"vision_config_dict": {"hidden_size": 1024, "patch_size": 14}, "projection_dim": 768}`,
		`{"vision_config": {"hidden_size": 1099511627776}}`, `{"vision_config": {"num_hidden_layers": 10000000}}`,
		`{"vision_config": {"patch_size": 0}}`, `{"projection_dim": -1}`, `{"vision_config": null}`, `[]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		vc, proj, err := clip.VisionFromCLIPConfig("fuzz", data)
		if err != nil {
			return
		}
		if ps, err := safety.StateDictParams(vc, proj); err != nil || len(ps) == 0 {
			t.Fatalf("an accepted config (%+v, projection %d) did not build: %v", vc, proj, err)
		}
	})
}
