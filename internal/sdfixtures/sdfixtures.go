// Package sdfixtures finds the Stable Diffusion parity fixtures for tests:
// the folder named by GODIFFUSE_SD_FIXTURES when set, else the project's
// testdata/sd. Fixture folders are told apart by their files, never by
// their names (shared/reference/sd/README.md, "Using other fixture sets").
package sdfixtures

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"testing"
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
