// Package sdfixtures finds the Stable Diffusion parity fixtures for tests:
// the folder named by GODIFFUSE_SD_FIXTURES when set, else the project's
// testdata/sd. Fixture folders are told apart by their files, never by
// their names (shared/reference/sd/README.md, "Using other fixture sets").
package sdfixtures

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/safetensors"
	"github.com/godiffuse/godiffuse/tensor"
)

// Kinds of fixture folder.
const (
	Pipeline = "pipeline" // model_index.json
	CLIP     = "clip"     // config.json with architectures [CLIPTextModel]
	UNet     = "unet"     // config.json with _class_name UNet2DConditionModel
	VAE      = "vae"      // config.json with _class_name AutoencoderKL
)

// Root is the fixture root and whether it came from the environment.
func Root() (string, bool) {
	if d := os.Getenv("GODIFFUSE_SD_FIXTURES"); d != "" {
		return d, true
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "sd"), false
}

// Kind reports what a folder holds ("" when it is no fixture of a known kind).
func Kind(dir string) string {
	if _, err := os.Stat(filepath.Join(dir, "model_index.json")); err == nil {
		return Pipeline
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return ""
	}
	var c struct {
		Architectures []string `json:"architectures"`
		ClassName     string   `json:"_class_name"`
	}
	if json.Unmarshal(b, &c) != nil {
		return ""
	}
	for _, a := range c.Architectures {
		if a == "CLIPTextModel" {
			return CLIP
		}
	}
	switch c.ClassName {
	case "UNet2DConditionModel":
		return UNet
	case "AutoencoderKL":
		return VAE
	}
	return ""
}

// Folders lists the fixture folders of one kind under the root. A kind with
// no folder skips the test; a root from the environment with no fixture of
// any kind fails it.
func Folders(t testing.TB, kind string) []string {
	t.Helper()
	root, fromEnv := Root()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatalf("SD fixtures: %v", err)
	}
	var all, out []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		if k := Kind(dir); k != "" {
			all = append(all, dir)
			if k == kind {
				out = append(out, dir)
			}
		}
	}
	sort.Strings(out)
	if len(all) == 0 {
		t.Fatalf("SD fixtures: %s holds no fixture folder (pipeline, clip, unet or vae)", root)
	}
	if len(out) == 0 {
		if fromEnv {
			t.Skipf("SD fixtures: no %s folder in %s", kind, root)
		}
		t.Fatalf("SD fixtures: no %s folder in %s", kind, root)
	}
	return out
}

// IO reads dir/io.safetensors.
func IO(t testing.TB, dir string) *safetensors.File {
	t.Helper()
	st, err := safetensors.Read(filepath.Join(dir, "io.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Has reports whether the io file holds key.
func Has(st *safetensors.File, key string) bool { _, ok := st.Tensors[key]; return ok }

// Float32 reads a tensor of the io file.
func Float32(t testing.TB, st *safetensors.File, key string) ([]float32, []int) {
	t.Helper()
	v, shape, err := st.Float32(key)
	if err != nil {
		t.Fatal(err)
	}
	return v, shape
}

// Int64 reads an integer tensor of the io file.
func Int64(t testing.TB, st *safetensors.File, key string) []int64 {
	t.Helper()
	v, _, err := st.Int64(key)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Compare checks got against the io file's key: same shape and
// max|Δ| ≤ tol·max|ref| (the README's tolerance convention). It returns the
// measured relative error.
func Compare(t testing.TB, st *safetensors.File, key string, got *tensor.Tensor, tol float64) float64 {
	t.Helper()
	want, shape := Float32(t, st, key)
	if got == nil {
		t.Errorf("%s: no value", key)
		return math.Inf(1)
	}
	if !slices.Equal(got.Shape(), shape) {
		t.Errorf("%s: shape %v, want %v", key, got.Shape(), shape)
		return math.Inf(1)
	}
	g, err := got.Float32s()
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return CompareValues(t, key, g, want, tol)
}

// CompareValues is Compare on plain slices.
func CompareValues(t testing.TB, key string, got, want []float32, tol float64) float64 {
	t.Helper()
	ref, diff := 0.0, 0.0
	for i := range want {
		ref = max(ref, math.Abs(float64(want[i])))
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		diff = max(diff, d)
	}
	rel := diff / max(ref, 1e-30)
	if rel > tol {
		t.Errorf("%s: max|Δ| %.3g = %.3g of max|ref| %.3g (tolerance %.1g)", key, diff, rel, ref, tol)
	}
	return rel
}

// Uint8 reads a U8 tensor of the io file.
func Uint8(t testing.TB, st *safetensors.File, key string) []uint8 {
	t.Helper()
	v, _, err := st.Uint8(key)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// CheckGrads compares the gradients the io file lists in its grad_params
// metadata with the parameters' (by name), and fails when none is checked.
func CheckGrads(t testing.TB, st *safetensors.File, params []nn.Param, tol float64) {
	t.Helper()
	byName := map[string]nn.Param{}
	for _, p := range params {
		byName[p.Name] = p
	}
	n := 0
	for _, name := range strings.Split(st.Metadata["grad_params"], ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		p, ok := byName[name]
		if !ok {
			t.Errorf("grad_params names %q, which the model does not have", name)
			continue
		}
		Compare(t, st, "grad/"+name, p.T.Grad(), tol)
		n++
	}
	if n == 0 {
		t.Error("no parameter gradients checked")
	}
}
