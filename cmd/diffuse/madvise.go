package main

import (
	"os"
	"runtime"
	"strings"
	"syscall"
)

// useMADVFree restarts the process, once, with GODEBUG=madvdontneed=0, so
// that Go returns freed heap memory to the kernel with MADV_FREE instead of
// MADV_DONTNEED. A training or sampling step frees and reallocates all of
// its activations; with MADV_DONTNEED each reuse page-faults the memory back
// in. Measured on 120 default training steps (three pairs): system time
// 28–30 s → 6–8 s, wall time 0–16 % less; the tiny-mnist forward benchmark
// +12–19 %, same peak RSS (bench/RESULTS.md 2026-11-27b). Go reads this setting only from the
// environment at start-up, hence the exec. Any madvdontneed already in
// GODEBUG (=1 keeps Go's default) is left alone, and on failure the process
// simply goes on as it is.
func useMADVFree() {
	godebug := os.Getenv("GODEBUG")
	if runtime.GOOS != "linux" || strings.Contains(godebug, "madvdontneed=") {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	if godebug != "" {
		godebug += ","
	}
	env := append(os.Environ(), "GODEBUG="+godebug+"madvdontneed=0")
	_ = syscall.Exec(exe, os.Args, env) // returns only if it failed
}
