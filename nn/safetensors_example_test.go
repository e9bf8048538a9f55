package nn_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/godiffuse/godiffuse/nn"
)

// Writing and reading safetensors: the file is written atomically (a
// temporary file, fsynced and renamed), and reading maps it.
func ExampleWriteSafeTensors() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "weights.safetensors")
	err := nn.WriteSafeTensors(path, []nn.STTensor{
		{Name: "w", DType: nn.STF32, Shape: []int{2, 2}, F: []float32{1, 2, 3, 4}},
		{Name: "h", DType: nn.STF16, Shape: []int{2}, F: []float32{0.5, -1}},
	}, map[string]string{"format": "pt"})
	if err != nil {
		panic(err)
	}
	st, err := nn.ReadSafeTensors(path)
	if err != nil {
		panic(err)
	}
	defer st.Close()
	w, shape, _ := st.Float32("w")
	h, _, _ := st.Float32("h")
	fmt.Println(st.Names(), shape, w, h, st.Metadata["format"])
	// Output: [h w] [2 2] [1 2 3 4] [0.5 -1] pt
}
