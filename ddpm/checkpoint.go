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
	"strings"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/internal/atomicfile"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/nn/unet"
	"github.com/godiffuse/godiffuse/safetensors"
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
// in by renames; a COMPLETE marker, written last, tells complete folders
// from partial ones, so after a crash at any point the newest complete
// checkpoint is found (under checkpoint, checkpoint.tmp or checkpoint.old)
// and the next save moves it back into place first.
// ---------------------------------------------------------------------------

const (
	stateFile = "train_state.safetensors"
	unetDir   = "unet"
	emaDir    = "unet_ema"
)

// Save writes the checkpoint folder dir atomically (see above): the new
// checkpoint is written to dir.tmp, its marker file last, then swapped in by
// renames. A crash at any point leaves at least one complete checkpoint
// (marker present) among dir, dir.tmp and dir.old, and the newest one is what
// loading finds and what the next Save recovers first.
func (tr *Trainer) Save(dir string) error {
	return SaveFolder(dir, tr.Step, tr.write)
}

// SaveFolder writes a checkpoint-style folder dir atomically: write fills
// dir.tmp (it must write train_state.safetensors, whose metadata "step" is
// step, last), then the COMPLETE marker, then renames swap it in, as
// Trainer.Save does; a crash at any point leaves the newest complete
// folder, which FindCheckpointFolder finds and the next save restores.
func SaveFolder(dir string, step int, write func(tmp string) error) (err error) {
	tmp := dir + ".tmp"
	if err := recoverCheckpoint(dir); err != nil {
		return err
	}
	if err := os.RemoveAll(tmp); err != nil { // an incomplete attempt (recovery kept any complete one)
		return err
	}
	crashPoint("save: old attempt removed")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	defer func() {
		if err != nil { // no partial folder is left behind
			removeCheckpoint(tmp)
		}
	}()
	if err := write(tmp); err != nil {
		return err
	}
	syncDir(tmp)
	crashPoint("save: state written")
	// The marker last: from here on dir.tmp is a complete checkpoint.
	if err := atomicfile.Write(filepath.Join(tmp, completeFile), []byte(strconv.Itoa(step)+"\n")); err != nil {
		return err
	}
	syncDir(tmp)
	crashPoint("save: marker written")
	return swapIn(dir, tmp)
}

// StateFile is the name of a checkpoint's training state.
const StateFile = stateFile

// FindCheckpointFolder returns the newest complete folder among dir and
// what a crash may have left beside it (dir.tmp, dir.old).
func FindCheckpointFolder(dir string) (string, error) { return findCheckpoint(dir) }

// write puts the trainer's files into tmp.
func (tr *Trainer) write(tmp string) error {
	if err := tr.Model.Save(filepath.Join(tmp, unetDir)); err != nil {
		return err
	}
	crashPoint("save: model written")
	if err := tr.EMA.Save(filepath.Join(tmp, emaDir)); err != nil {
		return err
	}
	crashPoint("save: EMA written")
	st, err := tr.Opt.StateDict()
	if err != nil {
		return err
	}
	st = append(st, safetensors.Tensor{Name: "losses", DType: safetensors.F32, Shape: []int{len(tr.Losses)}, F: tr.Losses})
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
	return safetensors.Write(filepath.Join(tmp, stateFile), st, meta)
}

// completeFile marks a checkpoint folder whose every file is written; its
// content is the step.
const completeFile = "COMPLETE"

// swapIn puts the complete folder from (dir.tmp or dir.old) in dir's place:
// from dir.tmp, dir → dir.old, dir.tmp → dir, then dir.old is removed; from
// dir.old (nothing newer survived), whatever is at dir goes first.
func swapIn(dir, from string) error {
	old := dir + ".old"
	if from == old {
		if err := removeCheckpoint(dir); err != nil {
			return err
		}
		crashPoint("swap: dir removed to restore dir.old")
		if err := os.Rename(old, dir); err != nil {
			return err
		}
		syncDir(filepath.Dir(dir))
		return nil
	}
	if err := removeCheckpoint(old); err != nil {
		return err
	}
	crashPoint("swap: stale dir.old removed")
	if _, err := os.Stat(dir); err == nil {
		if err := os.Rename(dir, old); err != nil {
			return err
		}
		syncDir(filepath.Dir(dir))
		crashPoint("swap: dir moved to dir.old")
	}
	if err := os.Rename(from, dir); err != nil {
		return err
	}
	syncDir(filepath.Dir(dir))
	crashPoint("swap: new folder in place")
	return removeCheckpoint(old)
}

