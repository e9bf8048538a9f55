//go:build amd64 && !noasm

package asm

// Available reports whether the assembly kernels are built in.
const Available = true
