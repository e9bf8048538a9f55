//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godiffuse/godiffuse/internal/sdfixtures"
	"github.com/godiffuse/godiffuse/metrics"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/safetensors"
)

// The test binary doubles as the diffuse command: with asDiffuseEnv set it
// runs main, so the bad-input table runs the real command in a process of
// its own — its exit status, its stderr, its time and its memory — without
// a separate build.
const asDiffuseEnv = "GODIFFUSE_TEST_AS_DIFFUSE"

func TestMain(m *testing.M) {
	if os.Getenv(asDiffuseEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// diffuseRun is what one run of the command did.
type diffuseRun struct {
	exit     int // -1: ended by a signal
	stderr   string
	elapsed  time.Duration
	maxRSSMB int64
	timedOut bool
}

// runDiffuse runs `diffuse args…` in dir with extra environment entries,
// killed after limit.
func runDiffuse(t *testing.T, dir string, limit time.Duration, env []string, args ...string) diffuseRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), asDiffuseEnv+"=1"), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	r := diffuseRun{stderr: stderr.String(), elapsed: time.Since(start), timedOut: ctx.Err() != nil}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("diffuse %q did not start: %v", args, err)
	}
	r.exit = cmd.ProcessState.ExitCode()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.maxRSSMB = ru.Maxrss / 1024
	}
	return r
}

// TestNoReexecLoop runs the command with a GODEBUG already set (which
// used to make it restart itself forever) and wants it to finish.
func TestNoReexecLoop(t *testing.T) {
	r := runDiffuse(t, t.TempDir(), 20*time.Second, []string{"GODEBUG=gctrace=0"}, "help")
	if r.timedOut {
		t.Fatal("diffuse help with GODEBUG=gctrace=0 did not finish in 20 s (re-exec loop)")
	}
	if r.exit != 0 {
		t.Fatalf("diffuse help with GODEBUG set: exit %d\n%s", r.exit, r.stderr)
	}
}

// badInputFiles makes the files the bad-input cases point at.
type badInputFiles struct {
	dir        string // everything lives here
	ckpt       string // a good checkpoint of the small test U-Net
	pipe       string // the tiny Stable Diffusion folder (read-only)
	imgs       string // a folder of 4 good 12×10 PNGs
	square     string // a folder of 2 grey 28×28 PNGs (what eval's judge takes)
	empty      string
	corruptDir string // good PNGs and one broken
	garbage    string // a file of text
	png        string // a good 12×10 PNG
}

func makeBadInputFiles(t *testing.T) badInputFiles {
	dir := t.TempDir()
	out, _ := trainTiny(t, dir, "-steps", "1", "-device", "cpu")
	f := badInputFiles{dir: dir, ckpt: filepath.Join(out, "checkpoint"), pipe: sdfixtures.Folders(t, sdfixtures.Pipeline)[0],
		imgs: filepath.Join(dir, "imgs"), square: filepath.Join(dir, "square"), empty: filepath.Join(dir, "empty"), corruptDir: filepath.Join(dir, "corrupt"),
		garbage: filepath.Join(dir, "garbage.txt"), png: filepath.Join(dir, "imgs", "imga.png")}
	mkdirAll(t, f.empty)
	mkdirAll(t, f.square)
	writeGreyPNG(t, filepath.Join(f.square, "a.png"), 28, 28)
	writeGreyPNG(t, filepath.Join(f.square, "b.png"), 28, 28)
	writeImages(t, f.corruptDir, 2)
	writeFile(t, filepath.Join(f.corruptDir, "broken.png"), []byte("\x89PNG\r\n\x1a\nnot really"), 0o644)
	writeFile(t, f.garbage, []byte("not a picture, not a model\n"), 0o644)
	return f
}

// file writes content to name under the files' folder and returns its path.
func (f badInputFiles) file(t *testing.T, name, content string) string {
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// config writes the small U-Net config with one field replaced (a raw JSON
// value) and returns its path.
func (f badInputFiles) config(t *testing.T, field, value string) string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(smallConfig), &m); err != nil {
		t.Fatal(err)
	}
	m[field] = json.RawMessage(value)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return f.file(t, "config-"+strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, field+value)+".json", string(b))
}

// copyOf copies folder src to a new folder and applies edit to the copy.
func (f badInputFiles) copyOf(t *testing.T, src, name string, edit func(dir string)) string {
	dst := filepath.Join(f.dir, name)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	edit(dst)
	return dst
}

