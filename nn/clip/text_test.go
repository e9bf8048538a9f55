package clip

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/godiffuse/godiffuse/internal/sdfixtures"
	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/tensor"
)

// Tolerances from shared/reference/sd/README.md.
const (
	tolHidden = 5e-6
	tolGrad   = 1e-4
	tolLoss   = 1e-6
)

func TestTextModelParity(t *testing.T) {
	for _, dir := range sdfixtures.Folders(t, sdfixtures.CLIP) {
		t.Run(filepath.Base(dir), func(t *testing.T) { checkTextParity(t, kernels.CPU(), dir) })
	}
}

func checkTextParity(t *testing.T, dev tensor.Device, dir string) {
	m, err := LoadTextModel(dev, dir, nn.StoreF32)
	if err != nil {
		t.Fatal(err)
	}
	io := sdfixtures.IO(t, dir)
	ids := sdfixtures.Int64(t, io, "input_ids")
	_, shape := sdfixtures.Float32(t, io, "last_hidden_state")
	B := shape[0]
	out, err := m.Forward(ids, B)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; sdfixtures.Has(io, fmt.Sprintf("hidden_states/%d", i)); i++ {
		sdfixtures.Compare(t, io, fmt.Sprintf("hidden_states/%d", i), out.Hidden[i], tolHidden)
	}
	sdfixtures.Compare(t, io, "last_hidden_state", out.LastHidden, tolHidden)
	sdfixtures.Compare(t, io, "pooler_output", out.Pooled, tolHidden)
	if sdfixtures.Has(io, "clip_skip_1") {
		sdfixtures.Compare(t, io, "clip_skip_1", m.FinalLayerNorm.Forward(out.Hidden[len(out.Hidden)-2]), tolHidden)
	}
	// loss = mean((last − target)²) + mean(pooled²), then the stored gradients
	tv, tshape := sdfixtures.Float32(t, io, "target")
	target := tensor.FromFloat32(dev, tv, tshape...)
	loss := tensor.Add(tensor.MSELoss(out.LastHidden, target), tensor.Mean(tensor.Square(out.Pooled)))
	sdfixtures.Compare(t, io, "loss", loss, tolLoss)
	loss.Backward()
	sdfixtures.CheckGrads(t, io, m.Params(), tolGrad)
}
