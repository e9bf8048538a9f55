// Command inpainteval measures inpainting on Fashion-MNIST test images (issue
// 18): for each mask (the right half, the centre square) and each method it
// fills in the first N test images with a checkpoint's model (unconditional:
// the null label), asks the Fashion-MNIST judge for the class of each result,
// and reports the accuracy against the true labels, and whether every kept
// pixel came back exactly. It writes one picture per mask (input, mask,
// masked input, one column per method) for bench/RESULTS.md:
//
//	go run ./bench/internal/inpainteval -checkpoint out/checkpoint -n 1000 -out bench
package main

import (
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/ddpm"
	"github.com/godiffuse/godiffuse/features"
	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/tensor"
)

func main() {
	ckpt := flag.String("checkpoint", "out/checkpoint", "checkpoint of a 28×28 grey model")
	images := flag.String("images", "features/testdata/t10k-images-idx3-ubyte.gz", "test images (IDX)")
	labels := flag.String("labels", "features/testdata/t10k-labels-idx1-ubyte.gz", "test labels (IDX)")
	n := flag.Int("n", 1000, "test images per mask")
	steps := flag.Int("steps", 50, "DDPM points")
	jump := flag.Int("jump", 10, "RePaint jump length")
	resample := flag.Int("resample", 10, "RePaint resamplings")
	batch := flag.Int("batch", 100, "images at once")
	out := flag.String("out", ".", "folder for inpaint_<mask>.png")
	only := flag.String("methods", strings.Join(ddpm.InpaintMethods, ","), "methods to run, comma-separated; \"baseline\" runs none and reports the judge on the originals and on the masked inputs (grey fill)")
	flag.Parse()

	dev := kernels.CPU()
	m, info, err := ddpm.LoadCheckpoint(dev, *ckpt, true)
	if err != nil {
		log.Fatal(err)
	}
	restore := m.NoGrad()
	defer restore()
	judge, err := features.LoadJudge(dev)
	if err != nil {
		log.Fatal(err)
	}
	ds, err := data.LoadIDX(*images, *labels, data.FashionMNISTClasses)
	if err != nil {
		log.Fatal(err)
	}
	const side, px = 28, 28 * 28
	masks := []struct {
		name string
		fill func(y, x int) bool
	}{
		{"right-half", func(y, x int) bool { return x >= side/2 }},
		{"centre-square", func(y, x int) bool { return y >= 7 && y < 21 && x >= 7 && x < 21 }},
	}
	methods := strings.Split(*only, ",")
	fmt.Printf("checkpoint %s (step %d); %d test images per mask; DDPM %d points; RePaint jump %d × %d; CPU %s\n\n",
		*ckpt, info.Step, *n, *steps, *jump, *resample, dev.Name())
	fmt.Println("| mask | method | class accuracy | kept pixels exact | seconds |")
	fmt.Println("| --- | --- | --- | --- | --- |")
	for _, mk := range masks {
		mask := make([]float32, px)
		for y := range side {
			for x := range side {
				if mk.fill(y, x) {
					mask[y*side+x] = 1
				}
			}
		}
		const shown = 8
		results := map[string][]float32{}
		var inputs []float32
		if *only == "baseline" {
			for _, what := range []string{"original", "masked (grey fill)"} {
				correct := 0
				for b0 := 0; b0 < *n; b0 += *batch {
					bn := min(*batch, *n-b0)
					img := make([]float32, bn*px)
					truth := make([]int, bn)
					for i := range bn {
						truth[i] = ds.Image(b0+i, img[i*px:(i+1)*px])
						if what != "original" {
							for k, v := range mask {
								img[i*px+k] *= 1 - v
							}
						}
					}
					correct += judged(judge, dev, img, truth)
				}
				fmt.Printf("| %s | %s | %.1f %% | | |\n", mk.name, what, 100*float64(correct)/float64(*n))
			}
			continue
		}
		for _, method := range methods {
			start := time.Now()
			correct, exact := 0, true
			for b0 := 0; b0 < *n; b0 += *batch {
				bn := min(*batch, *n-b0)
				img, msk := make([]float32, bn*px), make([]float32, bn*px)
				truth := make([]int, bn)
				for i := range bn {
					truth[i] = ds.Image(b0+i, img[i*px:(i+1)*px])
					copy(msk[i*px:], mask)
				}
				null := make([]int64, bn)
				for i := range null {
					null[i] = info.NullClass()
				}
				if len(info.Classes) == 0 {
					null = nil
				}
				model := func(x *tensor.Tensor, t int) (*tensor.Tensor, error) {
					return m.Forward(x, []float32{float32(t)}, null, nil)
				}
				sm, err := ddpm.NewDDPM(info.Schedule, *steps, ddpm.Leading, ddpm.FixedSmall)
				if err != nil {
					log.Fatal(err)
				}
				rng := rand.New(rand.NewPCG(uint64(b0), 18))
				x, err := ddpm.Inpaint(info.Schedule, sm, model, ddpm.Randn(dev, rng, bn, 1, side, side), rng,
					ddpm.SampleOptions{Objective: info.Objective, Clip: 1},
					ddpm.InpaintOptions{Method: method, Image: tensor.FromFloat32(dev, img, bn, 1, side, side),
						Mask: tensor.FromFloat32(dev, msk, bn, 1, side, side), Jump: *jump, Resample: *resample})
				if err != nil {
					log.Fatal(err)
				}
				v := x.MustFloat32s()
				for i := range v {
					if msk[i] == 0 && v[i] != img[i] {
						exact = false
					}
				}
				correct += judged(judge, dev, v, truth)
				if b0 == 0 {
					results[method] = v[:shown*px]
					inputs = img[:shown*px]
				}
			}
			fmt.Printf("| %s | %s | %.1f %% | %v | %.0f |\n", mk.name, method, 100*float64(correct)/float64(*n), exact, time.Since(start).Seconds())
		}
		if err := picture(filepath.Join(*out, "inpaint_"+mk.name+".png"), inputs, mask, results, methods, shown); err != nil {
			log.Fatal(err)
		}
	}
}

