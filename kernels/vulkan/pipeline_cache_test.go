//go:build !windows

package vulkan

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/godiffuse/godiffuse/tensor"
)

// Compiled pipelines are saved under the cache directory and reused by the
// next process (here: the next Device).
func TestPipelineCacheSaved(t *testing.T) {
	if _, err := Devices(); err != nil {
		if os.Getenv("GODIFFUSE_REQUIRE_VULKAN") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	var took [2]time.Duration
	for i := range 2 {
		d, err := New(-1)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		x := tensor.FromFloat32(d, []float32{1, 2, 3}, 3)
		y := tensor.Square(tensor.Conv2D(x.Reshape(1, 1, 1, 3), tensor.Full(d, 2, 1, 1, 1, 1), nil, 1, tensor.PadAll(0)))
		v := y.MustFloat32s()
		took[i] = time.Since(start)
		if v[2] != 36 {
			t.Fatalf("(2·3)² = %g", v[2])
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		files, _ := filepath.Glob(filepath.Join(os.Getenv("XDG_CACHE_HOME"), "godiffuse", "vulkan-pipelines-*.bin"))
		if len(files) != 1 {
			t.Fatalf("cache files after run %d: %v", i+1, files)
		}
	}
	t.Logf("first run (compiling) %v, second run (cached pipelines) %v", took[0], took[1])
}
