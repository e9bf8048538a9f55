// Command shapeseval measures a text-to-image pipeline trained on the shapes
// captions (diffuse train -data shapes, issue 19): for each caption
// category (GenEval's: single object with its colour, two objects, counting,
// position, and attribute binding on held-out combinations, i.e. captions
// with a green triangle, which training never saw) it generates n images at
// each guidance scale and asks the shapes judge (eval.JudgeShapes) whether
// every claim of the caption holds. It prints a markdown table and writes
// a grid of the first images per category with their prompts:
//
//	go run ./bench/internal/shapeseval -model out/checkpoint -n 250 -guidance 1,3,5,7.5 -grid bench/shapes_grid.png
package main

import (
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/ddpm"
	"github.com/godiffuse/godiffuse/device"
	"github.com/godiffuse/godiffuse/eval"
	"github.com/godiffuse/godiffuse/pipeline"
	"github.com/godiffuse/godiffuse/tensor"
)

// category is a set of evaluation captions.
type category struct {
	name     string
	captions []string
}

func main() {
	model := flag.String("model", "out/checkpoint", "pipeline folder written by diffuse train -data shapes")
	n := flag.Int("n", 250, "images per category and guidance scale")
	gs := flag.String("guidance", "1,3,5,7.5", "guidance scales")
	steps := flag.Int("steps", 20, "sampler steps")
	sampler := flag.String("sampler", "", "sampler (default: the folder's suggestion, as diffuse generate takes it)")
	batch := flag.Int("batch", 50, "images at once")
	gridPath := flag.String("grid", "", "write a grid of the first 8 images per category (at the best guidance) here")
	seed := flag.Uint64("seed", 1000, "seed of the evaluation captions (not the training data's 1)")
	why := flag.Bool("why", false, "also print, per category and guidance, which claim failed first (colour, shape, size, count, relation)")
	only := flag.String("only", "", "comma-separated beginnings of category names to evaluate (e.g. single,position); empty: all")
	flag.Parse()
	dev, _, err := device.Select("cpu")
	if err != nil {
		log.Fatal(err)
	}
	p, err := pipeline.Load(dev, *model)
	if err != nil {
		log.Fatal(err)
	}
	kind := p.Suggested.Sampler
	if *sampler != "" {
		if kind, err = ddpm.ParseSigmaSampler(*sampler); err != nil {
			log.Fatalf("-sampler: %v", err)
		}
	}
	var guidances []float64
	for _, s := range strings.Split(*gs, ",") {
		g, err := strconv.ParseFloat(s, 64)
		if err != nil {
			log.Fatalf("-guidance %q: %v", s, err)
		}
		guidances = append(guidances, g)
	}
	all := categories(*seed, *n)
	cats := selectCategories(all, *only)
	if len(cats) == 0 {
		var names []string
		for _, c := range all {
			names = append(names, c.name)
		}
		log.Fatalf("-only %q: no category name begins with these; the categories: %s", *only, strings.Join(names, "; "))
	}
	fmt.Printf("sampler %s, %d steps, %d images per category and guidance\n\n", kind, *steps, *n)
	fmt.Printf("| category | %s |\n|---|%s\n", joinF(guidances, " | ", "guidance %g"), strings.Repeat("---|", len(guidances)))
	type cell struct {
		imgs [][]float32
		pass []bool
	}
	results := map[string][]cell{}
	start := time.Now()
	for _, c := range cats {
		row := []string{c.name}
		for _, g := range guidances {
			imgs, err := generate(p, c.captions, g, *steps, kind, *batch)
			if err != nil {
				log.Fatal(err)
			}
			ok := 0
			var pass []bool
			failed := map[string]int{}
			drawn := map[string]int{} // position captions whose relation failed: asked → drawn
			for i, img := range imgs {
				j, err := eval.JudgeShapes(img, data.ShapesSize, data.ShapesSize, c.captions[i])
				if err != nil {
					log.Fatal(err)
				}
				pass = append(pass, j.Pass)
				if j.Pass {
					ok++
				}
				failed[firstFailure(j)]++
				if *why && firstFailure(j) == "relation" {
					drawn[drawnRelation(j, c.captions[i])]++
				}
			}
			if *why {
				fmt.Fprintf(os.Stderr, "%s, guidance %g: first failed claim %v\n", c.name, g, failed)
				if len(drawn) > 0 {
					fmt.Fprintf(os.Stderr, "%s, guidance %g: wrong relations, asked → drawn: %v\n", c.name, g, drawn)
				}
			}
			results[c.name] = append(results[c.name], cell{imgs, pass})
			row = append(row, fmt.Sprintf("%.1f %%", 100*float64(ok)/float64(len(imgs))))
		}
		fmt.Printf("| %s |\n", strings.Join(row, " | "))
	}
	fmt.Fprintf(os.Stderr, "%d categories × %d guidance scales × %d images in %s\n", len(cats), len(guidances), *n, time.Since(start).Round(time.Second))
	if *gridPath != "" {
		// The guidance with the best mean over categories.
		best := 0
		bestScore := -1.0
		for gi := range guidances {
			s := 0.0
			for _, c := range cats {
				for _, ok := range results[c.name][gi].pass {
					if ok {
						s++
					}
				}
			}
			if s > bestScore {
				best, bestScore = gi, s
			}
		}
		var prompts []string
		var imgs [][]float32
		var pass []bool
		for _, c := range cats {
			r := results[c.name][best]
			for i := range min(8, len(r.imgs)) {
				prompts, imgs, pass = append(prompts, c.captions[i]), append(imgs, r.imgs[i]), append(pass, r.pass[i])
			}
		}
		if err := writeGrid(*gridPath, prompts, imgs, pass, 8); err != nil {
			log.Fatal(err)
		}
		fmt.Fprintf(os.Stderr, "wrote %s (guidance %g; a green frame: the judge passed it)\n", *gridPath, guidances[best])
	}
}

