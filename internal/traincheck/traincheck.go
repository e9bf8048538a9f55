// Package traincheck holds what the models' tests share about training:
// seeded inputs, and the check that handing a step's buffers back after
// backward (Tensor.BackwardRelease) changes no bit of what training
// computes.
package traincheck

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/tensor"
)

// Random returns n standard normal values drawn from seed.
func Random(n int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// Model is what SameWhenReleased trains: the tensors each step updates,
// and the loss of a step.
type Model struct {
	Params []*tensor.Tensor
	Loss   func(step int) *tensor.Tensor
}

// SameWhenReleased trains the model that build makes twice, steps plain
// gradient steps each: once with Backward on a plain CPU device, once with
// BackwardRelease on a device that recycles every length and fills each
// reused array with NaN, the gradients handed back after each step too (so
// that the next backward's outputs of their lengths take them).
// The parameters must end bit for bit the same: a buffer handed back while
// something still reads it shows, and so does an op that leaves part of an
// output it took uncleared (tensor's emptyOut) unwritten.
func SameWhenReleased(t testing.TB, steps int, build func(dev tensor.Device) Model) {
	t.Helper()
	train := func(dev tensor.Device, release bool) []float32 {
		m := build(dev)
		for step := range steps {
			err := tensor.Catch(func() {
				loss := m.Loss(step)
				if release {
					loss.BackwardRelease()
				} else {
					loss.Backward()
				}
				for _, p := range m.Params {
					p.CopyFrom(tensor.Sub(p.Detach(), tensor.Scale(p.Grad(), 0.05)))
					if release { // the next backward's outputs take them, NaN-filled
						tensor.Release(p.Grad())
					}
					p.ZeroGrad()
				}
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		var all []float32
		for _, p := range m.Params {
			all = append(all, p.MustFloat32s()...)
		}
		return all
	}
	want := train(kernels.NewCPU(2), false)
	if got := train(kernels.PoisonedCPU(2), true); !slices.Equal(got, want) {
		t.Fatal("the parameters after training differ when the step's buffers are handed back after backward")
	}
}
