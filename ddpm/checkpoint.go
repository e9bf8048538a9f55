package ddpm

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// Checkpoints. A checkpoint is a folder:
//
//	unet/        config.json + diffusion_pytorch_model.safetensors   (the trained weights)
//	unet_ema/    the same for the EMA weights (what sampling uses by default)
//	train_state.safetensors   AdamW moments and step counts, the loss history,
//	             and in its metadata the training config, the step, the RNG
//	             state and the class names
//
// Both model folders load in diffusers as UNet2DModel.from_pretrained. A new
// checkpoint is written next to the old one, every file fsynced, and swapped
// in by renames, so the folder named `checkpoint` is always a complete one:
// after a crash mid-write the last good checkpoint is still there (or, at
// worst, under checkpoint.old, which Resume also looks at).
// ---------------------------------------------------------------------------

const (
	stateFile = "train_state.safetensors"
	unetDir   = "unet"
	emaDir    = "unet_ema"
)

// Save writes the checkpoint folder dir atomically (see above).
func (tr *Trainer) Save(dir string) error {
	tmp, old := dir+".tmp", dir+".old"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	if err := tr.Model.Save(filepath.Join(tmp, unetDir)); err != nil {
		return err
	}
	if err := tr.EMA.Save(filepath.Join(tmp, emaDir)); err != nil {
		return err
	}
	st, err := tr.Opt.StateDict()
	if err != nil {
		return err
	}
	st = append(st, nn.STTensor{Name: "losses", DType: nn.STF32, Shape: []int{len(tr.Losses)}, F: tr.Losses})
	rngState, err := tr.pcg.MarshalBinary()
	if err != nil {
		return err
	}
	cfgJSON, err := json.Marshal(tr.Config)
	if err != nil { // a NaN setting cannot be written: refuse rather than leave a state that cannot be read
		return fmt.Errorf("checkpoint: training config: %w", err)
	}
	classes, err := json.Marshal(tr.Classes)
	if err != nil {
		return fmt.Errorf("checkpoint: class names: %w", err)
	}
	meta := map[string]string{
		"format": "godiffuse-train-state-1", "train_config": string(cfgJSON), "step": strconv.Itoa(tr.Step),
		"rng": hex.EncodeToString(rngState), "classes": string(classes),
	}
	if err := nn.WriteSafeTensors(filepath.Join(tmp, stateFile), st, meta); err != nil {
		return err
	}
	syncDir(tmp)
	// Swap: dir -> dir.old, tmp -> dir, drop dir.old.
	os.RemoveAll(old)
	if _, err := os.Stat(dir); err == nil {
		if err := os.Rename(dir, old); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	syncDir(filepath.Dir(dir))
	return os.RemoveAll(old)
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// findCheckpoint returns dir, or dir.old when only that survived a crash.
func findCheckpoint(dir string) (string, error) {
	if _, err := os.Stat(filepath.Join(dir, stateFile)); err == nil {
		return dir, nil
	}
	if _, err := os.Stat(filepath.Join(dir+".old", stateFile)); err == nil {
		return dir + ".old", nil
	}
	return "", fmt.Errorf("%s: not a checkpoint (no %s)", dir, stateFile)
}

// CheckpointInfo is what a checkpoint says about how to sample from it.
type CheckpointInfo struct {
	Dir       string
	Config    TrainConfig
	Step      int
	Classes   []string
	Objective Objective
	Schedule  *Schedule
}

// NullClass is the learned unconditional label (len(Classes)).
func (ci *CheckpointInfo) NullClass() int64 { return int64(len(ci.Classes)) }

func readState(dir string) (*nn.SafeTensors, CheckpointInfo, error) {
	path := filepath.Join(dir, stateFile)
	st, err := nn.ReadSafeTensors(path)
	if err != nil {
		return nil, CheckpointInfo{}, err
	}
	info := CheckpointInfo{Dir: dir}
	meta := st.Metadata
	if meta["format"] != "godiffuse-train-state-1" {
		return nil, info, fmt.Errorf("%s: metadata field format is %q, want godiffuse-train-state-1", path, meta["format"])
	}
	if err := json.Unmarshal([]byte(meta["train_config"]), &info.Config); err != nil {
		return nil, info, fmt.Errorf("%s: metadata field train_config: %v", path, err)
	}
	if err := info.Config.Validate(); err != nil {
		return nil, info, fmt.Errorf("%s: metadata field train_config: %v", path, err)
	}
	if info.Step, err = strconv.Atoi(meta["step"]); err != nil || info.Step < 0 {
		return nil, info, fmt.Errorf("%s: metadata field step %q: want a count ≥ 0", path, meta["step"])
	}
	if err := json.Unmarshal([]byte(meta["classes"]), &info.Classes); err != nil {
		return nil, info, fmt.Errorf("%s: metadata field classes: %v", path, err)
	}
	info.Objective, _ = ParseObjective(info.Config.Objective)
	info.Schedule, _ = NewSchedule(info.Config.Schedule, info.Config.T)
	return st, info, nil
}

// LoadCheckpoint reads a checkpoint folder for sampling: the EMA weights
// (or the raw ones when ema is false) and what the run was trained with.
func LoadCheckpoint(dev tensor.Device, dir string, ema bool) (*nn.UNet2D, CheckpointInfo, error) {
	dir, err := findCheckpoint(dir)
	if err != nil {
		return nil, CheckpointInfo{}, err
	}
	_, info, err := readState(dir)
	if err != nil {
		return nil, info, err
	}
	sub := unetDir
	if ema {
		sub = emaDir
	}
	m, err := nn.LoadUNet2D(dev, filepath.Join(dir, sub))
	return m, info, err
}

// Resume restores a trainer from a checkpoint folder so that training
// continues exactly; ds must be the dataset the run was started on, and
// steps (when > 0) replaces the total step count.
func Resume(dev tensor.Device, dir string, ds data.Dataset, steps int) (*Trainer, error) {
	dir, err := findCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	st, info, err := readState(dir)
	if err != nil {
		return nil, err
	}
	tc := info.Config
	if steps > 0 {
		tc.Steps = steps
	}
	cfg, err := nn.LoadUNet2DConfig(filepath.Join(dir, unetDir, nn.ConfigFile))
	if err != nil {
		return nil, err
	}
	if !slices.Equal(ds.Classes(), info.Classes) {
		return nil, fmt.Errorf("%s: trained on classes %q, the dataset has %q", dir, info.Classes, ds.Classes())
	}
	tr, err := NewTrainer(dev, cfg, tc, ds)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	for _, p := range []struct {
		m   *nn.UNet2D
		sub string
	}{{tr.Model, unetDir}, {tr.EMA, emaDir}} {
		w, err := nn.ReadSafeTensors(filepath.Join(dir, p.sub, nn.WeightsFile))
		if err != nil {
			return nil, err
		}
		if err := p.m.LoadWeights(w); err != nil {
			return nil, err
		}
	}
	if err := tr.Opt.LoadStateDict(st); err != nil {
		return nil, err
	}
	losses, _, err := st.Float32("losses")
	if err != nil {
		return nil, err
	}
	rs, err := hex.DecodeString(st.Metadata["rng"])
	if err == nil {
		err = tr.pcg.UnmarshalBinary(rs)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: metadata field rng: %v", filepath.Join(dir, stateFile), err)
	}
	tr.rng = rand.New(tr.pcg)
	tr.Step, tr.Losses = info.Step, losses
	return tr, nil
}