// judged is how many of the images (28×28 each) the judge puts in their true class.
func judged(judge *features.Judge, dev tensor.Device, pix []float32, truth []int) int {
	_, logits := judge.Forward(tensor.FromFloat32(dev, pix, len(truth), 1, 28, 28), 0, 0)
	lv := logits.MustFloat32s()
	correct := 0
	for i := range truth {
		best := 0
		for k := range 10 {
			if lv[i*10+k] > lv[i*10+best] {
				best = k
			}
		}
		if best == truth[i] {
			correct++
		}
	}
	return correct
}

// picture writes one row per image: input, mask (white = filled), masked
// input, then each method's result, enlarged 3×.
func picture(path string, inputs, mask []float32, results map[string][]float32, methods []string, rows int) error {
	const side, px, k, gap = 28, 28 * 28, 3, 2
	cols := 3 + len(methods)
	img := image.NewGray(image.Rect(0, 0, cols*(side*k+gap), rows*(side*k+gap)))
	for i := range img.Pix {
		img.Pix[i] = 60
	}
	toGray := func(v float32) uint8 { return uint8(max(0, min(255, (v+1)*127.5+0.5))) }
	for r := range rows {
		cells := [][]float32{inputs[r*px : (r+1)*px], make([]float32, px), make([]float32, px)}
		for i, m := range mask {
			cells[1][i] = 2*m - 1
			cells[2][i] = inputs[r*px+i] * (1 - m)
		}
		for _, method := range methods {
			cells = append(cells, results[method][r*px:(r+1)*px])
		}
		for c, cell := range cells {
			for y := range side * k {
				for x := range side * k {
					img.SetGray(c*(side*k+gap)+x, r*(side*k+gap)+y, color.Gray{toGray(cell[(y/k)*side+x/k])})
				}
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
