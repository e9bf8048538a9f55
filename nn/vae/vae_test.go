package vae

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godiffuse/godiffuse/internal/sdfixtures"
	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/safetensors"
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

// TestLegacyAttentionNames: a 2022 VAE file names the mid-block attention
// query/key/value/proj_attn; it loads to the same model.
func TestLegacyAttentionNames(t *testing.T) {
	dir := sdfixtures.Folders(t, sdfixtures.VAE)[0]
	legacy := t.TempDir()
	cfg, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	os.WriteFile(filepath.Join(legacy, "config.json"), cfg, 0o644)
	st, err := safetensors.Read(filepath.Join(dir, "diffusion_pytorch_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	renamed := 0
	var ts []safetensors.Tensor
	for _, name := range st.Names() {
		v, shape, _ := st.Float32(name)
		for _, pair := range [][2]string{{".to_q.", ".query."}, {".to_k.", ".key."}, {".to_v.", ".value."}, {".to_out.0.", ".proj_attn."}} {
			if strings.Contains(name, "mid_block.attentions.0"+pair[0]) {
				name = strings.Replace(name, pair[0], pair[1], 1)
				renamed++
			}
		}
		ts = append(ts, safetensors.Tensor{Name: name, DType: safetensors.F32, Shape: shape, F: v})
	}
	if renamed != 16 {
		t.Fatalf("renamed %d tensors, want 16 (8 per coder)", renamed)
	}
	if err := safetensors.Write(filepath.Join(legacy, "diffusion_pytorch_model.safetensors"), ts, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(kernels.CPU(), legacy, nn.StoreF32); err != nil {
		t.Fatal(err)
	}
}

// TestVAEReleasedIntermediates: in inference encoder and decoder release
// each activation once the next layer has read it; on a device that
// recycles every length and fills reused arrays with NaN first, the
// outputs still match the reference, twice over.
func TestVAEReleasedIntermediates(t *testing.T) {
	for _, dir := range sdfixtures.Folders(t, sdfixtures.VAE) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			dev := kernels.PoisonedCPU(2)
			v, err := Load(dev, dir, nn.StoreF32)
			if err != nil {
				t.Fatal(err)
			}
			defer v.NoGrad()()
			io := sdfixtures.IO(t, dir)
			xv, xs := sdfixtures.Float32(t, io, "x")
			zv, zs := sdfixtures.Float32(t, io, "z")
			for range 2 {
				mean, logvar, err := v.Encode(tensor.FromFloat32(dev, xv, xs...))
				if err != nil {
					t.Fatal(err)
				}
				sdfixtures.Compare(t, io, "mean", mean, tolAct)
				sdfixtures.Compare(t, io, "logvar", logvar, tolAct)
				dz, err := v.Decode(tensor.FromFloat32(dev, zv, zs...))
				if err != nil {
					t.Fatal(err)
				}
				sdfixtures.Compare(t, io, "decoded_z", dz, tolAct)
			}
		})
	}
}
