package tensor

import "fmt"

// Error is what ops panic with on misuse: a shape that does not fit, a dtype
// or a device that does not match.
type Error struct {
	Op  string // the op, e.g. "conv2d"
	Msg string // what was wrong and what was expected
}

func (e *Error) Error() string { return "tensor: " + e.Op + ": " + e.Msg }

func fail(op, format string, args ...any) {
	panic(&Error{Op: op, Msg: fmt.Sprintf(format, args...)})
}

// Catch runs fn and turns a *tensor.Error panic into an error. Other panics
// (bugs) are not swallowed.
func Catch(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(*Error); ok {
				err = e
				return
			}
			panic(r)
		}
	}()
	fn()
	return nil
}