// removeCheckpoint deletes a checkpoint folder, its marker first and then
// its training state, so that a crash half-way leaves a folder that is no
// longer taken as complete — not even as a marker-less older-format one,
// which counts as complete while its training state reads.
func removeCheckpoint(dir string) error {
	if err := os.Remove(filepath.Join(dir, completeFile)); err != nil && !os.IsNotExist(err) {
		return err
	}
	syncDir(dir)
	if _, err := os.Stat(filepath.Join(dir, stateFile)); err == nil {
		crashPoint("remove: marker gone, files still there")
		if err := os.Remove(filepath.Join(dir, stateFile)); err != nil {
			return err
		}
		crashPoint("remove: training state gone")
	}
	return os.RemoveAll(dir)
}

// crashHook, set only by the kill test (crash_test.go), is called at every
// point of Save and of recovery where a crash leaves a distinct state on disk.
var crashHook func(point string)

func crashPoint(point string) {
	if crashHook != nil {
		crashHook(point)
	}
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// completeStep reports whether dir holds a complete checkpoint and its step.
// Folders written before the marker existed count as complete when they hold
// a readable training state (its step then comes from the state); dir.tmp
// never does without the marker.
func completeStep(dir string, legacyOK bool) (int, bool) {
	if b, err := os.ReadFile(filepath.Join(dir, completeFile)); err == nil {
		if step, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return step, true
		}
		return 0, false
	}
	if !legacyOK {
		return 0, false
	}
	st, err := safetensors.Read(filepath.Join(dir, stateFile))
	if err != nil {
		return 0, false
	}
	defer st.Close()
	step, err := strconv.Atoi(st.Metadata["step"])
	return step, err == nil
}

// newestCheckpoint returns the newest complete folder among dir, dir.tmp and
// dir.old (ties go to dir, then dir.old).
func newestCheckpoint(dir string) (string, bool) {
	best, bestStep, found := "", 0, false
	for _, c := range []struct {
		path     string
		legacyOK bool
	}{{dir, true}, {dir + ".old", true}, {dir + ".tmp", false}} {
		if step, ok := completeStep(c.path, c.legacyOK); ok && (!found || step > bestStep) {
			best, bestStep, found = c.path, step, true
		}
	}
	return best, found
}

// recoverCheckpoint finishes what a crash interrupted: the newest complete
// folder among dir, dir.tmp and dir.old becomes dir, and the others are
// removed.
func recoverCheckpoint(dir string) error {
	best, ok := newestCheckpoint(dir)
	switch {
	case !ok:
		return nil
	case best != dir:
		return swapIn(dir, best)
	}
	for _, stale := range []string{dir + ".old", dir + ".tmp"} { // dir is the newest: the rest can go
		if _, err := os.Stat(stale); err == nil {
			if err := removeCheckpoint(stale); err != nil {
				return err
			}
		}
	}
	return nil
}

