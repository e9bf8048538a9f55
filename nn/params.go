package nn

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/godiffuse/godiffuse/safetensors"
	"github.com/godiffuse/godiffuse/tensor"
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
	// Storage says when Linear and Conv2d weights (Param.Matrix) are kept in
	// half precision on devices that can (tensor.HalfDevice).
	Storage Storage
	// Device receives parameters built on tensor.ShapesOnly (each gets its
	// buffer there as it is read, so no placeholder memory is ever touched).
	Device tensor.Device
}

// Storage is the precision loaded weights are kept in.
type Storage int

// Storages. Half-precision weights are for inference: they take no
// gradient; values outside half's range are refused.
const (
	// StoreF32 keeps every weight in float32 (the default; training).
	StoreF32 Storage = iota
	// StoreAsFile keeps the Linear and Conv2d weights that the file holds
	// in F16 in half precision, the rest in float32.
	StoreAsFile
	// StoreF16 keeps every Linear and Conv2d weight in half precision.
	StoreF16
)

var storageNames = [...]string{"f32", "auto", "f16"}

func (s Storage) String() string { return storageNames[s] }

// ParseStorage reads "f32", "f16" or "auto" (StoreAsFile).
func ParseStorage(s string) (Storage, error) {
	for i, n := range storageNames {
		if s == n {
			return Storage(i), nil
		}
	}
	return 0, fmt.Errorf("weights %q: want f32, f16 or auto", s)
}

// LoadParams copies every parameter of ps from st, strictly: every model key
// must be present with the right shape, and no file key may be left over
// (except those opt.Ignore names). F32, F16, BF16 and F64 tensors are
// converted to float32. Errors name the file and the tensor.
func LoadParams(ps []Param, st *safetensors.File, opt LoadOptions) error {
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
		key := byName[p.Name]
		info := st.Tensors[key]
		if !slices.Equal(info.Shape, p.T.Shape()) {
			return fmt.Errorf("%s: tensor %q has shape %v, the config wants %v", st.Path, key, info.Shape, p.T.Shape())
		}
		dev := p.T.Device()
		if p.T.IsShapesOnly() {
			if opt.Device == nil {
				return fmt.Errorf("%s: parameter %q has no device to load onto", st.Path, p.Name)
			}
			dev = opt.Device
		}
		var err error
		half := opt.Storage == StoreF16 || (opt.Storage == StoreAsFile && info.DType == safetensors.F16)
		if hd, ok := dev.(tensor.HalfDevice); ok && half && p.Matrix {
			err = loadHalf(hd, p.T, st, key)
		} else {
			err = loadFloat(dev, p.T, st, key)
		}
		if err != nil {
			return fmt.Errorf("%s: tensor %q: %w", st.Path, key, err)
		}
		st.DropPages(key)
	}
	return nil
}

// loadFloat fills t (binding it to a new buffer on dev first when it is
// shapes only) with st's tensor key in float32.
func loadFloat(dev tensor.Device, t *tensor.Tensor, st *safetensors.File, key string) error {
	v, _, err := st.Float32(key)
	if err != nil {
		return err
	}
	if t.IsShapesOnly() {
		buf, err := dev.Alloc(tensor.F32, len(v))
		if err != nil {
			return err
		}
		if err := t.Bind(buf); err != nil {
			return err
		}
	}
	return dev.UploadF32(t.Buffer(), 0, v)
}

// loadHalf binds t to a new half-precision buffer holding st's tensor key.
func loadHalf(dev tensor.HalfDevice, t *tensor.Tensor, st *safetensors.File, key string) error {
	h, _, err := st.Half(key)
	if err != nil {
		return err
	}
	for i, v := range h {
		if v&0x7c00 == 0x7c00 {
			return fmt.Errorf("value %d is not finite in half precision (%v): load this model in float32", i, safetensors.F16ToF32(v))
		}
	}
	buf, err := dev.Alloc(tensor.F16, len(h))
	if err != nil {
		return err
	}
	if err := dev.UploadF16(buf, 0, h); err != nil {
		return err
	}
	t.SetRequiresGrad(false)
	return t.Bind(buf)
}

// NoGrad pauses gradients for every parameter of ps, so forward passes
// record nothing (inference); it returns the function that resumes them.
// Pauses nest and are safe from many goroutines at once: goroutines that
// each take NoGrad around their own forward passes of one model may run in
// parallel (a parameter records again only when the last one resumes).
func NoGrad(ps []Param) (restore func()) {
	for _, p := range ps {
		p.T.PauseGrad()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			for _, p := range ps {
				p.T.ResumeGrad()
			}
		})
	}
}

// Freeze marks the weights of ps unchanging until thaw (tensor.Freeze), as
// a sampler's loop does around its model calls: the device then keeps its
// prepared forms of them (packed, Winograd-transformed) without checking
// their contents at every call, and writing one fails until thaw.
func Freeze(ps []Param) (thaw func()) {
	ts := make([]*tensor.Tensor, len(ps))
	for i, p := range ps {
		ts[i] = p.T
	}
	return tensor.Freeze(ts...)
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
func StateDict(ps []Param) ([]safetensors.Tensor, error) {
	var out []safetensors.Tensor
	for _, p := range ps {
		v, err := p.T.Float32s()
		if err != nil {
			return nil, fmt.Errorf("download %s: %w", p.Name, err)
		}
		out = append(out, safetensors.Tensor{Name: p.Name, DType: safetensors.F32, Shape: slices.Clone(p.T.Shape()), F: v})
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
