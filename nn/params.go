package nn

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// ---------------------------------------------------------------------------
// What every model does with its parameter list: bind weights from a file,
// switch gradients off for inference, count.
// ---------------------------------------------------------------------------

// LoadOptions adapts a file's key names to a model's.
type LoadOptions struct {
	// Rename maps a file key to the model key (e.g. legacy attention names);
	// nil keeps keys as they are.
	Rename func(string) string
	// Ignore reports file keys that are not parameters and may be left over
	// (e.g. the position_ids buffer of old CLIP files); nil ignores none.
	Ignore func(string) bool
}

// LoadParams copies every parameter of ps from st, strictly: every model key
// must be present with the right shape, and no file key may be left over
// (except those opt.Ignore names). F32, F16, BF16 and F64 tensors are
// converted to float32. Errors name the file and the tensor.
func LoadParams(ps []Param, st *SafeTensors, opt LoadOptions) error {
	byName := map[string]string{} // model key -> file key
	for _, k := range st.Names() {
		if opt.Ignore != nil && opt.Ignore(k) {
			continue
		}
		nk := k
		if opt.Rename != nil {
			nk = opt.Rename(k)
		}
		if prev, dup := byName[nk]; dup {
			return fmt.Errorf("%s: tensors %q and %q both map to %q", st.Path, prev, k, nk)
		}
		byName[nk] = k
	}
	var missing []string
	for _, p := range ps {
		if _, ok := byName[p.Name]; !ok {
			missing = append(missing, p.Name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s: %d parameters missing, e.g. %s", st.Path, len(missing), strings.Join(missing[:min(len(missing), 5)], ", "))
	}
	if len(byName) != len(ps) {
		known := map[string]bool{}
		for _, p := range ps {
			known[p.Name] = true
		}
		var extra []string
		for k, orig := range byName {
			if !known[k] {
				extra = append(extra, orig)
			}
		}
		sort.Strings(extra)
		return fmt.Errorf("%s: %d unexpected tensors for this config, e.g. %s", st.Path, len(extra), strings.Join(extra[:min(len(extra), 5)], ", "))
	}
	for _, p := range ps {
		info := st.Tensors[byName[p.Name]]
		if !slices.Equal(info.Shape, p.T.Shape()) {
			return fmt.Errorf("%s: tensor %q has shape %v, the config wants %v", st.Path, byName[p.Name], info.Shape, p.T.Shape())
		}
		v, _, err := st.Float32(byName[p.Name])
		if err != nil {
			return err
		}
		if err := p.T.Device().UploadF32(p.T.Buffer(), 0, v); err != nil {
			return fmt.Errorf("%s: tensor %q: %w", st.Path, byName[p.Name], err)
		}
	}
	return nil
}

// NoGrad turns off gradients for every parameter of ps, so forward passes
// record nothing (inference). It returns a function that restores them.
func NoGrad(ps []Param) (restore func()) {
	was := make([]bool, len(ps))
	for i, p := range ps {
		was[i] = p.T.RequiresGrad()
		p.T.SetRequiresGrad(false)
	}
	return func() {
		for i, p := range ps {
			p.T.SetRequiresGrad(was[i])
		}
	}
}

// CountParams is the number of scalars in ps.
func CountParams(ps []Param) int {
	n := 0
	for _, p := range ps {
		n += p.T.Numel()
	}
	return n
}

// StateDict downloads every parameter of ps as float32 safetensors entries.
func StateDict(ps []Param) ([]STTensor, error) {
	var out []STTensor
	for _, p := range ps {
		v, err := p.T.Float32s()
		if err != nil {
			return nil, fmt.Errorf("download %s: %w", p.Name, err)
		}
		out = append(out, STTensor{Name: p.Name, DType: STF32, Shape: slices.Clone(p.T.Shape()), F: v})
	}
	return out, nil
}

// FindWeights returns the safetensors file of a model folder: base +
// ".safetensors", else the half-precision variant base + ".fp16.safetensors"
// (diffusers' variant naming). The error lists what was looked for.
func FindWeights(dir, base string) (string, error) {
	var tried []string
	for _, name := range []string{base + ".safetensors", base + ".fp16.safetensors"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		tried = append(tried, name)
	}
	return "", fmt.Errorf("%s: no weights (looked for %s; .bin/.ckpt pickles are not read: convert them to safetensors)", dir, strings.Join(tried, ", "))
}
