package main

import (
	"os"
	"runtime"
	"strings"
	"syscall"
)

// reexecMarker is set in the environment of the restarted process, so that
// it never restarts again whatever GODEBUG holds.
const reexecMarker = "GODIFFUSE_REEXECED"

// useMADVFree restarts the process (training and pixel-space sampling), once, with GODEBUG=madvdontneed=0, so
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
	if runtime.GOOS != "linux" || os.Getenv(reexecMarker) != "" {
		return
	}
	if len(os.Args) > 1 && (os.Args[1] == "generate" || os.Args[1] == "img2img") {
		// Stable Diffusion runs care about their peak memory more: freed pages
		// kept by MADV_FREE count in the resident set until the kernel takes
		// them (4.53 GB against 4.07 GB at GOGC=20, bench/RESULTS.md).
		return
	}
	env, ok := madvFreeEnv(os.Environ())
	if !ok {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	_ = syscall.Exec(exe, os.Args, env) // returns only if it failed
}

// madvFreeEnv returns env with madvdontneed=0 added to its GODEBUG entry
// (replacing that entry, not adding a second one: the runtime reads only the
// first) and the re-exec marker set; ok is false when GODEBUG already names
// madvdontneed, or when the marker is there.
func madvFreeEnv(environ []string) (env []string, ok bool) {
	godebug, found := "", false
	for _, kv := range environ {
		if strings.HasPrefix(kv, reexecMarker+"=") {
			return nil, false
		}
		if v, isGODEBUG := strings.CutPrefix(kv, "GODEBUG="); isGODEBUG && !found {
			godebug, found = v, true
		}
	}
	for _, setting := range strings.Split(godebug, ",") {
		if strings.HasPrefix(strings.TrimSpace(setting), "madvdontneed=") {
			return nil, false
		}
	}
	if godebug != "" {
		godebug += ","
	}
	godebug += "madvdontneed=0"
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "GODEBUG=") {
			env = append(env, kv)
		}
	}
	return append(env, "GODEBUG="+godebug, reexecMarker+"=1"), true
}