// firstFailure names what a judgement's first failed claim checks
// ("passed" when none failed).
func firstFailure(j eval.ShapeJudgement) string {
	for _, c := range j.Claims {
		if !c.OK {
			return c.Kind
		}
	}
	return "passed"
}

// drawnRelation says, for a position caption whose objects were both found,
// which relation the picture shows instead ("asked → drawn": mirrored
// when the order of the objects was lost, crossed when the axis was).
func drawnRelation(j eval.ShapeJudgement, caption string) string {
	q, err := data.ParseShapeCaption(caption)
	if err != nil || q.Kind != "position" {
		return "?"
	}
	largest := func(s data.ShapeSpec, skip int) int {
		k := -1
		for i, f := range j.Found {
			if i != skip && f.Colour == s.Colour && f.Shape == s.Shape && (k < 0 || f.Area > j.Found[k].Area) {
				k = i
			}
		}
		return k
	}
	a := largest(q.Objects[0], -1)
	b := largest(q.Objects[1], a)
	if a < 0 || b < 0 {
		return "?"
	}
	dx, dy := j.Found[b].X-j.Found[a].X, j.Found[b].Y-j.Found[a].Y
	rel := "below"
	switch {
	case dx > math.Abs(dy):
		rel = "to the left of"
	case -dx > math.Abs(dy):
		rel = "to the right of"
	case dy > math.Abs(dx):
		rel = "above"
	}
	kind := "crossed"
	if data.OppositeRelation(q.Relation) == rel {
		kind = "mirrored"
	}
	return kind
}

func joinF(v []float64, sep, format string) string {
	var s []string
	for _, x := range v {
		s = append(s, fmt.Sprintf(format, x))
	}
	return strings.Join(s, sep)
}

// categories draws n captions per category.
func categories(seed uint64, n int) []category {
	byKind := map[string][]string{}
	for i := 0; ; i++ {
		sc := data.NewShapeScene(seed, i, data.ShapesTrain)
		if len(byKind[sc.Kind]) < n {
			byKind[sc.Kind] = append(byKind[sc.Kind], sc.Caption)
		}
		if done := len(byKind) == len(data.ShapeKinds) && allFull(byKind, n); done {
			break
		}
	}
	var binding []string
	for i := 0; len(binding) < n; i++ {
		sc := data.NewShapeScene(seed, i, data.ShapesHeldOut)
		if sc.Kind == "two" || sc.Kind == "position" {
			binding = append(binding, sc.Caption)
		}
	}
	var heldSingle []string
	rng := rand.New(rand.NewPCG(seed, 7))
	for len(heldSingle) < n {
		q := data.ShapeQuery{Kind: "single", Objects: []data.ShapeSpec{{Shape: "triangle", Colour: "green"}}}
		if rng.IntN(2) == 0 {
			q.Objects[0].Size = data.ShapeSizes[rng.IntN(2)]
		}
		heldSingle = append(heldSingle, q.Caption())
	}
	return []category{{"single object with colour", byKind["single"]}, {"two objects", byKind["two"]},
		{"counting", byKind["counting"]}, {"position", byKind["position"]},
		{"attribute binding, held out (two objects or position with a green triangle)", binding},
		{"held-out single (a green triangle)", heldSingle}}
}

// selectCategories keeps the categories whose names begin with one of the
// comma-separated prefixes (all of them when prefixes is empty).
func selectCategories(cats []category, prefixes string) []category {
	if prefixes == "" {
		return cats
	}
	var words []string
	for _, p := range strings.Split(prefixes, ",") {
		if p = strings.TrimSpace(p); p != "" {
			words = append(words, p)
		}
	}
	var kept []category
	for _, c := range cats {
		if slices.ContainsFunc(words, func(w string) bool { return strings.HasPrefix(c.name, w) }) {
			kept = append(kept, c)
		}
	}
	return kept
}

