package vae

import (
	"path/filepath"
	"testing"

	"github.com/godiffuse/godiffuse/internal/sdfixtures"
	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/tensor"
)

// Tolerances from shared/reference/sd/README.md.
const (
	tolAct  = 5e-5
	tolGrad = 1e-4
	tolLoss = 1e-6
)

func TestVAEParity(t *testing.T) {
	for _, dir := range sdfixtures.Folders(t, sdfixtures.VAE) {
		t.Run(filepath.Base(dir), func(t *testing.T) { checkVAEParity(t, kernels.CPU(), dir) })
	}
}

func checkVAEParity(t *testing.T, dev tensor.Device, dir string) {
	v, err := Load(dev, dir, nn.StoreF32)
	if err != nil {
		t.Fatal(err)
	}
	io := sdfixtures.IO(t, dir)
	xv, xs := sdfixtures.Float32(t, io, "x")
	x := tensor.FromFloat32(dev, xv, xs...).SetRequiresGrad(true)
	mean, logvar, err := v.Encode(x)
	if err != nil {
		t.Fatal(err)
	}
	sdfixtures.Compare(t, io, "mean", mean, tolAct)
	sdfixtures.Compare(t, io, "logvar", logvar, tolAct)
	decoded, err := v.Decode(mean)
	if err != nil {
		t.Fatal(err)
	}
	sdfixtures.Compare(t, io, "decoded", decoded, tolAct)
	zv, zs := sdfixtures.Float32(t, io, "z")
	dz, err := v.Decode(tensor.FromFloat32(dev, zv, zs...))
	if err != nil {
		t.Fatal(err)
	}
	sdfixtures.Compare(t, io, "decoded_z", dz, tolAct)

	tv, tshape := sdfixtures.Float32(t, io, "target")
	loss := tensor.Add(tensor.MSELoss(decoded, tensor.FromFloat32(dev, tv, tshape...)), tensor.Mean(tensor.Square(logvar)))
	sdfixtures.Compare(t, io, "loss", loss, tolLoss)
	loss.Backward()
	sdfixtures.Compare(t, io, "grad/x", x.Grad(), tolGrad)
	sdfixtures.CheckGrads(t, io, v.Params(), tolGrad)
}
