package main

import (
	"slices"
	"testing"
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
