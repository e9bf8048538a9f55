package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/godiffuse/godiffuse/ddpm"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/pngtext"
	"github.com/godiffuse/godiffuse/safetensors"
	"github.com/godiffuse/godiffuse/tensor"
)

func runInspect(args []string) error {
	fs := newFlags("inspect", "Says what a file or folder holds: a PNG's text chunks (the generation parameters), a\n"+
		"checkpoint written by 'diffuse train' (architecture, parameters, steps, classes, schedule), or a\n"+
		"Stable Diffusion folder (its parts). Usage: diffuse inspect PATH...")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("give one or more PNG files or folders")
	}
	for _, path := range fs.Args() {
		if err := inspect(os.Stdout, path); err != nil {
			return err
		}
	}
	return nil
}

func inspect(w io.Writer, path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s\n", path)
	if !st.IsDir() {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		chunks, err := pngtext.Read(f)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if len(chunks) == 0 {
			fmt.Fprintln(w, "  a PNG without text chunks")
		}
		for _, c := range chunks {
			fmt.Fprintf(w, "  %s:\n    %s\n", c.Key, strings.ReplaceAll(c.Value, "\n", "\n    "))
		}
		return nil
	}
	if _, err := os.Stat(filepath.Join(path, "model_index.json")); err == nil {
		b, _ := os.ReadFile(filepath.Join(path, "model_index.json"))
		fmt.Fprintf(w, "  a diffusers pipeline folder; model_index.json:\n    %s\n", strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", "\n    "))
		for _, part := range []string{"unet", "vae", "text_encoder"} {
			matches, _ := filepath.Glob(filepath.Join(path, part, "*.safetensors"))
			for _, m := range matches {
				sf, err := safetensors.Read(m)
				if err != nil {
					fmt.Fprintf(w, "  %s: %v\n", part, err)
					continue
				}
				n, dtypes := 0, map[safetensors.DType]int{}
				for _, info := range sf.Tensors {
					c := 1
					for _, d := range info.Shape {
						c *= d
					}
					n += c
					dtypes[info.DType]++
				}
				sf.Close()
				fmt.Fprintf(w, "  %s/%s: %d tensors, %d values, dtypes %v\n", part, filepath.Base(m), len(sf.Tensors), n, dtypes)
			}
		}
		return nil
	}
	info, err := ddpm.ReadCheckpointInfo(path)
	if err != nil {
		return fmt.Errorf("%s: neither a checkpoint nor a pipeline folder: %w", path, err)
	}
	c, err := nn.LoadUNet2DConfig(filepath.Join(info.Dir, "unet", nn.ConfigFile))
	if err != nil {
		return err
	}
	m, err := nn.BuildUNet2D(tensor.ShapesOnly(), c) // shapes only: counts parameters without memory
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  a diffuse train checkpoint (read from %s)\n", info.Dir)
	fmt.Fprintf(w, "  UNet2DModel: %d parameters, in/out channels %d/%d, sample size %s, blocks %v, %d layers per block\n",
		m.NumParams(), c.InChannels, c.OutChannels, c.SampleSize, c.BlockOutChannels, c.LayersPerBlock)
	fmt.Fprintf(w, "  trained %d of %d steps, batch %d, lr %g, EMA decay %g, objective %s, schedule %s (T = %d)\n",
		info.Step, info.Config.Steps, info.Config.Batch, info.Config.LR, info.Config.EMADecay, info.Objective, info.Config.Schedule, info.Config.T)
	if len(info.Classes) > 0 {
		fmt.Fprintf(w, "  classes (%d, null label %d): %s\n", len(info.Classes), info.NullClass(), strings.Join(info.Classes, ", "))
	}
	return nil
}
