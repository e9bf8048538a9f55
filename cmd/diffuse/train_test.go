package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/ddpm"
	"github.com/godiffuse/godiffuse/device"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/pipeline"
	"github.com/godiffuse/godiffuse/pngtext"
)

// TestDefaultTrainingSmoke: the README's main command with its defaults
// (the built-in config, the embedded data, the default hyper-parameters)
// trains, saves and samples; only the step count is cut to 2.
func TestDefaultTrainingSmoke(t *testing.T) {
	out := t.TempDir()
	if err := runTrain([]string{"-steps", "2", "-out", out, "-threads", "0"}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"checkpoint/unet_ema/diffusion_pytorch_model.safetensors", "loss.png", "samples.png"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	info, err := ddpm.ReadCheckpointInfo(filepath.Join(out, "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	want := trainDefaults()
	want.Steps, want.Data = 2, "embedded"
	if info.Config != want {
		t.Errorf("saved config %+v, want the defaults %+v", info.Config, want)
	}
}

// TestStepBudget: the time budget fixes the step count from the speed of
// the timed steps so that training ends finishTime before the budget,
// raises it when later steps run faster (the first ones shared the machine),
// never lowers it before the deadline, and cuts training at the deadline.
func TestStepBudget(t *testing.T) {
	start := time.Unix(1000, 0)
	now := start
	b := newStepBudget(start, 5*time.Minute, 100)
	b.now = func() time.Time { return now }
	total, changes := 0, 0
	step := 100
	run := func(n int, each time.Duration) {
		for range n {
			step++
			now = now.Add(each)
			if n, ok := b.after(step); ok {
				total = n
				changes++
			}
		}
	}
	run(skipWarm+timedSteps, 500*time.Millisecond) // 2 steps/s
	// At the measurement 7.5 s have passed; 300 − 12 − 7.5 s are left at 2 steps/s.
	if want := 100 + skipWarm + timedSteps + int((300-finishTime.Seconds()-7.5)*2); total != want || b.rate != 2 || changes != 1 {
		t.Fatalf("total %d at %.2f steps/s after %d changes, want %d at 2 after 1", total, b.rate, changes, want)
	}
	// Slower for a while: no change before the deadline.
	run(20, time.Second)
	if changes != 1 {
		t.Errorf("the total changed to %d while the machine was slower", total)
	}
	// Then five times as fast for a minute: raised (at most once per tenth
	// of the budget), from the average speed since the first timed step.
	first := total
	run(300, 200*time.Millisecond)
	if changes < 2 || changes > 3 || total <= first {
		t.Fatalf("after faster steps: total %d (was %d), %d changes; want it raised once or twice", total, first, changes)
	}
	if avg := float64(step-100-skipWarm) / (now.Sub(start).Seconds() - 1.5); b.rate > avg+0.01 || b.rate < 2 {
		t.Errorf("re-measured %.3f steps/s; the average is %.3f now and was 2 at first", b.rate, avg)
	}
	now = start.Add(5*time.Minute - finishTime + time.Second)
	if n, ok := b.after(step + 1); !ok || n != step+1 {
		t.Errorf("past the deadline: %d %v, want the current step", n, ok)
	}
}

// BenchmarkDefaultTrainStep times one training step of the default run
// (the built-in tiny-mnist U-Net, batch 32, the embedded data) and reports
// how many fit in the default five minutes.
func BenchmarkDefaultTrainStep(b *testing.B) {
	dev, _, err := device.SelectThreads("cpu", 0)
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := nn.ParseUNet2DConfig("built-in tiny-mnist config", tinyMNISTConfig)
	if err != nil {
		b.Fatal(err)
	}
	ds, err := data.Embedded()
	if err != nil {
		b.Fatal(err)
	}
	tc := trainDefaults()
	tc.Steps = 1 << 20
	tr, err := ddpm.NewTrainer(dev, cfg, tc, ds)
	if err != nil {
		b.Fatal(err)
	}
	for range 3 { // first allocations
		if _, err := tr.TrainStep(); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if _, err := tr.TrainStep(); err != nil {
			b.Fatal(err)
		}
	}
	per := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(tc.Batch)/per, "img/s")
	b.ReportMetric((defaultTime-finishTime).Seconds()/per, "steps/5min")
}

// TestTrainShapesThenGenerateAndServe: diffuse train -data shapes writes a
// pipeline folder that generate loads, resumes it exactly where it
// stopped, and serve finds it in the output folder.
func TestTrainShapesThenGenerateAndServe(t *testing.T) {
	out := t.TempDir()
	args := []string{"-data", "shapes:64", "-steps", "2", "-batch", "2", "-out", out, "-sample-steps", "1", "-device", "cpu"}
	if err := runTrain(args); err != nil {
		t.Fatal(err)
	}
	if err := runTrain([]string{"-resume", "-steps", "3", "-out", out, "-sample-steps", "1", "-device", "cpu"}); err != nil {
		t.Fatal(err)
	}
	if info, err := os.ReadFile(filepath.Join(out, "checkpoint", "COMPLETE")); err != nil || string(info) != "3\n" {
		t.Errorf("after resuming: COMPLETE %q %v", info, err)
	}
	// The folder suggests guidance 3 and its sampler (and 20 steps,
	// overridden here).
	img := filepath.Join(out, "red.png")
	if err := runGenerate([]string{"-model", filepath.Join(out, "checkpoint"), "-prompt", "a red circle", "-steps", "2", "-out", img, "-device", "cpu"}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	chunks, err := pngtext.Read(f)
	f.Close()
	sampler := "Sampler: " + pipeline.TrainedSuggested.Sampler.Label() + ", "
	if err != nil || len(chunks) == 0 || !strings.Contains(chunks[0].Value, "Steps: 2, ") || !strings.Contains(chunks[0].Value, "CFG scale: 3, ") ||
		!strings.Contains(chunks[0].Value, sampler) {
		t.Errorf("parameters %q (%v): want the command line's 2 steps, the folder's guidance 3 and %q", chunks, err, sampler)
	}
	srcs, err := findSources(nil, out)
	if err != nil || len(srcs) != 1 || srcs[0].kind != kindSD {
		t.Errorf("serve's discovery in %s: %+v %v", out, srcs, err)
	}
	if err := runTrain(append(args, "-hflip")); err == nil {
		t.Error("-hflip accepted for captioned data")
	}
}
