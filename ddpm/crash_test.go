package ddpm

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/godiffuse/godiffuse/kernels"
)

// The kill test (issue 22): a child process trains and saves, and is killed
// (SIGKILL, no deferred code runs) at every crash point of Save and of the
// recovery that the next run performs; a second child is killed again while
// recovering; a third finishes the run. A complete, loadable checkpoint must
// survive every kill after the first save completed, and the finished run
// must be byte-identical to one that was never interrupted.

const (
	crashChildEnv = "GODIFFUSE_CRASH_CHILD" // checkpoint folder of the child run
	crashAtEnv    = "GODIFFUSE_CRASH_AT"    // kill at this crash point (1-based); 0 = never
	crashSteps    = 4                       // the run: 4 steps, a checkpoint every 2
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		at, _ := strconv.Atoi(os.Getenv(crashAtEnv))
		points := 0
		kill := func(string) {
			if points++; points == at {
				p, _ := os.FindProcess(os.Getpid())
				p.Kill()
				select {} // until the signal arrives
			}
		}
		if err := crashChild(childTB{}, dir, kill); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childTB lets the test helpers run outside a test: Fatal ends the child.
type childTB struct{ testing.TB }

func (childTB) Helper() {}
func (childTB) Fatal(args ...any) {
	fmt.Fprintln(os.Stderr, args...)
	os.Exit(2)
}

// crashChild resumes the run in dir (or starts it when no checkpoint is
// there) and trains to crashSteps, saving every 2 steps, with hook called at
// every crash point.
func crashChild(t testing.TB, dir string, hook func(point string)) error {
	dev := kernels.CPU()
	crashHook = hook
	defer func() { crashHook = nil }()
	tr, err := Resume(dev, dir, handful(t), ResumeChanges{})
	if err != nil {
		if _, ferr := findCheckpoint(dir); ferr == nil {
			return err // a checkpoint is there and did not load
		}
		if tr, err = NewTrainer(dev, smallModel(t), trainConfig(crashSteps), handful(t)); err != nil {
			return err
		}
	}
	for tr.Step < crashSteps {
		if _, err := tr.TrainStep(); err != nil {
			return err
		}
		if tr.Step%2 == 0 {
			if err := tr.Save(dir); err != nil {
				return err
			}
		}
	}
	return nil
}

func runCrashChild(t *testing.T, dir string, killAt int) (killed bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, crashAtEnv+"="+strconv.Itoa(killAt))
	out, err := cmd.CombinedOutput()
	if err == nil {
		return false
	}
	if st := cmd.ProcessState; st != nil && !st.Exited() { // ended by a signal: the kill
		return true
	}
	t.Fatalf("child (kill at %d) failed: %v\n%s", killAt, err, out)
	return false
}

func TestKillDuringSaveAndRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts about 50 processes")
	}
	ref := filepath.Join(t.TempDir(), "checkpoint")
	var passed []string
	if err := crashChild(t, ref, func(p string) { passed = append(passed, p) }); err != nil {
		t.Fatal(err)
	}
	firstComplete := 0 // the crash point after which the first checkpoint exists
	for i, p := range passed {
		if p == "save: marker written" {
			firstComplete = i + 1
			break
		}
	}
	files := []string{unetDir + "/" + "diffusion_pytorch_model.safetensors", emaDir + "/diffusion_pytorch_model.safetensors", stateFile}
	for at := 1; at <= len(passed); at++ {
		t.Run(fmt.Sprintf("%02d %s", at, passed[at-1]), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "checkpoint")
			if !runCrashChild(t, dir, at) {
				t.Fatal("the child was not killed")
			}
			if _, _, err := LoadCheckpoint(kernels.CPU(), dir, true); err != nil && at > firstComplete {
				t.Fatalf("no loadable checkpoint after the kill: %v", err)
			}
			// Killed again while recovering (its first crash points are
			// recovery's when the first kill left anything to recover).
			for again := 1; again <= 2; again++ {
				runCrashChild(t, dir, again)
				if _, _, err := LoadCheckpoint(kernels.CPU(), dir, true); err != nil && at > firstComplete {
					t.Fatalf("no loadable checkpoint after a kill during recovery: %v", err)
				}
			}
			if runCrashChild(t, dir, 0) {
				t.Fatal("the last child was killed")
			}
			for _, f := range files {
				want, err := os.ReadFile(filepath.Join(ref, f))
				if err != nil {
					t.Fatal(err)
				}
				got, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from the uninterrupted run's", f)
				}
			}
			for _, suffix := range []string{".tmp", ".old"} {
				if _, err := os.Stat(dir + suffix); err == nil {
					t.Errorf("%s left behind after the run finished", suffix)
				}
			}
		})
	}
}
