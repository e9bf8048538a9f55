package ddpm

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/safetensors"
)

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if info.IsDir() {
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
}

// TestCheckpointSurvivesEveryCrashPoint lays out, by hand, the folders a
// crash can leave at each point of Save and of its recovery (an older
// checkpoint A at step 1, a newer B at step 2 being written), and checks
// that loading finds the newest complete one, that Resume and the next Save
// recover it into place, and that a partial folder is never taken.
func TestCheckpointSurvivesEveryCrashPoint(t *testing.T) {
	dev := kernels.CPU()
	tr, err := NewTrainer(dev, smallModel(t), trainConfig(4), handful(t))
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	save := func(name string) string {
		if _, err := tr.TrainStep(); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(src, name)
		if err := tr.Save(p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b := save("a"), save("b")  // steps 1 and 2
	partial := func(dst string) { // B's files without the marker, some of them missing
		copyTree(t, b, dst)
		os.Remove(filepath.Join(dst, completeFile))
		os.Remove(filepath.Join(dst, stateFile))
	}
	legacy := func(dst string) { // a folder from before the marker existed
		copyTree(t, a, dst)
		os.Remove(filepath.Join(dst, completeFile))
	}
	type layout map[string]func(dst string) // suffix ("", ".tmp", ".old") → content
	full := func(src string) func(string) { return func(dst string) { copyTree(t, src, dst) } }
	for _, c := range []struct {
		name string
		l    layout
		step int // of the checkpoint that must be found
	}{
		{"writing B into .tmp", layout{"": full(a), ".tmp": partial}, 1},
		{"B complete in .tmp", layout{"": full(a), ".tmp": full(b)}, 2},
		{"A moved to .old", layout{".old": full(a), ".tmp": full(b)}, 2},
		{"B in place, A still in .old", layout{"": full(b), ".old": full(a)}, 2},
		{"B in place, .old half removed", layout{"": full(b), ".old": partial}, 2},
		{"only .old survived", layout{".old": full(a), ".tmp": partial}, 1},
		{"recovery crashed after moving A", layout{".old": full(a), ".tmp": full(b)}, 2},
		{"a folder without the marker (older format)", layout{"": legacy}, 1},
		{"legacy in place, B complete in .tmp", layout{"": legacy, ".tmp": full(b)}, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "checkpoint")
			for suffix, fill := range c.l {
				fill(dir + suffix)
			}
			_, info, err := LoadCheckpoint(dev, dir, true)
			if err != nil {
				t.Fatal(err)
			}
			if got := stepOf(t, info.Dir); got != c.step {
				t.Fatalf("loading found step %d (%s), want %d", got, info.Dir, c.step)
			}
			resumed, err := Resume(dev, dir, handful(t), ResumeChanges{})
			if err != nil {
				t.Fatal(err)
			}
			if resumed.Step != c.step {
				t.Fatalf("resumed at step %d, want %d", resumed.Step, c.step)
			}
			if err := resumed.Save(dir); err != nil { // recovers, then writes the same step again
				t.Fatal(err)
			}
			for _, suffix := range []string{".tmp", ".old"} {
				if _, err := os.Stat(dir + suffix); err == nil {
					t.Errorf("%s left behind after a good save", suffix)
				}
			}
			if got, ok := completeStep(dir, false); !ok || got != c.step {
				t.Fatalf("after the save: step %d (complete %v), want %d", got, ok, c.step)
			}
		})
	}
	if _, err := findCheckpoint(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("a missing folder was taken for a checkpoint")
	}
}

func stepOf(t *testing.T, dir string) int {
	st, info, err := readState(dir)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	return info.Step
}

// FuzzTrainState: no training-state file may panic its reader or make it
// allocate from an unchecked field (the seeds include a timesteps of 2e9,
// which once allocated a 2e9-step schedule before any check).
func FuzzTrainState(f *testing.F) {
	good := `{"steps":10,"batch":2,"lr":0.001,"warmup_steps":0,"weight_decay":0.01,"clip_norm":1,"ema_decay":0.99,` +
		`"cond_drop":0.1,"schedule":"linear","timesteps":%d,"objective":"epsilon","min_snr_gamma":0,"seed":1}`
	configs := []string{fmt.Sprintf(good, 1000), fmt.Sprintf(good, 2000000000), fmt.Sprintf(good, -5),
		strings.Replace(fmt.Sprintf(good, 1000), `"seed":1`, `"seed":1,"ground_text":-0.5`, 1)}
	for _, config := range configs {
		meta := map[string]string{"format": "godiffuse-train-state-1", "train_config": config,
			"step": "3", "classes": `["a","b"]`, "rng": "00"}
		path := filepath.Join(f.TempDir(), "state.safetensors")
		if err := safetensors.Write(path, []safetensors.Tensor{{Name: "losses", DType: safetensors.F32, Shape: []int{1}, F: []float32{1}}}, meta); err != nil {
			f.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := safetensors.Parse("fuzz", data)
		if err != nil {
			return
		}
		info, err := parseState(st, "fuzz")
		if err != nil {
			return
		}
		if info.Schedule == nil || info.Schedule.T != info.Config.T {
			t.Fatalf("an accepted state has no schedule of T = %d", info.Config.T)
		}
	})
}
