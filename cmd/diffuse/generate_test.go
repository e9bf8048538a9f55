package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/internal/sdfixtures"
	"github.com/godiffuse/godiffuse/pngtext"
	"github.com/godiffuse/godiffuse/safetensors"
	"github.com/godiffuse/godiffuse/watermark"
)

// TestGenerateMatchesFixture: diffuse generate on the tiny pipeline fixture,
// started from the fixture's initial latents, writes the fixture's image
// (±1 level on a few values, as the parity test allows) with its parameters.
func TestGenerateMatchesFixture(t *testing.T) {
	dir := sdfixtures.Folders(t, sdfixtures.Pipeline)[0]
	io := sdfixtures.IO(t, dir)
	out := filepath.Join(t.TempDir(), "tiny.png")
	args := []string{"-model", dir, "-prompt", io.Metadata["prompt"], "-steps", io.Metadata["num_inference_steps"],
		"-guidance", io.Metadata["guidance_scale"], "-sampler", "ddim", "-seed", "7", "-device", "cpu",
		"-latents", filepath.Join(dir, "io.safetensors") + ":latents_init", "-out", out}
	if err := runGenerate(args); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	want := sdfixtures.Uint8(t, io, "image_u8")
	W := img.Bounds().Dx()
	off := 0
	for i := 0; i < len(want); i += 3 {
		r, g, bl, _ := img.At((i/3)%W, (i/3)/W).RGBA()
		for c, v := range []uint32{r >> 8, g >> 8, bl >> 8} {
			if d := int(v) - int(want[i+c]); d < -1 || d > 1 {
				t.Fatalf("pixel %d channel %d: %d, want %d", i/3, c, v, want[i+c])
			} else if d != 0 {
				off++
			}
		}
	}
	if off > 3 {
		t.Errorf("%d values off by one", off)
	}
	chunks, err := pngtext.Read(bytes.NewReader(b))
	if err != nil || len(chunks) != 2 || chunks[0].Key != "parameters" || chunks[1].Key != "godiffuse" {
		t.Fatalf("text chunks %q, %v", chunks, err)
	}
	for _, s := range []string{io.Metadata["prompt"] + "\n", "Steps: 3", "Sampler: DDIM", "CFG scale: 5", "Seed: 7", "Size: 32x32", "Model: tiny-pipeline", "Model hash: "} {
		if !strings.Contains(chunks[0].Value, s) {
			t.Errorf("parameters %q lack %q", chunks[0].Value, s)
		}
	}
	var prov provenance
	if err := json.Unmarshal([]byte(chunks[1].Value), &prov); err != nil {
		t.Fatal(err)
	}
	if prov.Software != "godiffuse" || prov.Task != "txt2img" || prov.Prompt != io.Metadata["prompt"] || prov.Seed != 7 || prov.Steps != 3 ||
		prov.Sampler != "ddim" || prov.Width != 32 || prov.Model != "tiny-pipeline" || len(prov.ModelHash) != 10 || prov.Safety == nil || prov.Time == "" {
		t.Errorf("provenance %+v", prov)
	}
}

// TestSampleRefusesNonFiniteOutput: a checkpoint whose weights are NaN
// samples to an error, and no image is written (issue 22, item 3).
func TestSampleRefusesNonFiniteOutput(t *testing.T) {
	dir := t.TempDir()
	out, _ := trainTiny(t, dir, "-steps", "1")
	weights := filepath.Join(out, "checkpoint", "unet_ema", "diffusion_pytorch_model.safetensors")
	st, err := safetensors.Read(weights)
	if err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for _, name := range st.Names() {
		v, shape, err := st.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		for i := range v {
			v[i] = float32(math.NaN())
		}
		ts = append(ts, safetensors.Tensor{Name: name, DType: safetensors.F32, Shape: shape, F: v})
	}
	st.Close()
	if err := safetensors.Write(weights, ts, nil); err != nil {
		t.Fatal(err)
	}
	png := filepath.Join(dir, "nan.png")
	err = runSample([]string{"-checkpoint", filepath.Join(out, "checkpoint"), "-n", "2", "-steps", "2", "-out", png, "-device", "cpu"})
	if err == nil || !strings.Contains(err.Error(), "non-finite") {
		t.Fatalf("error %v, want one about non-finite values", err)
	}
	if _, err := os.Stat(png); err == nil {
		t.Fatal("an image was written from NaN output")
	}
}

