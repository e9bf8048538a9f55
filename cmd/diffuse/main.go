// Command diffuse trains and samples diffusion models.
//
//	diffuse train      train a U-Net (with no flags: the tiny-mnist model on the embedded Fashion-MNIST slice)
//	diffuse sample     sample a checkpoint into a PNG grid, a folder of PNGs or a GIF of the trajectory
//	diffuse sample3d   sample a 3-D checkpoint into meshes (OBJ, STL, PLY), previews and a turntable GIF
//	diffuse generate   text-to-image with a Stable Diffusion 1.x/2.x folder in diffusers layout
//	diffuse img2img    image-to-image with a Stable Diffusion folder or a checkpoint (SDEdit)
//	diffuse inpaint    fill in the masked part of an image with a checkpoint's model
//	diffuse serve      a web page and OpenAI- and A1111-compatible HTTP APIs
//	diffuse detect     find the invisible watermark in generated images
//	diffuse inspect    what a PNG, a checkpoint or a Stable Diffusion folder holds
//	diffuse eval       measure sample quality against real images (FD-FMNIST or FID, IS, KID, precision/recall)
//	diffuse devices    list the devices -device can name
//	diffuse noise      the forward process: one image at several noise levels
//	diffuse schedules  plot β_t and ᾱ_t of every noise schedule
//
// Every subcommand takes -h.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/godiffuse/godiffuse/device"
	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/kernels/vulkan"
	"github.com/godiffuse/godiffuse/tensor"
)

type command struct {
	name, summary string
	run           func(args []string) error
}

var commands = []command{
	{"train", "train a diffusion U-Net (defaults: tiny-mnist on the embedded Fashion-MNIST slice)", runTrain},
	{"sample", "sample images from a checkpoint", runSample},
	{"sample3d", "sample a 3-D checkpoint into meshes (OBJ, STL, PLY), previews and a turntable GIF", runSample3D},
	{"generate", "text-to-image with a Stable Diffusion folder (diffusers layout)", runGenerate},
	{"img2img", "image-to-image: a Stable Diffusion folder (-model) or a checkpoint (-checkpoint, SDEdit)", runImg2Img},
	{"inpaint", "fill in the masked part of an image (RePaint, replace, replace-clean)", runInpaint},
	{"serve", "a web page and OpenAI/A1111-compatible HTTP APIs for checkpoints and SD folders", runServe},
	{"detect", "find the invisible watermark in images (PNG or JPEG)", runDetect},
	{"inspect", "what a PNG (its generation parameters), a checkpoint or an SD folder holds", runInspect},
	{"eval", "measure sample quality: FD-FMNIST/FID, IS, KID, precision/recall, class accuracy", runEval},
	{"devices", "list the CPU and Vulkan devices (for -device)", runDevices},
	{"noise", "show an image at several noise levels (the forward process)", runNoise},
	{"schedules", "plot β_t and ᾱ_t of every noise schedule", runSchedules},
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: diffuse <command> [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'diffuse <command> -h' for a command's flags.")
}

func main() {
	useMADVFree()
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "-help" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage(os.Stderr)
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	for _, c := range commands {
		if c.name == os.Args[1] {
			if err := c.run(os.Args[2:]); err != nil {
				if errors.Is(err, flag.ErrHelp) {
					return
				}
				fmt.Fprintf(os.Stderr, "diffuse %s: %v\n", c.name, err)
				if errors.As(err, new(withheldError)) {
					os.Exit(3) // the safety check withheld images
				}
				os.Exit(1)
			}
			return
		}
	}
	fmt.Fprintf(os.Stderr, "diffuse: unknown command %q\n\n", os.Args[1])
	usage(os.Stderr)
	os.Exit(2)
}

// newFlags makes a FlagSet whose errors come back to the caller.
func newFlags(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("diffuse "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: diffuse %s [flags]\n\n%s\n\nflags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// deviceFlags are -device and -threads, which every computing command takes.
type deviceFlags struct {
	spec    *string
	threads *int
}

// deviceFlag adds -device and -threads to a command.
func deviceFlag(fs *flag.FlagSet) deviceFlags {
	return deviceFlags{
		spec:    fs.String("device", "", "auto, cpu, vulkan or vulkan:N (default: $GODIFFUSE_DEVICE, else auto: a Vulkan GPU if present, else the CPU)"),
		threads: fs.Int("threads", 0, "CPU threads for the kernels (0: all cores); results are the same on any number"),
	}
}

// pickDevice resolves -device and -threads and says in one line which
// device runs and why.
func pickDevice(f deviceFlags) (tensor.Device, error) {
	if *f.threads < 0 || *f.threads > device.MaxThreads {
		return nil, fmt.Errorf("-threads %d: want 0 (all cores) to %d", *f.threads, device.MaxThreads)
	}
	dev, why, err := device.SelectThreads(*f.spec, *f.threads)
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(os.Stderr, why)
	if note := kernels.LevelNote(); note != "" {
		fmt.Fprintln(os.Stderr, "note:", note)
	}
	if vk, ok := dev.(*vulkan.Device); ok && vk.MatMulNote() != "" {
		fmt.Fprintln(os.Stderr, "note:", vk.MatMulNote())
	}
	return dev, nil
}

// maxImageSize bounds the image sizes the commands resize to.
const maxImageSize = 1024

// checkOutputs refuses, before any work, output paths (flag name, path
// pairs; empty paths are skipped) whose folder does not exist.
func checkOutputs(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		flagName, path := pairs[i], pairs[i+1]
		if path == "" {
			continue
		}
		dir := filepath.Dir(path)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return fmt.Errorf("%s %s: folder %s does not exist", flagName, path, dir)
		}
	}
	return nil
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (all options are flags; see -h)", fs.Arg(0))
	}
	return nil
}
