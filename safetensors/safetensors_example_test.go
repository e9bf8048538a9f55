package safetensors_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/godiffuse/godiffuse/safetensors"
)

// Writing and reading safetensors: the file is written atomically (a
// temporary file, fsynced and renamed), and reading maps it.
func ExampleWrite() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "weights.safetensors")
	err := safetensors.Write(path, []safetensors.Tensor{
		{Name: "w", DType: safetensors.F32, Shape: []int{2, 2}, F: []float32{1, 2, 3, 4}},
		{Name: "h", DType: safetensors.F16, Shape: []int{2}, F: []float32{0.5, -1}},
	}, map[string]string{"format": "pt"})
	if err != nil {
		panic(err)
	}
	st, err := safetensors.Read(path)
	if err != nil {
		panic(err)
	}
	defer st.Close()
	w, shape, _ := st.Float32("w")
	h, _, _ := st.Float32("h")
	fmt.Println(st.Names(), shape, w, h, st.Metadata["format"])
	// Output: [h w] [2 2] [1 2 3 4] [0.5 -1] pt
}