// editJSON sets field of the JSON object in path to a raw JSON value.
func editJSON(t *testing.T, path, field, value string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m[field] = json.RawMessage(value)
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// truncate cuts path to n bytes.
func truncate(t *testing.T, path string, n int64) {
	if err := os.Truncate(path, n); err != nil {
		t.Fatal(err)
	}
}

// withStateConfig rewrites a checkpoint's training state with one field of
// its train_config replaced.
func withStateConfig(t *testing.T, ckpt, field, value string) {
	path := filepath.Join(ckpt, "train_state.safetensors")
	st, err := safetensors.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for _, name := range st.Names() {
		tt := safetensors.Tensor{Name: name, DType: st.Tensors[name].DType}
		var err error
		switch tt.DType {
		case safetensors.I64:
			tt.I, tt.Shape, err = st.Int64(name)
		case safetensors.F64:
			tt.D, tt.Shape, err = st.Float64(name)
		default:
			tt.DType = safetensors.F32
			tt.F, tt.Shape, err = st.Float32(name)
		}
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, tt)
	}
	meta := map[string]string{}
	for k, v := range st.Metadata {
		meta[k] = v
	}
	st.Close()
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal([]byte(meta["train_config"]), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg[field] = json.RawMessage(value)
	b, _ := json.Marshal(cfg)
	meta["train_config"] = string(b)
	if err := safetensors.Write(path, ts, meta); err != nil {
		t.Fatal(err)
	}
}

// TestBadInput runs the command on over a hundred bad command lines and
// files (issue 22): every one must exit non-zero with an error that names
// the problem, print no panic trace, finish within its time limit and stay
// within its memory bound, and leave nothing in the folder it ran in.
func TestBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the command over a hundred times")
	}
	f := makeBadInputFiles(t)
	weights := func(dir string) string { return filepath.Join(dir, "unet", nn.WeightsFile) }
	ckptWith := func(name string, edit func(dir string)) string { return f.copyOf(t, f.ckpt, name, edit) }
	pipeWith := func(name string, edit func(dir string)) string { return f.copyOf(t, f.pipe, name, edit) }
	pipeJSON := func(name, file, field, value string) string {
		return pipeWith(name, func(d string) { editJSON(t, filepath.Join(d, file), field, value) })
	}
	data := "folder:" + f.imgs
	type bad struct {
		args []string
		want string // in the error
	}
	var cases []bad
	add := func(want string, args ...string) { cases = append(cases, bad{args, want}) }

	// The command line itself.
	add("usage: diffuse")
	add("unknown command", "frobnicate")
	add("flag provided but not defined: -nosuch", "train", "-nosuch")
	add("unexpected argument", "sample", "-checkpoint", f.ckpt, "extra")
	add(`invalid value "abc" for flag -steps`, "train", "-steps", "abc")
	add(`invalid value "1e3" for flag -n`, "sample", "-n", "1e3")
	add("-device", "train", "-data", data, "-device", "quantum")
	add("vulkan:N", "sample", "-checkpoint", f.ckpt, "-device", "vulkan:-1")
	add("-threads", "train", "-data", data, "-threads", "-1")
	add("-threads", "sample", "-checkpoint", f.ckpt, "-threads", "100000")

	// train: numeric flags, data, configs.
	for _, c := range [][2]string{
		{"-steps", "-3"}, {"-batch", "0"}, {"-batch", "100000000"}, {"-lr", "NaN"}, {"-lr", "Inf"}, {"-lr", "-1"},
		{"-ema", "NaN"}, {"-ema", "1.5"}, {"-ema", "-0.1"}, {"-cond-drop", "NaN"}, {"-cond-drop", "1.5"},
		{"-clip", "NaN"}, {"-clip", "-1"}, {"-min-snr", "NaN"}, {"-min-snr", "-1"}, {"-snr-shift", "NaN"}, {"-snr-shift", "-2"},
		{"-snr-shift", "1e9"}, {"-weight-decay", "NaN"},
		{"-weight-decay", "-1"}, {"-dropout", "NaN"}, {"-dropout", "1"}, {"-timesteps", "1000000000000"},
		{"-timesteps", "0"}, {"-warmup", "-1"}, {"-schedule", "quadratic"}, {"-objective", "score"},
		{"-size", "-1"}, {"-size", "100000"}, {"-checkpoint-every", "-1"}, {"-sample-every", "-1"}, {"-sample-steps", "-1"},
	} {
		add(c[0], "train", "-data", data, c[0], c[1], "-out", "run")
	}
	// train on volumes, sample3d.
	add("shapes3d:N", "train", "-data", "shapes3d:0", "-out", "run")
	add("voxels:PATH", "train", "-data", "voxels:", "-out", "run")
	add("nowhere.npy", "train", "-data", "voxels:"+filepath.Join(f.dir, "nowhere.npy"), "-out", "run")
	add("not a .npy file", "train", "-data", "voxels:"+f.file(t, "fake.npy", "NUMPY but not really"), "-out", "run")
	add("_class_name", "train", "-data", "shapes3d:16", "-config", filepath.Join(f.ckpt, "unet", "config.json"), "-out", "run")
	add("patch_size", "train", "-data", "shapes3d:16", "-config", f.file(t, "p9.json", `{"patch_size": 9}`), "-out", "run")
	add("-size", "train", "-data", "shapes3d:16", "-size", "8", "-out", "run")
	emojiTest := f.file(t, "emoji-test.txt", "1F600 ; fully-qualified # 😀 E1.0 grinning face\n")
	add("nowhere.ttf", "train", "-data", "emoji:"+filepath.Join(f.dir, "nowhere.ttf")+","+emojiTest, "-out", "run")
	add("table directory runs past the file", "train", "-data", "emoji:"+f.garbage+","+emojiTest, "-out", "run")
	add("emoji-test.txt:1", "train", "-data", "emoji:"+f.garbage+","+f.file(t, "bad-emoji-test.txt", "1F600 ; fully-qualified\n"), "-out", "run")
	add("not a 3-D checkpoint", "sample3d", "-checkpoint", f.ckpt, "-out", "m")
	add("-n", "sample3d", "-n", "0")
	add("-format", "sample3d", "-format", "fbx")
	add("-level", "sample3d", "-level", "1")
	add("-guidance", "sample3d", "-guidance", "NaN")
	add("-guidance-interval", "sample3d", "-guidance-interval", "-1,0.5")
	add("-data", "train", "-data", "hub:cifar", "-out", "run")
	add(f.empty, "train", "-data", "folder:"+f.empty, "-out", "run")
	add("broken.png", "train", "-data", "folder:"+f.corruptDir, "-size", "8", "-out", "run")
	add("nowhere", "train", "-data", "folder:"+filepath.Join(f.dir, "nowhere"), "-out", "run")
	add("missing.idx", "train", "-data", "idx:"+filepath.Join(f.dir, "missing.idx"), "-out", "run")
	add("garbage.txt", "train", "-data", "idx:"+f.garbage, "-out", "run")
	add("none.json", "train", "-data", data, "-config", filepath.Join(f.dir, "none.json"), "-out", "run")
	add("not-json.json", "train", "-data", data, "-config", f.file(t, "not-json.json", "{sample_size: 8"), "-out", "run")
	for _, c := range [][3]string{ // field, value, what the error names
		{"num_class_embeds", "1099511627776", "num_class_embeds"},
		{"block_out_channels", "[8, 8388608]", "block_out_channels"},
		{"layers_per_block", "10000000", "layers_per_block"},
		{"sample_size", "1048576", "sample_size"},
		{"sample_size", "-28", "sample_size"},
		{"time_embedding_dim", "1099511627776", "time_embedding_dim"},
		{"down_block_types", `["DownBlock2D", "CrossAttnDownBlock2D"]`, "down_block_types[1]"},
		{"down_block_types", `["DownBlock2D"]`, "down_block_types"},
		{"norm_num_groups", "3", "norm_num_groups"},
		{"in_channels", "0", "in_channels"},
		{"in_channels", `"one"`, "in_channels"},
		{"attention_head_dim", "0", "attention_head_dim"},
		{"block_out_channels", "[]", "block_out_channels"},
		{"act_fn", `"relu6"`, "act_fn"},
	} {
		add(c[2], "train", "-data", data, "-config", f.config(t, c[0], c[1]), "-out", "run")
	}
	add("checkpoint", "train", "-data", data, "-resume", "-out", f.empty)
	add("not a checkpoint", "train", "-resume", "-out", f.empty) // no -data: nothing saved to read it from

	// sample: flags and checkpoints.
	for _, c := range [][2]string{
		{"-n", "-1"}, {"-n", "100000000"}, {"-batch", "100000000"}, {"-steps", "1000000000"}, {"-steps", "-1"},
		{"-guidance", "NaN"}, {"-guidance", "Inf"}, {"-eta", "NaN"}, {"-eta", "-5"}, {"-clip", "NaN"},
		{"-rescale", "2"}, {"-sampler", "plms"}, {"-spacing", "random"}, {"-scale", "0"}, {"-scale", "100000"},
		{"-class", "giraffe"}, {"-guidance-interval", "0.8,0.2"}, {"-guidance-interval", "0.1"},
	} {
		add(c[0], "sample", "-checkpoint", f.ckpt, c[0], c[1], "-out", "s.png")
	}
	add("-scale 16", "sample", "-checkpoint", f.ckpt, "-scale", "16", "-n", "200000", "-out", "s.png")
	add("nope", "sample", "-checkpoint", filepath.Join(f.dir, "nope"), "-out", "s.png")
	add("train_state.safetensors", "sample", "-checkpoint", ckptWith("ck-garbage-state", func(d string) {
		writeFile(t, filepath.Join(d, "train_state.safetensors"), []byte("garbage!garbage!"), 0o644)
	}), "-out", "s.png")
	add(nn.WeightsFile, "sample", "-checkpoint", ckptWith("ck-truncated", func(d string) {
		truncate(t, filepath.Join(d, "unet_ema", nn.WeightsFile), 100)
	}), "-out", "s.png")
	add(nn.WeightsFile, "sample", "-checkpoint", ckptWith("ck-huge-header", func(d string) {
		writeFile(t, filepath.Join(d, "unet_ema", nn.WeightsFile), []byte("\xff\xff\xff\xff\xff\xff\x00\x00{}"), 0o644)
	}), "-out", "s.png")
	add(nn.WeightsFile, "sample", "-checkpoint", ckptWith("ck-no-weights", func(d string) {
		os.Remove(filepath.Join(d, "unet_ema", nn.WeightsFile))
	}), "-out", "s.png")
	add("num_class_embeds", "sample", "-checkpoint", ckptWith("ck-class-embeds", func(d string) {
		editJSON(t, filepath.Join(d, "unet_ema", nn.ConfigFile), "num_class_embeds", "1099511627776")
	}), "-out", "s.png")
	add("the config wants", "sample", "-checkpoint", ckptWith("ck-wide", func(d string) {
		editJSON(t, filepath.Join(d, "unet_ema", nn.ConfigFile), "block_out_channels", "[8, 32]")
	}), "-out", "s.png")
	add("timesteps", "sample", "-checkpoint", ckptWith("ck-timesteps", func(d string) {
		withStateConfig(t, d, "timesteps", "2000000000")
	}), "-out", "s.png")
	add("train_state.safetensors", "sample", "-checkpoint", ckptWith("ck-state-truncated", func(d string) {
		truncate(t, filepath.Join(d, "train_state.safetensors"), 40)
	}), "-out", "s.png")
	add("nowhere", "sample", "-checkpoint", f.ckpt, "-n", "1", "-steps", "1", "-out", filepath.Join(f.dir, "nowhere", "s.png"))
	add("nowhere", "sample", "-checkpoint", f.ckpt, "-n", "1", "-steps", "1", "-gif", filepath.Join(f.dir, "nowhere", "t.gif"), "-out", "s.png")

	// generate and img2img with the tiny Stable Diffusion folder.
	gen := func(want string, args ...string) {
		add(want, append([]string{"generate", "-device", "cpu", "-steps", "1"}, args...)...)
	}
	gen("-model", "-prompt", "x")
	gen("not a diffusers pipeline folder", "-model", f.empty, "-out", "g.png")
	gen("no such file", "-model", filepath.Join(f.dir, "nope"), "-out", "g.png")
	gen("multiples of", "-model", f.pipe, "-width", "41", "-out", "g.png")
	gen("-height", "-model", f.pipe, "-height", "-8", "-out", "g.png")
	gen("4096", "-model", f.pipe, "-width", "1048576", "-out", "g.png")
	gen("-steps 0", "-model", f.pipe, "-steps", "0", "-out", "g.png")
	gen("-steps", "-model", f.pipe, "-steps", "100000", "-out", "g.png")
	gen("-n -1", "-model", f.pipe, "-n", "-1", "-out", "g.png")
	gen("-n", "-model", f.pipe, "-n", "100000000", "-out", "g.png")
	gen("unknown sampler", "-model", f.pipe, "-sampler", "plms", "-out", "g.png")
	gen("-guidance", "-model", f.pipe, "-guidance", "NaN", "-out", "g.png")
	gen("-guidance", "-model", f.pipe, "-guidance", "-Inf", "-out", "g.png")
	gen("-latents", "-model", f.pipe, "-latents", "nofile", "-out", "g.png")
	gen("nosuch", "-model", f.pipe, "-latents", filepath.Join(f.pipe, "io.safetensors")+":nosuch", "-out", "g.png")
	gen("want (1, C, h, w)", "-model", f.pipe, "-latents", filepath.Join(f.pipe, "io.safetensors")+":prompt_embeds", "-out", "g.png")
	gen("one image", "-model", f.pipe, "-latents", filepath.Join(f.pipe, "io.safetensors")+":latents_init", "-n", "2", "-out", "g.png")
	gen("-weights", "-model", f.pipe, "-weights", "f8", "-out", "g.png")
	gen("clip skip", "-model", f.pipe, "-clip-skip", "99", "-out", "g.png")
	gen("clip skip", "-model", f.pipe, "-clip-skip", "-1", "-out", "g.png")
	gen("-out", "-model", f.pipe, "-out", "")
	gen("model_index.json", "-model", pipeWith("sd-no-index", func(d string) { os.Remove(filepath.Join(d, "model_index.json")) }), "-out", "g.png")
	gen("model_index.json", "-model", pipeWith("sd-bad-index", func(d string) {
		writeFile(t, filepath.Join(d, "model_index.json"), []byte("[1, 2"), 0o644)
	}), "-out", "g.png")
	gen(nn.WeightsFile, "-model", pipeWith("sd-no-unet-weights", func(d string) { os.Remove(weights(d)) }), "-out", "g.png")
	gen(nn.WeightsFile, "-model", pipeWith("sd-unet-truncated", func(d string) { truncate(t, weights(d), 1000) }), "-out", "g.png")
	gen("cross_attention_dim", "-model", pipeJSON("sd-cross-dim", "unet/config.json", "cross_attention_dim", "1099511627776"), "-out", "g.png")
	gen("block_out_channels", "-model", pipeJSON("sd-unet-channels", "unet/config.json", "block_out_channels", "[32, 8388608]"), "-out", "g.png")
	gen("layers_per_block", "-model", pipeJSON("sd-unet-layers", "unet/config.json", "layers_per_block", "10000000"), "-out", "g.png")
	gen("hidden_size", "-model", pipeJSON("sd-text-hidden", "text_encoder/config.json", "hidden_size", "1099511627776"), "-out", "g.png")
	gen("num_hidden_layers", "-model", pipeJSON("sd-text-layers", "text_encoder/config.json", "num_hidden_layers", "-3"), "-out", "g.png")
	gen("vocab.json", "-model", pipeWith("sd-vocab", func(d string) {
		writeFile(t, filepath.Join(d, "tokenizer", "vocab.json"), []byte(`{"a": "b"`), 0o644)
	}), "-out", "g.png")
	gen("merges.txt", "-model", pipeWith("sd-merges", func(d string) { os.Remove(filepath.Join(d, "tokenizer", "merges.txt")) }), "-out", "g.png")
	gen("trained_betas", "-model", pipeJSON("sd-betas", "scheduler/scheduler_config.json", "trained_betas", "[0.5, 2, 0.1]"), "-out", "g.png")
	gen("num_train_timesteps", "-model", pipeJSON("sd-timesteps", "scheduler/scheduler_config.json", "num_train_timesteps", "2000000000"), "-out", "g.png")
	gen("beta_schedule", "-model", pipeJSON("sd-schedule", "scheduler/scheduler_config.json", "beta_schedule", `"cubic"`), "-out", "g.png")
	gen("the config wants", "-model", pipeJSON("sd-vae-latents", "vae/config.json", "latent_channels", "7"), "-out", "g.png")
	i2i := func(want string, args ...string) {
		add(want, append([]string{"img2img", "-device", "cpu", "-steps", "1", "-model", f.pipe, "-out", "g.png"}, args...)...)
	}
	i2i("no such file", "-image", filepath.Join(f.dir, "none.png"))
	i2i("not a PNG or JPEG", "-image", f.garbage)
	i2i("-image")
	i2i("-strength", "-image", f.png, "-strength", "0")
	i2i("-strength", "-image", f.png, "-strength", "NaN")
	i2i("-strength", "-image", f.png, "-strength", "1.5")

	// inpaint.
	inp := func(want string, args ...string) {
		add(want, append([]string{"inpaint", "-device", "cpu", "-checkpoint", f.ckpt, "-steps", "2", "-out", "i.png"}, args...)...)
	}
	inp("-image", "-mask-shape", "center")
	inp("exactly one of -mask", "-image", f.png)
	inp("exactly one of -mask", "-image", f.png, "-mask-shape", "center", "-rect", "0,0,2,2")
	inp("-mask-shape", "-image", f.png, "-mask-shape", "star")
	inp("-rect", "-image", f.png, "-rect", "1,2,3")
	inp("-rect", "-image", f.png, "-rect", "0,0,0,4")
	inp("outside", "-image", f.png, "-rect", "40,0,2,2")
	inp("-mask", "-image", f.png, "-mask", f.garbage)
	inp("no such file", "-image", f.png, "-mask", filepath.Join(f.dir, "none.png"))
	inp("no such file", "-image", filepath.Join(f.dir, "none.png"), "-mask-shape", "center")
	inp("not a readable PNG or JPEG", "-image", f.garbage, "-mask-shape", "center")
	inp("-method", "-image", f.png, "-mask-shape", "center", "-method", "blur")
	inp("-jump", "-image", f.png, "-mask-shape", "center", "-jump", "0")
	inp("-resample", "-image", f.png, "-mask-shape", "center", "-resample", "1000")
	inp("-n", "-image", f.png, "-mask-shape", "center", "-n", "100000")
	inp("-guidance", "-image", f.png, "-mask-shape", "center", "-guidance", "NaN")
	inp("nowhere", "-image", f.png, "-mask-shape", "center", "-side-by-side", filepath.Join(f.dir, "nowhere", "s.png"))
	inp("not class-conditional", "-image", f.png, "-mask-shape", "center", "-class", "shoe")

	sdi := func(want string, args ...string) {
		add(want, append([]string{"inpaint", "-device", "cpu", "-model", f.pipe, "-steps", "1", "-out", "i.png"}, args...)...)
	}
	sdi("-image", "-mask-shape", "center")
	sdi("exactly one of -mask", "-image", f.png)
	sdi("-strength", "-image", f.png, "-mask-shape", "center", "-strength", "0")
	sdi("-mask", "-image", f.png, "-mask", f.garbage)
	sdi("-rect", "-image", f.png, "-rect", "1,1")
	sdi("flag provided but not defined: -method", "-image", f.png, "-mask-shape", "center", "-method", "repaint")

	add("-image", "img2img", "-checkpoint", f.ckpt, "-out", "i.png")
	add("-strength", "img2img", "-checkpoint", f.ckpt, "-image", f.png, "-strength", "0", "-out", "i.png")
	add("-strength", "img2img", "-checkpoint", f.ckpt, "-image", f.png, "-strength", "NaN", "-out", "i.png")
	add("nope", "img2img", "-checkpoint", filepath.Join(f.dir, "nope"), "-image", f.png, "-out", "i.png")

	add("-safety", "sample", "-checkpoint", f.ckpt, "-safety", "maybe", "-out", "s.png")
	add("-safety-checker", "sample", "-checkpoint", f.ckpt, "-safety-checker", "nsfw-net", "-out", "s.png")
	add("unicorn", "sample", "-checkpoint", f.ckpt, "-safety-checker", "judge:unicorn", "-out", "s.png")
	add("threshold", "sample", "-checkpoint", f.ckpt, "-safety-checker", "judge:bag:2", "-out", "s.png")
	gen("-safety", "-model", f.pipe, "-safety", "maybe", "-out", "g.png")

	add("-watermark", "sample", "-checkpoint", f.ckpt, "-watermark", "maybe", "-out", "s.png")
	gen("-watermark", "-model", f.pipe, "-watermark", "0", "-out", "g.png")
	// train: the time budget, the LR decay and captioned data.
	add("-time", "train", "-data", data, "-time", "-1s", "-out", "run")
	add("lr-decay", "train", "-data", data, "-lr-decay", "linear", "-out", "run")
	add("shapes:N", "train", "-data", "shapes:0", "-out", "run")
	add("shapes:N", "train", "-data", "shapes:many", "-out", "run")
	add("shapes mix", "train", "-data", "shapes:100,where=2", "-out", "run")
	add("shapes mix", "train", "-data", "shapes:position=-1", "-out", "run")
	add("-freeze-text", "train", "-data", data, "-freeze-text", "-out", "run")
	add("-pretrain-text", "train", "-data", data, "-pretrain-text", "100", "-out", "run")
	add("-pretrain-text", "train", "-data", "shapes", "-pretrain-text", "-5", "-out", "run")
	add("-pretrain-text", "train", "-data", data, "-pretrain-text", "100", "-freeze-text=false", "-out", "run")
	add("-ground-text", "train", "-data", data, "-ground-text", "0.1", "-out", "run")
	add("-ground-text", "train", "-data", "shapes", "-ground-text", "-1", "-out", "run")
	add("-ground-text", "train", "-data", "shapes", "-ground-text", "0.1", "-freeze-text", "-out", "run")
	add("-ground-attention", "train", "-data", data, "-ground-attention", "0.1", "-out", "run")
	add("-ground-attention", "train", "-data", "shapes", "-ground-attention", "-1", "-out", "run")
	add("-ground-attention", "train", "-data", "shapes", "-ground-attention", "NaN", "-out", "run")
	add("-hflip", "train", "-data", "shapes", "-hflip", "-out", "run")
	add("-size and -dropout", "train", "-data", "shapes", "-size", "8", "-out", "run")
	add("not-json.json", "train", "-data", "shapes", "-config", f.file(t, "not-json.json", "{sample_size: 8"), "-out", "run")
	add("_godiffuse_coordinates", "train", "-data", "shapes", "-config", f.file(t, "unet-coord.json",
		`{"_godiffuse_coordinates": "yes"}`), "-out", "run")
	add("in/out_channels", "train", "-data", "shapes", "-config", f.file(t, "grey-cond.json",
		`{"sample_size": 32, "in_channels": 1, "out_channels": 1, "cross_attention_dim": 64}`), "-out", "run")
	add("checkpoint", "train", "-data", "shapes", "-resume", "-out", f.empty)
	add("-text-config", "train", "-data", data, "-text-config", f.file(t, "text.json", "{}"), "-out", "run")
	add("text-not-json.json", "train", "-data", "shapes", "-text-config", f.file(t, "text-not-json.json", "{hidden_size"), "-out", "run")
	add("_godiffuse_bidirectional", "train", "-data", "shapes", "-text-config", f.file(t, "text-bidi.json",
		`{"_godiffuse_bidirectional": "yes"}`), "-out", "run")
	add("hidden_size 128", "train", "-data", "shapes", "-text-config", f.file(t, "text128.json",
		`{"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 1, "num_attention_heads": 4, "max_position_embeddings": 24}`), "-out", "run")

	// serve: flags and models (every case fails before it listens).
	add("-queue", "serve", "-model", f.ckpt, "-queue", "0")
	add("-memory", "serve", "-model", f.ckpt, "-memory", "-1")
	add("-memory", "serve", "-model", f.ckpt, "-memory", "NaN")
	add("-max-body-mb", "serve", "-model", f.ckpt, "-max-body-mb", "0")
	add("-grace", "serve", "-model", f.ckpt, "-grace", "-1s")
	add("-addr", "serve", "-model", f.ckpt, "-addr", "nowhere")
	add("-api-key", "serve", "-model", f.ckpt, "-addr", "0.0.0.0:0")
	add("-safety", "serve", "-model", f.ckpt, "-safety", "maybe")
	add("-watermark", "serve", "-model", f.ckpt, "-watermark", "maybe")
	add("nowhere", "serve", "-model", filepath.Join(f.dir, "nowhere"))
	add(f.empty, "serve", "-model", f.empty)
	add("model_index.json", "serve", "-model", pipeWith("serve-broken-index", func(d string) {
		writeFile(t, filepath.Join(d, "model_index.json"), []byte("{not json"), 0o644)
	}))

	add("give one or more images", "detect")
	add("no such file", "detect", filepath.Join(f.dir, "none.png"))
	add("not a PNG or JPEG", "detect", f.garbage)
	withChecker := func(name, file, content string) string {
		return pipeWith(name, func(d string) {
			_, here, _, _ := runtime.Caller(0)
			src := filepath.Join(filepath.Dir(here), "..", "..", "testdata", "safety", "tiny-safety")
			for _, part := range []string{"safety_checker", "feature_extractor"} {
				mkdirAll(t, filepath.Join(d, part))
				entries, _ := os.ReadDir(filepath.Join(src, part))
				for _, e := range entries {
					b, _ := os.ReadFile(filepath.Join(src, part, e.Name()))
					writeFile(t, filepath.Join(d, part, e.Name()), b, 0o644)
				}
			}
			writeFile(t, filepath.Join(d, file), []byte(content), 0o644)
		})
	}
	gen("safety_checker/config.json", "-model", withChecker("sd-checker-json", "safety_checker/config.json", "{vision"), "-out", "g.png")
	gen("num_attention_heads", "-model", withChecker("sd-checker-heads", "safety_checker/config.json",
		`{"projection_dim": 16, "vision_config": {"hidden_size": 32, "num_attention_heads": 5, "image_size": 32, "patch_size": 8}}`), "-out", "g.png")
	gen("crop_size", "-model", withChecker("sd-checker-crop", "feature_extractor/preprocessor_config.json", `{"crop_size": 0}`), "-out", "g.png")
	gen("model.safetensors", "-model", withChecker("sd-checker-weights", "safety_checker/model.safetensors", "garbage!garbage!"), "-out", "g.png")

	// inspect, eval, noise, schedules.
	add("inspect", "inspect")
	add("no such file", "inspect", filepath.Join(f.dir, "none.png"))
	add("garbage.txt", "inspect", f.garbage)
	add("trunc.png", "inspect", f.file(t, "trunc.png", "\x89PNG\r\n\x1a\n\x00\x00"))
	add("imgs", "inspect", f.imgs)
	add("exactly one", "eval")
	add("exactly one", "eval", "-images", f.square, "-checkpoint", f.ckpt)
	add("no .png", "eval", "-images", f.empty)
	add("-features", "eval", "-images", f.square, "-features", "clip")
	add("-real", "eval", "-images", f.square, "-real", "hub:x")
	add("garbage.txt", "eval", "-images", f.square, "-real", "stats:"+f.garbage)
	mixed := filepath.Join(f.dir, "mixed")
	mkdirAll(t, mixed)
	writeGreyPNG(t, filepath.Join(mixed, "a.png"), 28, 28)
	writeGreyPNG(t, filepath.Join(mixed, "b.png"), 32, 32)
	small := filepath.Join(f.dir, "small")
	mkdirAll(t, small)
	writeGreyPNG(t, filepath.Join(small, "a.png"), 16, 16)
	writeGreyPNG(t, filepath.Join(small, "b.png"), 16, 16)
	foreign := filepath.Join(f.dir, "inception.stats") // statistics of another feature network
	fs, _ := metrics.ComputeStats("pytorch-fid-inception-v3/pool3", &metrics.Features{N: 3, D: 4, Data: []float64{1, 2, 3, 4, 2, 3, 4, 5, 0, 1, 0, 1}})
	if err := metrics.SaveStats(foreign, fs); err != nil {
		t.Fatal(err)
	}
	add("b.png", "eval", "-images", mixed)
	add("1×28×28", "eval", "-images", small)
	add("pytorch-fid-inception-v3/pool3", "eval", "-images", f.square, "-real", "stats:"+foreign)
	add("none.safetensors", "eval", "-images", f.square, "-features", "inception:"+filepath.Join(f.dir, "none.safetensors"))
	add("-save-stats", "eval", "-images", f.square, "-real", "stats:"+foreign, "-save-stats", "x.stats")
	add("-n", "eval", "-checkpoint", f.ckpt, "-n", "-1")
	add("-n", "eval", "-checkpoint", f.ckpt, "-n", "100000000")
	add("-guidance", "eval", "-checkpoint", f.ckpt, "-guidance", "NaN")
	add("-kid-size", "eval", "-images", f.square, "-kid-size", "-1")
	add("-is-splits", "eval", "-images", f.square, "-is-splits", "0")
	add("-schedule", "noise", "-schedule", "quadratic", "-out", "n.png")
	add("-t", "noise", "-t", "1000", "-out", "n.png")
	add("-t", "noise", "-t", "abc", "-out", "n.png")
	add("-scale", "noise", "-scale", "100000", "-out", "n.png")
	add("-size", "noise", "-image", f.png, "-size", "0", "-out", "n.png")
	add("none.png", "noise", "-image", filepath.Join(f.dir, "none.png"), "-out", "n.png")
	add("-index", "noise", "-index", "-1", "-out", "n.png")
	add("-timesteps", "noise", "-timesteps", "0", "-out", "n.png")
	add("-timesteps", "schedules", "-timesteps", "0", "-out", "s.png")
	add("-timesteps", "schedules", "-timesteps", "1000000000000", "-out", "s.png")
	add("nowhere", "schedules", "-out", filepath.Join(f.dir, "nowhere", "s.png"))

	if len(cases) < 100 {
		t.Fatalf("only %d cases", len(cases))
	}
	const limit, memMB = 30 * time.Second, 1500
	for i, c := range cases {
		t.Run(fmt.Sprintf("%03d", i), func(t *testing.T) {
			t.Parallel()
			cwd := t.TempDir()
			r := runDiffuse(t, cwd, limit, nil, c.args...)
			switch {
			case r.timedOut:
				t.Errorf("diffuse %q: still running after %v", c.args, limit)
			case r.exit == 0:
				t.Errorf("diffuse %q: accepted (exit 0)", c.args)
			case r.exit < 0:
				t.Errorf("diffuse %q: killed by a signal\n%s", c.args, r.stderr)
			case strings.Contains(r.stderr, "panic:") || strings.Contains(r.stderr, "goroutine "):
				t.Errorf("diffuse %q: panicked\n%s", c.args, r.stderr)
			case !strings.Contains(r.stderr, c.want):
				t.Errorf("diffuse %q: the error does not mention %q:\n%s", c.args, c.want, r.stderr)
			}
			if r.maxRSSMB > memMB {
				t.Errorf("diffuse %q: %d MB resident, more than %d", c.args, r.maxRSSMB, memMB)
			}
			if left, _ := os.ReadDir(cwd); len(left) > 0 {
				t.Errorf("diffuse %q: left %s behind", c.args, left[0].Name())
			}
		})
	}
}