func allFull(m map[string][]string, n int) bool {
	for _, v := range m {
		if len(v) < n {
			return false
		}
	}
	return true
}

// generate makes one image per caption (seed = index), batched: the text
// states of each caption and of the empty caption go through the U-Net
// together, guided as the pipeline guides.
func generate(p *pipeline.Pipeline, captions []string, g float64, steps int, kind ddpm.SigmaSamplerKind, batch int) ([][]float32, error) {
	uncond, _, err := p.EncodePrompt("", 0)
	if err != nil {
		return nil, err
	}
	var out [][]float32
	for start := 0; start < len(captions); start += batch {
		part := captions[start:min(start+batch, len(captions))]
		B := len(part)
		var conds []*tensor.Tensor
		var noise []float32
		for i, c := range part {
			s, _, err := p.EncodePrompt(c, 0)
			if err != nil {
				return nil, err
			}
			conds = append(conds, s)
			x, _ := ddpm.Randn(p.Device, rand.New(rand.NewPCG(uint64(start+i), 0x5d)), 1, 3, data.ShapesSize, data.ShapesSize).Float32s()
			noise = append(noise, x...)
		}
		uncs := make([]*tensor.Tensor, B)
		for i := range uncs {
			uncs[i] = uncond
		}
		var ctx *tensor.Tensor
		if err := tensor.Catch(func() { ctx = tensor.Concat(0, append(uncs, conds...)...) }); err != nil {
			return nil, err
		}
		model := func(xt *tensor.Tensor, t float64) (*tensor.Tensor, error) {
			var x2 *tensor.Tensor
			if err := tensor.Catch(func() { x2 = tensor.Concat(0, xt, xt) }); err != nil {
				return nil, err
			}
			o, err := p.UNet.Forward(x2, []float32{float32(t)}, ctx, nil, nil)
			if err != nil {
				return nil, err
			}
			var eps *tensor.Tensor
			err = tensor.Catch(func() {
				u, c := o.Narrow(0, 0, B), o.Narrow(0, B, B)
				eps = tensor.Add(u, tensor.Scale(tensor.Sub(c, u), float32(g)))
			})
			return eps, err
		}
		sm, err := ddpm.NewSigmaSampler(kind, p.Scheduler, steps)
		if err != nil {
			return nil, err
		}
		xT := tensor.FromFloat32(p.Device, noise, B, 3, data.ShapesSize, data.ShapesSize)
		x, err := ddpm.SampleSigma(sm, model, xT, rand.New(rand.NewPCG(uint64(start), 1)), ddpm.SigmaSampleOptions{Objective: p.Objective(), Clip: 1})
		if err != nil {
			return nil, err
		}
		v, err := x.Float32s()
		if err != nil {
			return nil, err
		}
		n := 3 * data.ShapesSize * data.ShapesSize
		for i := range B {
			img := v[i*n : (i+1)*n]
			for k := range img {
				img[k] = max(-1, min(1, img[k]))
			}
			out = append(out, img)
		}
	}
	return out, nil
}

// writeGrid draws images (3×32×32 values) with their prompts above them,
// cols per row, a green frame around those the judge passed, red otherwise.
func writeGrid(path string, prompts []string, imgs [][]float32, pass []bool, cols int) error {
	const scale, cellW, textH = 3, 132, 44
	side := data.ShapesSize * scale
	rows := (len(imgs) + cols - 1) / cols
	cellH := textH + side + 8
	out := image.NewRGBA(image.Rect(0, 0, cols*cellW, rows*cellH))
	draw.Draw(out, out.Bounds(), image.White, image.Point{}, draw.Src)
	n := data.ShapesSize
	for i, img := range imgs {
		x0, y0 := (i%cols)*cellW, (i/cols)*cellH
		d := font.Drawer{Dst: out, Src: image.Black, Face: basicfont.Face7x13}
		for li, line := range wrap(prompts[i], cellW/7-1) {
			if li == 3 {
				break
			}
			d.Dot = fixed.P(x0+3, y0+12+li*13)
			d.DrawString(line)
		}
		frame := color.RGBA{200, 40, 40, 255}
		if pass[i] {
			frame = color.RGBA{40, 160, 60, 255}
		}
		fx, fy := x0+(cellW-side)/2, y0+textH
		draw.Draw(out, image.Rect(fx-2, fy-2, fx+side+2, fy+side+2), &image.Uniform{frame}, image.Point{}, draw.Src)
		for y := range side {
			for x := range side {
				var c [3]uint8
				for k := range 3 {
					c[k] = uint8(max(0, min(255, (img[(k*n+y/scale)*n+x/scale]+1)*127.5+0.5)))
				}
				out.SetRGBA(fx+x, fy+y, color.RGBA{c[0], c[1], c[2], 255})
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, out); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// wrap breaks text into lines of at most w characters.
func wrap(text string, w int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		if line != "" && len(line)+1+len(word) > w {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	return append(lines, line)
}
