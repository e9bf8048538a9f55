package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/ddpm"
	"github.com/godiffuse/godiffuse/eval"
	"github.com/godiffuse/godiffuse/internal/atomicfile"
	"github.com/godiffuse/godiffuse/mesh"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/nn/unet"
	"github.com/godiffuse/godiffuse/tensor"
)

// runSample3D samples a UNet3D checkpoint into meshes: OUT/CLASS_NNN.FORMAT,
// a preview sheet (three views of every sample) and optionally a turntable
// GIF. Each mesh file carries its provenance in its header (model, weights
// hash, class, seed, sampler); the PNG and GIF carry the usual records.
func runSample3D(args []string) error {
	fs := newFlags("sample3d", "Samples a 3-D checkpoint of `diffuse train -data shapes3d` (or voxels:) into triangle meshes:\n"+
		"OUT/CLASS_NNN.obj|stl|ply (marching cubes at the TSDF's zero level, coordinates in [-1, 1]), a preview sheet\n"+
		"with three views of each, and with -gif a turntable of them all.")
	ckpt := fs.String("checkpoint", "out/checkpoint", "checkpoint folder of a 3-D run")
	class := fs.String("class", "all", "class name or index, or all (n of each class)")
	n := fs.Int("n", 8, "volumes per class")
	out := fs.String("out", "out/meshes", "output folder")
	format := fs.String("format", "obj", "mesh format: "+strings.Join(mesh.Formats, ", ")+", or none (no mesh files)")
	preview := fs.String("preview", "", "preview sheet PNG (default OUT/preview.png; none: no sheet)")
	gifPath := fs.String("gif", "", "turntable GIF of all samples (default: none)")
	steps := fs.Int("steps", defaultSampleSteps, "sampler steps")
	sampler := fs.String("sampler", defaultSampler, "sampler: "+strings.Join(ddpm.SamplerNames, ", "))
	guidance := fs.Float64("guidance", defaultGuidance, "classifier-free guidance scale (1: none)")
	interval := fs.String("guidance-interval", fmt.Sprintf("%g,%g", defaultVolumeInterval[0], defaultVolumeInterval[1]), intervalUsage)
	seed := fs.Uint64("seed", 0, "seed of the noise")
	level := fs.Float64("level", 0, "iso-level of the surface in the TSDF (−1 … 1; 0: the surface the model was trained on)")
	raw := fs.Bool("raw", false, "sample the raw weights instead of the EMA")
	judge := fs.Bool("judge", false, "score the samples with the built-in 3-D shape judge (shapes3d classes): class accuracy, and\n"+
		"the fraction that mesh into one watertight piece; -json FILE writes the scores")
	jsonOut := fs.String("json", "", "with -judge: write the scores as JSON to this file")
	devSpec := deviceFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *n < 1 || *n > 10000:
		return fmt.Errorf("-n: want 1 … 10000, have %d", *n)
	case *steps < 1 || *steps > ddpm.MaxTimesteps:
		return fmt.Errorf("-steps: want 1 … %d, have %d", ddpm.MaxTimesteps, *steps)
	case !(*guidance >= 0 && *guidance <= 100):
		return fmt.Errorf("-guidance: want 0 … 100, have %g", *guidance)
	case !(*level > -1 && *level < 1):
		return fmt.Errorf("-level: want a value strictly between -1 and 1, have %g", *level)
	}
	guided, err := parseInterval(*interval)
	if err != nil {
		return err
	}
	fmtOK := *format == "none"
	for _, f := range mesh.Formats {
		fmtOK = fmtOK || f == strings.ToLower(*format)
	}
	if !fmtOK {
		return fmt.Errorf("-format %q: want one of %s, or none", *format, strings.Join(mesh.Formats, ", "))
	}
	if !ddpm.IsVolumeCheckpoint(*ckpt) {
		return fmt.Errorf("-checkpoint %s: not a 3-D checkpoint (want a folder of `diffuse train -data shapes3d`, whose unet/config.json names %s)", *ckpt, unet.ClassName3D)
	}
	info, err := ddpm.ReadCheckpointInfo(*ckpt)
	if err != nil {
		return err
	}
	dev, err := pickDevice(devSpec)
	if err != nil {
		return err
	}
	sub := "unet_ema"
	if *raw {
		sub = "unet"
	}
	m, err := unet.LoadUNet3D(dev, filepath.Join(info.Dir, sub))
	if err != nil {
		return err
	}
	spec := volumeSpec{sampleSpec: sampleSpec{sampler: *sampler, steps: *steps, n: *n, seed: *seed, guidance: *guidance, interval: guided, clip: 1, null: info.NullClass()}}
	var names []string
	switch {
	case len(info.Classes) == 0:
		if *class != "all" {
			return fmt.Errorf("-class %s: the model has no classes", *class)
		}
		for i := range *n {
			names = append(names, fmt.Sprintf("sample_%03d", i))
		}
	case *class == "all":
		spec.n = *n * len(info.Classes)
		for c, name := range info.Classes {
			for i := range *n {
				spec.labels = append(spec.labels, int64(c))
				names = append(names, fmt.Sprintf("%s_%03d", name, i))
			}
		}
	default:
		c, err := data.ClassIndex(info.Classes, *class)
		if err != nil {
			return fmt.Errorf("-class: %w", err)
		}
		for i := range *n {
			spec.labels = append(spec.labels, int64(c))
			names = append(names, fmt.Sprintf("%s_%03d", info.Classes[c], i))
		}
	}
	vols, err := sampleVolumes(m, info.Schedule, info.Objective, spec)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	side := m.Config.SampleSize
	hash := fileHash(filepath.Join(info.Dir, sub, nn.WeightsFile))
	model := filepath.Base(filepath.Clean(*ckpt))
	if model == "checkpoint" {
		model = filepath.Base(filepath.Dir(filepath.Clean(*ckpt)))
	}
	var tiles []image.Image
	var meshes []*mesh.Mesh
	watertight := 0
	half := float32(side-1) / 2
	for i, v := range vols {
		msh, err := mesh.Extract(v, side, side, side, float32(*level))
		if err != nil {
			return err
		}
		st := mesh.Measure(msh)
		if st.Watertight() && st.Components == 1 {
			watertight++
		}
		meshes = append(meshes, msh)
		if *preview != "none" {
			tiles = append(tiles, mesh.Preview(msh, side, 128))
		}
		if *format == "none" {
			continue
		}
		var buf bytes.Buffer
		// Provenance first: a comment line (OBJ, PLY) or the STL header.
		note := fmt.Sprintf("godiffuse %s sample3d: model %s [%s], %s, seed %d, %s %d steps, guidance %g%s", version(), model, hash, names[i], *seed, *sampler, *steps, *guidance, intervalNote(guided))
		if err := encodeMesh(&buf, msh.Transformed(2/float32(side), [3]float32{-half * 2 / float32(side), -half * 2 / float32(side), -half * 2 / float32(side)}), *format, note); err != nil {
			return err
		}
		path := filepath.Join(*out, names[i]+"."+strings.ToLower(*format))
		if err := atomicfile.Write(path, buf.Bytes()); err != nil {
			return err
		}
	}
	if *format != "none" {
		fmt.Fprintf(os.Stderr, "wrote %d meshes to %s (%d of them one watertight piece)\n", len(meshes), *out, watertight)
	}
	if *judge {
		if err := judgeVolumes(dev, vols, spec, info.Classes, *guidance, *jsonOut); err != nil {
			return err
		}
	}
	prov := newProvenance("sample3d")
	prov.Model, prov.ModelHash, prov.Sampler, prov.Steps, prov.Guidance, prov.Seed, prov.Images = model, hash, *sampler, *steps, *guidance, *seed, len(vols)
	prov.Interval = guided
	prov.Class = *class
	on, off, none := "on", "off", "none"
	marks := outputFlags{policy: &off, checker: &none, watermark: &on, noMeta: new(bool)}
	if *preview != "none" {
		path := *preview
		if path == "" {
			path = filepath.Join(*out, "preview.png")
		}
		cols := 1
		if len(info.Classes) > 0 && *class == "all" {
			cols = len(info.Classes)
		}
		cols = min(cols, 4)
		if err := writeImage(path, labelledSheet(tiles, names, cols), parametersText(prov), prov, marks); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "wrote %s\n", path)
	}
	if *gifPath != "" {
		const frames, size = 36, 128
		cols := min(len(meshes), 8)
		var sheets []*image.RGBA
		for f := range frames {
			var row []image.Image
			for _, msh := range meshes {
				row = append(row, mesh.Render(msh, side, mesh.View{Azimuth: 360 * float64(f) / frames, Elevation: 25}, size))
			}
			sheets = append(sheets, labelledSheet(row, names, cols))
		}
		if err := writeGIF(*gifPath, sheets, 8); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "wrote %s (%d frames)\n", *gifPath, frames)
	}
	return nil
}

