// Package tensor holds godiffuse's N-dimensional tensors, the reverse-mode
// autograd tape and the Device interface that compute backends implement.
//
// A Tensor is a view (shape, strides, offset) of a Buffer that lives on a
// Device. Reshape, Permute, Transpose and Narrow make views without copying
// where they can; ops that need dense data call Contiguous first.
//
// Autograd is micrograd-style: each op computes its forward on the device and,
// when one of its inputs requires a gradient, records a closure that computes
// its backward, right beside the forward in the source. Backward walks the
// recorded graph in reverse topological order, accumulates gradients into the
// leaves and releases the graph. When no input requires a gradient nothing is
// recorded, so inference (sampling) keeps memory flat: nn.NoGrad switches a
// model's parameters off for that.
//
// Errors. Shape and device mismatches are programming errors; ops report them
// by panicking with a *tensor.Error that names the op and what was expected.
// Public entry points above this package (nn, ddpm, the CLI) convert those to
// ordinary errors with Catch, so nothing panics out of a public API. Device
// failures surface as errors at the sync points (Float32s, Synchronize).
package tensor