// TestSampleInBatches: -n larger than -batch is made batch by batch into the
// folder, and more steps than the schedule has is refused (issue 22, item 4).
func TestSampleInBatches(t *testing.T) {
	dir := t.TempDir()
	out, _ := trainTiny(t, dir, "-steps", "1", "-timesteps", "50")
	ckpt := filepath.Join(out, "checkpoint")
	folder := filepath.Join(dir, "imgs-out")
	if err := runSample([]string{"-checkpoint", ckpt, "-n", "5", "-batch", "2", "-steps", "2", "-folder", folder,
		"-out", filepath.Join(dir, "grid.png"), "-device", "cpu"}); err != nil {
		t.Fatal(err)
	}
	if files, _ := filepath.Glob(filepath.Join(folder, "*.png")); len(files) != 5 {
		t.Fatalf("%d images written, want 5", len(files))
	}
	err := runSample([]string{"-checkpoint", ckpt, "-steps", "5000", "-out", filepath.Join(dir, "x.png"), "-device", "cpu"})
	if err == nil || !strings.Contains(err.Error(), "steps") {
		t.Fatalf("5,000 DPM-Solver steps on a 50-step schedule: %v", err)
	}
}

// TestInspect: diffuse inspect on a generated PNG, a checkpoint and a
// pipeline folder says what each holds; a file that is none of them is an error.
func TestInspect(t *testing.T) {
	dir := t.TempDir()
	out, cfg := trainTiny(t, dir, "-steps", "2")
	pipe := sdfixtures.Folders(t, sdfixtures.Pipeline)[0]
	png := filepath.Join(dir, "g.png")
	if err := runGenerate([]string{"-model", pipe, "-prompt", "a cat", "-steps", "1", "-seed", "3", "-out", png, "-device", "cpu"}); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, p := range []string{png, filepath.Join(out, "checkpoint"), pipe} {
		if err := inspect(&b, p); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"parameters:", "a cat", "Seed: 3", "trained 2 of 2 steps", "UNet2DModel:", "diffusers pipeline folder", "unet/diffusion_pytorch_model.safetensors"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("inspect output lacks %q:\n%s", want, b.String())
		}
	}
	if err := inspect(&b, cfg); err == nil {
		t.Error("a JSON file was inspected as a PNG")
	}
	if err := inspect(&b, filepath.Join(dir, "imgs")); err == nil {
		t.Error("a folder of images was inspected as a checkpoint")
	}
}

