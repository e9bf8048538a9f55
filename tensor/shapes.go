package tensor

// ShapesOnly returns a device whose buffers hold no data: tensors made on
// it have shapes and nothing else. Models are built on it to list their
// parameters (names and shapes) without memory, and loaders then Bind each
// parameter to a buffer on the real device, filled from the file. Only
// Alloc and Fill work on it; any op panics with a *Error.
func ShapesOnly() Device { return shapesDevice{} }

type shapesDevice struct{ Device }

type shapesBuffer struct {
	dt DType
	n  int
}

func (b shapesBuffer) Device() Device { return shapesDevice{} }
func (b shapesBuffer) DType() DType   { return b.dt }
func (b shapesBuffer) Len() int       { return b.n }

func (shapesDevice) Name() string { return "shapes-only" }

func (shapesDevice) Alloc(dt DType, n int) (Buffer, error) { return shapesBuffer{dt, n}, nil }

func (shapesDevice) Fill(Buffer, int, float32) {}

// IsShapesOnly reports whether t lives on a ShapesOnly device (no data yet).
func (t *Tensor) IsShapesOnly() bool { return IsShapesOnlyDevice(t.dev) }

// IsShapesOnlyDevice reports whether dev is a ShapesOnly device.
func IsShapesOnlyDevice(dev Device) bool {
	_, ok := dev.(shapesDevice)
	return ok
}
