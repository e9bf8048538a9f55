// Package shaders holds the GLSL compute shaders of the Vulkan backend, one
// file per op family named like its CPU twin in package kernels, and their
// SPIR-V compiled by `go generate ./kernels/vulkan` (glslc), embedded.
package shaders

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// FS holds the sources, the list, the compiled SPIR-V and spv.sum.
//
//go:embed *.comp *.glsl *.spv shaders.txt spv.sum
var FS embed.FS

// Entry is one compiled shader: a source compiled with one -D define.
type Entry struct{ Name, Source, Define string }

func parse(raw []byte) ([]Entry, error) {
	var out []Entry
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("shaders.txt: %q: want name, source and define", line)
		}
		e := Entry{Name: f[0], Source: f[1], Define: f[2]}
		if e.Define == "-" {
			e.Define = ""
		}
		out = append(out, e)
	}
	return out, nil
}

// ParseList reads shaders.txt from a directory (for the generator).
func ParseList(dir string) ([]Entry, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "shaders.txt"))
	if err != nil {
		return nil, err
	}
	return parse(raw)
}

// List returns the embedded shader list.
func List() ([]Entry, error) {
	raw, err := FS.ReadFile("shaders.txt")
	if err != nil {
		return nil, err
	}
	return parse(raw)
}

// SPIRV returns the compiled shader name.
func SPIRV(name string) ([]byte, error) {
	b, err := FS.ReadFile(name + ".spv")
	if err != nil {
		return nil, fmt.Errorf("vulkan: no compiled shader %s.spv (run go generate ./kernels/vulkan)", name)
	}
	return b, nil
}

// SourceHash is the sha256 of an entry's source file, its define and every
// includable *.glsl file, read from dir (a directory path) — what spv.sum
// records.
func SourceHash(dir string, e Entry) (string, error) {
	return hashFrom(os.DirFS(dir), e)
}

// EmbeddedSourceHash is SourceHash over the embedded sources.
func EmbeddedSourceHash(e Entry) (string, error) { return hashFrom(FS, e) }

func hashFrom(fsys fs.FS, e Entry) (string, error) {
	src, err := fs.ReadFile(fsys, e.Source)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write(src)
	h.Write([]byte("\x00" + e.Define))
	includes, err := fs.Glob(fsys, "*.glsl") // sorted
	if err != nil {
		return "", err
	}
	for _, name := range includes {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return "", err
		}
		h.Write([]byte("\x00" + name + "\x00"))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Sums parses the embedded spv.sum.
func Sums() (map[string]string, error) {
	raw, err := FS.ReadFile("spv.sum")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) == 2 && !strings.HasPrefix(line, "#") {
			out[f[0]] = f[1]
		}
	}
	return out, nil
}
