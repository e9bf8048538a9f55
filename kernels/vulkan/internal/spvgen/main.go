// Command spvgen compiles the compute shaders listed in
// kernels/vulkan/shaders/shaders.txt to SPIR-V with glslc (Debian package
// glslc) and records a hash of each one's source in shaders/spv.sum, which a
// test compares so that a stale .spv cannot go unnoticed. It runs from
// `go generate ./kernels/vulkan`.
package main

import (
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/godiffuse/godiffuse/kernels/vulkan/shaders"
)

func main() {
	dir := "shaders"
	list, err := shaders.ParseList(dir)
	if err != nil {
		log.Fatal(err)
	}
	sum := "# sha256 of each shader's source and define; written by spvgen with the .spv files\n"
	for _, s := range list {
		args := []string{"-fshader-stage=compute", "--target-env=vulkan1.1", "-O", "-o", filepath.Join(dir, s.Name+".spv")}
		for _, d := range strings.Split(s.Define, ",") {
			if d != "" {
				args = append(args, "-D"+d)
			}
		}
		args = append(args, filepath.Join(dir, s.Source))
		if out, err := exec.Command("glslc", args...).CombinedOutput(); err != nil {
			log.Fatalf("glslc %v: %v\n%s", args, err, out)
		}
		h, err := shaders.SourceHash(dir, s)
		if err != nil {
			log.Fatal(err)
		}
		sum += fmt.Sprintf("%s %s\n", s.Name, h)
	}
	if err := os.WriteFile(filepath.Join(dir, "spv.sum"), []byte(sum), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("compiled %d shaders\n", len(list))
}