// judgeVolumes scores samples with eval's 3-D shape judge and prints (and
// with jsonOut writes) the scores.
func judgeVolumes(dev tensor.Device, vols [][]float32, spec volumeSpec, classes []string, guidance float64, jsonOut string) error {
	if !slices.Equal(classes, data.Shape3DClasses) {
		return fmt.Errorf("-judge: the judge knows the shapes3d classes %v; the model's are %v", data.Shape3DClasses, classes)
	}
	j, err := eval.LoadShape3DJudge(dev)
	if err != nil {
		return err
	}
	want := make([]int, len(spec.labels))
	for i, l := range spec.labels {
		want[i] = int(l)
	}
	s, err := eval.JudgeVolumes(j, vols, want)
	if err != nil {
		return err
	}
	fmt.Printf("guidance %g, %d samples: class accuracy %.1f %%, one watertight piece %.1f %%\n", guidance, s.N, 100*s.Accuracy, 100*s.OnePiece)
	for c, name := range classes {
		if s.PerClass[c] != s.PerClass[c] {
			continue // no samples of this class
		}
		fmt.Printf("  %-9s %5.1f %%   judged as:", name, 100*s.PerClass[c])
		for k, n := range s.Confusion[c] {
			if n > 0 && k != c {
				fmt.Printf(" %s %d", classes[k], n)
			}
		}
		fmt.Println()
	}
	if jsonOut == "" {
		return nil
	}
	perClass := make([]any, len(s.PerClass)) // null for a class without samples
	for i, v := range s.PerClass {
		if v == v {
			perClass[i] = v
		}
	}
	b, err := json.MarshalIndent(map[string]any{"guidance": guidance, "samples": s.N, "class_accuracy": s.Accuracy,
		"per_class": perClass, "one_piece": s.OnePiece, "confusion": s.Confusion, "classes": classes,
		"sampler": spec.sampler, "steps": spec.steps, "seed": spec.seed}, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(jsonOut, append(b, '\n'))
}

// encodeMesh writes m with a provenance note in the format's own comment.
func encodeMesh(buf *bytes.Buffer, m *mesh.Mesh, format, note string) error {
	switch strings.ToLower(format) {
	case "obj":
		buf.WriteString("# " + note + "\n")
		return m.Encode(buf, format)
	case "ply":
		var body bytes.Buffer
		if err := m.Encode(&body, format); err != nil {
			return err
		}
		b := body.Bytes()
		i := bytes.Index(b, []byte("comment "))
		buf.Write(b[:i])
		buf.WriteString("comment " + strings.ReplaceAll(note, "\n", " ") + "\n")
		buf.Write(b[i:])
		return nil
	default: // stl: the 80-byte header holds the start of the note
		if err := m.Encode(buf, format); err != nil {
			return err
		}
		h := make([]byte, 80)
		copy(h, note)
		copy(buf.Bytes()[:80], h)
		return nil
	}
}
