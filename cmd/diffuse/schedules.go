package main

import (
	"fmt"
	"os"

	"github.com/godiffuse/godiffuse/ddpm"
)

func runSchedules(args []string) error {
	fs := newFlags("schedules", "Plots β_t and ᾱ_t of every noise schedule (linear, scaled_linear, cosine, sigmoid).")
	T := fs.Int("timesteps", 1000, "diffusion steps T")
	out := fs.String("out", "schedules.png", "PNG to write")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *T < 2 || *T > ddpm.MaxTimesteps {
		return fmt.Errorf("-timesteps: want 2 … %d, have %d", ddpm.MaxTimesteps, *T)
	}
	if err := checkOutputs("-out", *out); err != nil {
		return err
	}
	if err := schedulesPlot(*out, *T); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "wrote", *out)
	return nil
}