// trainTiny trains the small test U-Net on four images into dir/out for a
// few steps (extra flags appended) and returns the output folder and the
// config file.
func trainTiny(t *testing.T, dir string, extra ...string) (out, cfg string) {
	t.Helper()
	writeImages(t, filepath.Join(dir, "imgs"), 4)
	cfg = filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfg, []byte(smallConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	out = filepath.Join(dir, "out")
	args := append([]string{"-config", cfg, "-data", "folder:" + filepath.Join(dir, "imgs"), "-batch", "2", "-out", out,
		"-sample-steps", "1"}, extra...)
	if err := runTrain(args); err != nil {
		t.Fatal(err)
	}
	return out, cfg
}

// TestThreadsFlag: training and sampling with -threads 1 and -threads 3
// write byte-identical checkpoints and images (issue 22, item 9).
func TestThreadsFlag(t *testing.T) {
	var want [2][]byte
	for _, threads := range []string{"1", "3"} {
		dir := t.TempDir()
		out, _ := trainTiny(t, dir, "-steps", "2", "-threads", threads, "-device", "cpu")
		png := filepath.Join(dir, "s.png")
		if err := runSample([]string{"-checkpoint", filepath.Join(out, "checkpoint"), "-n", "2", "-steps", "3",
			"-out", png, "-threads", threads, "-device", "cpu", "-no-metadata"}); err != nil {
			t.Fatal(err)
		}
		var got [2][]byte
		for i, f := range []string{filepath.Join(out, "checkpoint", "unet", "diffusion_pytorch_model.safetensors"), png} {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got[i] = b
		}
		if want[0] == nil {
			want = got
			continue
		}
		if !bytes.Equal(got[0], want[0]) || !bytes.Equal(got[1], want[1]) {
			t.Fatalf("-threads %s: the weights or the image differ from -threads 1's", threads)
		}
	}
	if err := runSample([]string{"-threads", "-2", "-out", filepath.Join(t.TempDir(), "x.png")}); err == nil || !strings.Contains(err.Error(), "-threads") {
		t.Fatalf("-threads -2: %v", err)
	}
}

// TestInpaintCommand: diffuse inpaint with each kind of mask writes the
// results and the side-by-side picture; the kept pixels of the result equal
// the input's; an all-black mask gives the input back.
func TestInpaintCommand(t *testing.T) {
	dir := t.TempDir()
	out, _ := trainTiny(t, dir, "-steps", "1")
	ckpt := filepath.Join(out, "checkpoint")
	input := filepath.Join(dir, "in.png")
	src := image.NewGray(image.Rect(0, 0, 8, 8))
	for i := range src.Pix {
		src.Pix[i] = uint8(i * 4)
	}
	writeTestPNG(t, input, src)
	bigMask := image.NewGray(image.Rect(0, 0, 16, 16)) // left half white, at twice the size
	for y := range 16 {
		for x := range 8 {
			bigMask.SetGray(x, y, color.Gray{255})
		}
	}
	maskPNG := filepath.Join(dir, "mask.png")
	writeTestPNG(t, maskPNG, bigMask)
	black := filepath.Join(dir, "black.png")
	writeTestPNG(t, black, image.NewGray(image.Rect(0, 0, 8, 8)))
	for _, c := range []struct {
		mask []string
		keep func(x, y int) bool
	}{
		{[]string{"-mask-shape", "center"}, func(x, y int) bool { return x < 2 || x >= 6 || y < 2 || y >= 6 }},
		{[]string{"-rect", "0,0,8,4"}, func(x, y int) bool { return y >= 4 }},
		{[]string{"-mask", maskPNG}, func(x, y int) bool { return x >= 4 }},
		{[]string{"-mask", black}, func(x, y int) bool { return true }},
	} {
		for _, method := range []string{"repaint", "replace", "replace-clean"} {
			res, side := filepath.Join(dir, "res.png"), filepath.Join(dir, "side.png")
			args := append([]string{"-checkpoint", ckpt, "-image", input, "-method", method, "-steps", "4", "-jump", "2",
				"-resample", "2", "-scale", "1", "-out", res, "-side-by-side", side, "-device", "cpu"}, c.mask...)
			if err := runInpaint(args); err != nil {
				t.Fatalf("%q: %v", c.mask, err)
			}
			got := readTestPNG(t, res)
			for y := range 8 {
				for x := range 8 {
					// The grid draws the image at (2, 2) of a 12×12 cell.
					r, _, _, _ := got.At(2+x, 2+y).RGBA()
					if c.keep(x, y) && uint8(r>>8) != src.GrayAt(x, y).Y {
						t.Fatalf("%s %q: kept pixel (%d, %d) = %d, input %d", method, c.mask, x, y, r>>8, src.GrayAt(x, y).Y)
					}
				}
			}
			if _, err := os.Stat(side); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func writeTestPNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

func readTestPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestInpaintSDCommand: diffuse inpaint -model runs the tiny pipeline with
// each kind of mask and writes a PNG with its parameters.
func TestInpaintSDCommand(t *testing.T) {
	pipe := sdfixtures.Folders(t, sdfixtures.Pipeline)[0]
	dir := t.TempDir()
	input := filepath.Join(dir, "in.png")
	src := image.NewNRGBA(image.Rect(0, 0, 32, 32))
	for i := range src.Pix {
		src.Pix[i] = uint8(i * 7)
	}
	writeTestPNG(t, input, src)
	maskPNG := filepath.Join(dir, "mask.png")
	m := image.NewGray(image.Rect(0, 0, 16, 16))
	for i := range 64 {
		m.Pix[i] = 255
	}
	writeTestPNG(t, maskPNG, m)
	black := filepath.Join(dir, "black.png")
	writeTestPNG(t, black, image.NewGray(image.Rect(0, 0, 32, 32)))
	out := filepath.Join(dir, "same.png")
	if err := runInpaint([]string{"-model", pipe, "-image", input, "-mask", black, "-out", out, "-device", "cpu"}); err != nil {
		t.Fatal(err)
	}
	if got, want := readTestPNG(t, out), readTestPNG(t, input); !bytes.Equal(got.(*image.NRGBA).Pix, want.(*image.NRGBA).Pix) {
		t.Error("an all-black mask changed the image")
	}
	for _, mask := range [][]string{{"-mask-shape", "center"}, {"-rect", "4,4,8,20"}, {"-mask", maskPNG}} {
		out := filepath.Join(dir, "out.png")
		args := append([]string{"-model", pipe, "-image", input, "-prompt", "a cat", "-steps", "2", "-out", out, "-device", "cpu"}, mask...)
		if err := runInpaint(args); err != nil {
			t.Fatalf("%q: %v", mask, err)
		}
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		chunks, err := pngtext.Read(f)
		f.Close()
		if err != nil || len(chunks) == 0 || !strings.Contains(chunks[0].Value, "a cat") {
			t.Fatalf("%q: parameters %v, %v", mask, chunks, err)
		}
	}
}

// TestImg2ImgCheckpoint: diffuse img2img -checkpoint runs SDEdit with a
// pixel-space checkpoint.
func TestImg2ImgCheckpoint(t *testing.T) {
	dir := t.TempDir()
	out, _ := trainTiny(t, dir, "-steps", "1")
	input := filepath.Join(dir, "in.png")
	writeTestPNG(t, input, image.NewGray(image.Rect(0, 0, 16, 16))) // twice the model's size: resized
	res := filepath.Join(dir, "res.png")
	if err := runImg2Img([]string{"-checkpoint", filepath.Join(out, "checkpoint"), "-image", input, "-strength", "0.5",
		"-steps", "4", "-n", "2", "-out", res, "-device", "cpu"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(res); err != nil {
		t.Fatal(err)
	}
}

// TestSafetyPolicies: with a checker that flags everything (the judge with
// every class at a threshold of 0.01), -safety block writes no image and
// exits with withheldError, blur writes pixelated images marked in their
// provenance, warn writes them as they are, and every written PNG carries
// its records unless -no-metadata. An SD folder with a safety_checker/
// (the tiny pipeline with the tiny-safety checker) runs it and records it.
func TestSafetyPolicies(t *testing.T) {
	dir := t.TempDir()
	out, _ := trainTiny(t, dir, "-steps", "1")
	ckpt := filepath.Join(out, "checkpoint")
	all := "judge:" + strings.Join(data.FashionMNISTClasses, ",") + ":0.01"
	read := func(path string) (map[string]string, bool) {
		f, err := os.Open(path)
		if err != nil {
			return nil, false
		}
		defer f.Close()
		chunks, err := pngtext.Read(f)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, c := range chunks {
			m[c.Key] = c.Value
		}
		return m, true
	}
	for _, c := range []struct {
		policy, action string
		written        bool
	}{{"block", "blocked", false}, {"blur", "blurred", true}, {"warn", "warned", true}} {
		folder := filepath.Join(dir, "imgs-"+c.policy)
		err := runSample([]string{"-checkpoint", ckpt, "-n", "2", "-steps", "2", "-out", filepath.Join(dir, c.policy+".png"),
			"-folder", folder, "-safety", c.policy, "-safety-checker", all, "-device", "cpu"})
		if (err != nil) != !c.written || (err != nil && !errors.As(err, new(withheldError))) {
			t.Fatalf("-safety %s: %v", c.policy, err)
		}
		files, _ := filepath.Glob(filepath.Join(folder, "*.png"))
		if (len(files) == 2) != c.written || (!c.written && len(files) != 0) {
			t.Fatalf("-safety %s: %d images written", c.policy, len(files))
		}
		for _, f := range append(files, filepath.Join(dir, c.policy+".png")) {
			meta, ok := read(f)
			if !ok {
				t.Fatalf("%s not written", f)
			}
			var prov provenance
			if err := json.Unmarshal([]byte(meta["godiffuse"]), &prov); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if prov.Safety == nil || prov.Safety.Action != c.action || !prov.Safety.Flagged || prov.Safety.Checker != "judge" ||
				prov.Task != "sample" || !strings.Contains(meta["parameters"], "Sampler: dpm++2m") {
				t.Errorf("%s: provenance %+v, parameters %q", f, prov, meta["parameters"])
			}
		}
	}
	bare := filepath.Join(dir, "bare.png")
	if err := runSample([]string{"-checkpoint", ckpt, "-n", "1", "-steps", "1", "-out", bare, "-no-metadata", "-device", "cpu"}); err != nil {
		t.Fatal(err)
	}
	if meta, _ := read(bare); len(meta) != 0 {
		t.Errorf("-no-metadata wrote %v", meta)
	}
	// The tiny pipeline with a safety_checker/ and feature_extractor/.
	tiny := sdfixtures.Folders(t, sdfixtures.Pipeline)[0]
	sd := filepath.Join(dir, "tiny-with-checker")
	mkdirAll(t, sd)
	entries, _ := os.ReadDir(tiny)
	for _, e := range entries {
		os.Symlink(filepath.Join(tiny, e.Name()), filepath.Join(sd, e.Name()))
	}
	_, file, _, _ := runtime.Caller(0)
	safetyDir := filepath.Join(filepath.Dir(file), "..", "..", "testdata", "safety", "tiny-safety")
	for _, part := range []string{"safety_checker", "feature_extractor"} {
		os.Symlink(filepath.Join(safetyDir, part), filepath.Join(sd, part))
	}
	png := filepath.Join(dir, "sd.png")
	err := runGenerate([]string{"-model", sd, "-prompt", "a cat", "-steps", "1", "-out", png, "-device", "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	meta, _ := read(png)
	var prov provenance
	if err := json.Unmarshal([]byte(meta["godiffuse"]), &prov); err != nil || prov.Safety == nil || prov.Safety.Checker != "sd-safety-checker" || len(prov.Safety.Scores) != 20 {
		t.Errorf("SD provenance %+v (%v)", prov, err)
	}
}

// TestWatermarkAndDetect: a sample grid big enough to carry the watermark
// has it (payload = hash of model and seed, as its record says), also after
// a JPEG round trip; -watermark off leaves it out; diffuse detect says so.
func TestWatermarkAndDetect(t *testing.T) {
	dir := t.TempDir()
	out, _ := trainTiny(t, dir, "-steps", "1")
	ckpt := filepath.Join(out, "checkpoint")
	marked, plain := filepath.Join(dir, "marked.png"), filepath.Join(dir, "plain.png")
	for _, c := range []struct{ path, wm string }{{marked, "on"}, {plain, "off"}} {
		if err := runSample([]string{"-checkpoint", ckpt, "-n", "16", "-steps", "2", "-scale", "8", "-out", c.path,
			"-watermark", c.wm, "-device", "cpu"}); err != nil {
			t.Fatal(err)
		}
	}
	prov, ok := provenanceOf(marked)
	if !ok || prov.Watermark != fmt.Sprintf("%012x", watermark.PayloadFor(prov.Model, prov.Seed)) {
		t.Fatalf("provenance %+v", prov)
	}
	img := readTestPNG(t, marked)
	jpg := filepath.Join(dir, "marked.jpg")
	f, _ := os.Create(jpg)
	jpeg.Encode(f, img, &jpeg.Options{Quality: 75})
	f.Close()
	var b strings.Builder
	for _, p := range []string{marked, jpg, plain} {
		if err := detect(&b, p); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], "watermarked") || !strings.Contains(lines[1], "matches its provenance record") ||
		!strings.Contains(lines[2], "watermarked") || !strings.Contains(lines[3], "no watermark found") {
		t.Errorf("detect said:\n%s", b.String())
	}
	if p, _ := provenanceOf(plain); p.Watermark != "off" {
		t.Errorf("-watermark off recorded %q", p.Watermark)
	}
}
