package tensor_test

import (
	"fmt"

	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/tensor"
)

// Reverse-mode autograd on a small expression: y = Σ x·x + 3·x, so
// dy/dx = 2x + 3.
func Example() {
	dev := kernels.CPU()
	x := tensor.FromFloat32(dev, []float32{1, 2, 3}, 3).SetRequiresGrad(true)
	y := tensor.Sum(tensor.Add(tensor.Mul(x, x), tensor.Scale(x, 3)))
	y.Backward()
	v, _ := y.Item()
	g, _ := x.Grad().Float32s()
	fmt.Println(v, g)
	// Output: 32 [5 7 9]
}
