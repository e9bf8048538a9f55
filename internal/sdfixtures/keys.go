package sdfixtures

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/godiffuse/godiffuse/nn"
)

// CheckKeys compares a model's parameter list with a reference key list
// (lines "name [d0, d1, …]" or "name DTYPE [d0, d1, …]", comments starting
// with #; the legacy embeddings.position_ids buffers, which are no
// parameters, are skipped): same names, order and shapes. It returns the
// parameter count.
func CheckKeys(t *testing.T, path string, ps []nn.Param) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var want []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		name, rest, _ := strings.Cut(l, " ")
		if dtype, shape, ok := strings.Cut(rest, " "); ok && !strings.HasPrefix(dtype, "[") {
			rest = shape // "name DTYPE [shape]"
		}
		if !strings.HasSuffix(name, "embeddings.position_ids") {
			want = append(want, name+" "+rest)
		}
	}
	n := 0
	for i, p := range ps {
		got := fmt.Sprintf("%s %v", p.Name, strings.ReplaceAll(fmt.Sprint(p.T.Shape()), " ", ", "))
		if i >= len(want) {
			t.Fatalf("%s: the model has more parameters than the %d listed, from %s", path, len(want), got)
		}
		if got != want[i] {
			t.Fatalf("%s: parameter %d is %s, the list has %s", path, i, got, want[i])
		}
		n += p.T.Numel()
	}
	if len(ps) != len(want) {
		t.Fatalf("%s: %d parameters, the list has %d", path, len(ps), len(want))
	}
	return n
}
