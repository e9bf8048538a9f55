package eval

import (
	"testing"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/kernels"
)

// TestShape3DJudgeOnRealShapes: the embedded 3-D judge must name at least
// 98 % of held-out real solids (100 per class, the test split) before it is
// trusted on generated ones; real solids mesh into one watertight piece
// almost always (a pyramid's sharp apex can pinch off at 32³).
func TestShape3DJudgeOnRealShapes(t *testing.T) {
	j, err := LoadShape3DJudge(kernels.CPU())
	if err != nil {
		t.Fatal(err)
	}
	ds, err := data.Shapes3D(700, 1, "test")
	if err != nil {
		t.Fatal(err)
	}
	vols, want := make([][]float32, ds.Len()), make([]int, ds.Len())
	for i := range vols {
		vols[i] = make([]float32, 32*32*32)
		want[i] = ds.Image(i, vols[i])
	}
	s, err := JudgeVolumes(j, vols, want)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("accuracy %.2f %%, per class %.3f, one piece %.1f %%", 100*s.Accuracy, s.PerClass, 100*s.OnePiece)
	if s.Accuracy < 0.98 {
		t.Errorf("the judge names %.2f %% of real solids, want ≥ 98 %% (confusion %v)", 100*s.Accuracy, s.Confusion)
	}
	if s.OnePiece < 0.95 {
		t.Errorf("%.1f %% of real solids mesh into one watertight piece, want ≥ 95 %%", 100*s.OnePiece)
	}
	if _, _, err := j.Classify([][]float32{make([]float32, 10)}); err == nil {
		t.Error("a volume of 10 values was classified")
	}
}
