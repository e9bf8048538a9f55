// Command spvgen compiles the compute shaders listed in
// kernels/vulkan/shaders/shaders.txt to SPIR-V and records a hash of each
// one's source in shaders/spv.sum, which a test compares so that a stale .spv
// cannot go unnoticed. It runs from `go generate ./kernels/vulkan`.
//
// Most shaders compile with glslc (Debian package glslc). Those that use
// GL_KHR_cooperative_matrix need glslang 13 or newer, which Debian 12 lacks:
// spvgen takes the command in $GODIFFUSE_GLSLANG (scripts/khr_toolchain.sh
// makes one from Debian 13's packages) or a glslang on PATH that is new
// enough. Without one it keeps the committed .spv of such a shader as long
// as its source is unchanged, and fails otherwise.
package main

import (
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/godiffuse/godiffuse/kernels/vulkan/shaders"
)

var khrExtension = regexp.MustCompile(`(?m)^\s*#extension\s+GL_KHR_cooperative_matrix\b`)

func main() {
	dir := "shaders"
	list, err := shaders.ParseList(dir)
	if err != nil {
		log.Fatal(err)
	}
	old, err := shaders.Sums() // as embedded when spvgen was built: the committed sums
	if err != nil {
		log.Fatal(err)
	}
	glslang, why := newGlslang()
	sum := "# sha256 of each shader's source and define; written by spvgen with the .spv files\n"
	kept := 0
	for _, s := range list {
		h, err := shaders.SourceHash(dir, s)
		if err != nil {
			log.Fatal(err)
		}
		src := filepath.Join(dir, s.Source)
		text, err := os.ReadFile(src)
		if err != nil {
			log.Fatal(err)
		}
		var defines []string
		for _, d := range strings.Split(s.Define, ",") {
			if d != "" {
				defines = append(defines, "-D"+d)
			}
		}
		out := filepath.Join(dir, s.Name+".spv")
		var cmd []string
		switch {
		case !khrExtension.Match(text):
			cmd = append([]string{"glslc", "-fshader-stage=compute", "--target-env=vulkan1.1", "-O", "-o", out}, defines...)
		case glslang != nil:
			cmd = append(append(glslang, "-V", "--target-env", "vulkan1.1", "-S", "comp", "-o", out), defines...)
		case old[s.Name] == h:
			kept++
			sum += fmt.Sprintf("%s %s\n", s.Name, h)
			continue
		default:
			log.Fatalf("%s (-D%s) changed and needs glslang ≥ 13 to compile: %s; run scripts/khr_toolchain.sh and set GODIFFUSE_GLSLANG as it says", s.Source, s.Define, why)
		}
		cmd = append(cmd, src)
		if b, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			log.Fatalf("%v: %v\n%s", cmd, err, b)
		}
		sum += fmt.Sprintf("%s %s\n", s.Name, h)
	}
	if err := os.WriteFile(filepath.Join(dir, "spv.sum"), []byte(sum), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("compiled %d shaders", len(list)-kept)
	if kept > 0 {
		fmt.Printf("; kept the committed SPIR-V of %d unchanged cooperative-matrix shaders (%s)", kept, why)
	}
	fmt.Println()
}

// newGlslang returns the command of a glslang that compiles
// GL_KHR_cooperative_matrix (major version ≥ 13), or nil and why not.
func newGlslang() ([]string, string) {
	cmd := strings.Fields(os.Getenv("GODIFFUSE_GLSLANG"))
	if len(cmd) == 0 {
		cmd = []string{"glslang"}
	}
	b, err := exec.Command(cmd[0], append(cmd[1:], "--version")...).Output()
	if err != nil {
		return nil, fmt.Sprintf("no %q: %v", strings.Join(cmd, " "), err)
	}
	m := regexp.MustCompile(`Glslang Version: \d+:(\d+)\.`).FindSubmatch(b)
	if m == nil {
		return nil, fmt.Sprintf("%q printed no version", strings.Join(cmd, " "))
	}
	if v, _ := strconv.Atoi(string(m[1])); v < 13 {
		return nil, fmt.Sprintf("%q is glslang %d", strings.Join(cmd, " "), v)
	}
	return cmd, ""
}
