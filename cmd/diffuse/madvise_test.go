package main

import (
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"
)

func TestMADVFreeEnv(t *testing.T) {
	cases := []struct {
		in      []string
		wantOK  bool
		godebug string
	}{
		{[]string{"PATH=/bin"}, true, "GODEBUG=madvdontneed=0"},
		{[]string{"GODEBUG=gctrace=0", "PATH=/bin"}, true, "GODEBUG=gctrace=0,madvdontneed=0"},
		{[]string{"GODEBUG=a=1", "GODEBUG=b=2"}, true, "GODEBUG=a=1,madvdontneed=0"},
		{[]string{"GODEBUG=madvdontneed=1"}, false, ""},
		{[]string{"GODEBUG=x=1, madvdontneed=0"}, false, ""},
		{[]string{"GODEBUG=gctrace=0", reexecMarker + "=1"}, false, ""},
	}
	for _, c := range cases {
		env, ok := madvFreeEnv(c.in)
		if ok != c.wantOK {
			t.Errorf("%q: ok %v, want %v", c.in, ok, c.wantOK)
			continue
		}
		if !ok {
			continue
		}
		n := 0
		for _, kv := range env {
			if len(kv) >= 8 && kv[:8] == "GODEBUG=" {
				n++
			}
		}
		if n != 1 || !slices.Contains(env, c.godebug) || !slices.Contains(env, reexecMarker+"=1") {
			t.Errorf("%q → %q: want exactly one %q and the marker", c.in, env, c.godebug)
		}
	}
}

// TestNoReexecLoop runs the built command with a GODEBUG already set (which
// used to make it restart itself forever) and wants it to finish.
func TestNoReexecLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	exe := t.TempDir() + "/diffuse"
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(exe, "help")
	cmd.Env = append(os.Environ(), "GODEBUG=gctrace=0")
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("diffuse help with GODEBUG set: %v", err)
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("diffuse help with GODEBUG=gctrace=0 did not finish in 20 s (re-exec loop)")
	}
}