// findCheckpoint returns the newest complete checkpoint among dir and what a
// crash may have left beside it (dir.tmp, dir.old), without changing anything.
func findCheckpoint(dir string) (string, error) {
	if best, ok := newestCheckpoint(dir); ok {
		return best, nil
	}
	return "", fmt.Errorf("%s: not a checkpoint (no complete %s)", dir, stateFile)
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

func readState(dir string) (*safetensors.File, CheckpointInfo, error) {
	st, err := safetensors.Read(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, CheckpointInfo{}, err
	}
	info, err := parseState(st, dir)
	if err != nil {
		st.Close()
		return nil, info, err
	}
	return st, info, nil
}

// parseState reads the run's settings from a training state's metadata,
// validating each field (before anything is allocated from it).
func parseState(st *safetensors.File, dir string) (CheckpointInfo, error) {
	path := st.Path
	info := CheckpointInfo{Dir: dir}
	meta := st.Metadata
	if meta["format"] != "godiffuse-train-state-1" {
		return info, fmt.Errorf("%s: metadata field format is %q, want godiffuse-train-state-1", path, meta["format"])
	}
	var err error
	if info.Config, err = StateTrainConfig(st); err != nil {
		return info, err
	}
	if err := info.Config.Validate(); err != nil {
		return info, fmt.Errorf("%s: metadata field train_config: %v", path, err)
	}
	if info.Step, err = strconv.Atoi(meta["step"]); err != nil || info.Step < 0 {
		return info, fmt.Errorf("%s: metadata field step %q: want a count ≥ 0", path, meta["step"])
	}
	if err := json.Unmarshal([]byte(meta["classes"]), &info.Classes); err != nil {
		return info, fmt.Errorf("%s: metadata field classes: %v", path, err)
	}
	info.Objective, _ = ParseObjective(info.Config.Objective)
	info.Schedule, _ = info.Config.NoiseSchedule()
	return info, nil
}

// SavedTrainConfig reads the training configuration saved in a checkpoint
// folder of any kind (a U-Net's or a text-to-image pipeline's), or in the
// newest complete one a crash left beside it, without loading weights or
// validating the rest.
func SavedTrainConfig(dir string) (TrainConfig, error) {
	var tc TrainConfig
	dir, err := findCheckpoint(dir)
	if err != nil {
		return tc, err
	}
	st, err := safetensors.Read(filepath.Join(dir, stateFile))
	if err != nil {
		return tc, err
	}
	defer st.Close()
	return StateTrainConfig(st)
}

// StateTrainConfig reads the configuration a training state's metadata
// holds (field train_config), unvalidated.
func StateTrainConfig(st *safetensors.File) (TrainConfig, error) {
	var tc TrainConfig
	if err := json.Unmarshal([]byte(st.Metadata["train_config"]), &tc); err != nil {
		return tc, fmt.Errorf("%s: metadata field train_config: %v", st.Path, err)
	}
	return tc, nil
}

// ReadCheckpointInfo reads what a checkpoint folder (or the newest complete
// one a crash left beside it) says about its run, without loading weights.
func ReadCheckpointInfo(dir string) (CheckpointInfo, error) {
	dir, err := findCheckpoint(dir)
	if err != nil {
		return CheckpointInfo{}, err
	}
	st, info, err := readState(dir)
	if err != nil {
		return info, err
	}
	st.Close()
	return info, nil
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
	if IsVolumeCheckpoint(dir) {
		return nil, info, fmt.Errorf("%s holds a 3-D U-Net (%s): sample it with diffuse sample3d", dir, unet.ClassName3D)
	}
	sub := unetDir
	if ema {
		sub = emaDir
	}
	m, err := nn.LoadUNet2D(dev, filepath.Join(dir, sub))
	return m, info, err
}

// IsVolumeCheckpoint reports whether a checkpoint folder holds a UNet3D
// (its unet/config.json names UNet3DModel).
func IsVolumeCheckpoint(dir string) bool {
	dir, err := findCheckpoint(dir)
	if err != nil {
		return false
	}
	raw, err := os.ReadFile(filepath.Join(dir, unetDir, nn.ConfigFile))
	var head struct {
		Class string `json:"_class_name"`
	}
	return err == nil && json.Unmarshal(raw, &head) == nil && head.Class == unet.ClassName3D
}

// resumeTrainer builds the trainer a checkpoint's model config describes:
// a UNet3D on volumes or a UNet2D on images.
func resumeTrainer(dev tensor.Device, cfgPath string, tc TrainConfig, ds data.Dataset) (*Trainer, error) {
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, err
	}
	var head struct {
		Class string `json:"_class_name"`
	}
	if json.Unmarshal(raw, &head) == nil && head.Class == unet.ClassName3D {
		cfg, err := unet.ParseUNet3DConfig(cfgPath, raw)
		if err != nil {
			return nil, err
		}
		vds, ok := ds.(data.VolumeDataset)
		if !ok {
			return nil, fmt.Errorf("the checkpoint is a 3-D U-Net; the data are images, not volumes")
		}
		return NewVolumeTrainer(dev, cfg, tc, vds)
	}
	cfg, err := nn.ParseUNet2DConfig(cfgPath, raw)
	if err != nil {
		return nil, err
	}
	return NewTrainer(dev, cfg, tc, ds)
}

// Resume restores a trainer from a checkpoint folder so that training
// continues exactly; ds must be the dataset the run was started on, and ch
// (the new total step count, a new rate or decay) is applied to the saved
// configuration. What a crash during a save left behind is recovered first
// (the newest complete folder is moved into place).
func Resume(dev tensor.Device, dir string, ds data.Dataset, ch ResumeChanges) (*Trainer, error) {
	if err := recoverCheckpoint(dir); err != nil { // finish what a crash interrupted
		return nil, fmt.Errorf("%s: recovering after a crash: %w", dir, err)
	}
	dir, err := findCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	st, info, err := readState(dir)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	tc, err := ch.Apply(info.Config, info.Step)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	if !slices.Equal(ds.Classes(), info.Classes) {
		return nil, fmt.Errorf("%s: trained on classes %q, the dataset has %q (give -data as the run was started)", dir, info.Classes, ds.Classes())
	}
	tr, err := resumeTrainer(dev, filepath.Join(dir, unetDir, nn.ConfigFile), tc, ds)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	for _, p := range []struct {
		m   Network
		sub string
	}{{tr.Model, unetDir}, {tr.EMA, emaDir}} {
		w, err := safetensors.Read(filepath.Join(dir, p.sub, nn.WeightsFile))
		if err != nil {
			return nil, err
		}
		err = p.m.LoadWeights(w)
		w.Close()
		if err != nil {
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
