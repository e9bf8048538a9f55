package shaders

import "testing"

// A .spv is stale when its source (or define) changed after the last
// `go generate ./kernels/vulkan`: spv.sum, written with the .spv files,
// records the hash of what they were compiled from.
func TestSPIRVUpToDate(t *testing.T) {
	list, err := List()
	if err != nil {
		t.Fatal(err)
	}
	sums, err := Sums()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range list {
		h, err := EmbeddedSourceHash(e)
		if err != nil {
			t.Fatal(err)
		}
		if sums[e.Name] != h {
			t.Errorf("%s.spv is stale: %s (-D%s) changed since it was compiled; run go generate ./kernels/vulkan", e.Name, e.Source, e.Define)
		}
		if b, err := SPIRV(e.Name); err != nil || len(b) < 20 || b[0] != 0x03 || b[1] != 0x02 || b[2] != 0x23 || b[3] != 0x07 {
			t.Errorf("%s.spv is missing or not SPIR-V (%v)", e.Name, err)
		}
	}
}
