// Command plotresults draws the figures of bench/RESULTS.md from the numbers
// recorded there (edit the tables below together with RESULTS.md):
//
//	go run ./bench/internal/plotresults   # writes bench/gemm_ladder.png and bench/unet_ratios.png
package main

import (
	"log"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

type bar struct {
	name  string
	value float64
}

func bars(title, ylabel, path string, data []bar, ref float64, refName string) {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	vals := make(plotter.Values, len(data))
	names := make([]string, len(data))
	for i, d := range data {
		vals[i], names[i] = d.value, d.name
	}
	b, err := plotter.NewBarChart(vals, vg.Points(28))
	if err != nil {
		log.Fatal(err)
	}
	b.Color = plotutil.Color(1)
	p.Add(b, plotter.NewGrid())
	p.NominalX(names...)
	if ref > 0 {
		l, _ := plotter.NewLine(plotter.XYs{{X: -0.5, Y: ref}, {X: float64(len(data)) - 0.5, Y: ref}})
		l.Color = plotutil.Color(0)
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(l)
		p.Legend.Add(refName, l)
		p.Legend.Top = true
	}
	if err := p.Save(vg.Length(max(8, 1.3*float64(len(data))))*vg.Inch, 4*vg.Inch, path); err != nil {
		log.Fatal(err)
	}
}

func main() {
	// bench/RESULTS.md, 2026-11-27b (n = 512; the avx512 rung is from the device machine's Xeon on
	// 2026-11-26; OpenBLAS: the better anchor of run 1 that day).
	bars("SGEMM ladder, n = 512 (*AVX-512 on the device machine's Xeon)", "GFLOP/s", "bench/gemm_ladder.png", []bar{
		{"naive", 1.06}, {"blocked Go", 6.26}, {"AVX2, 1 core", 79.4}, {"AVX-512*, 1 core", 76.9},
		{"threaded 2 cores", 139.3}, {"OpenBLAS 2 cores", 128.2},
	}, 101, "AVX2 FMA ceiling, 1 core (101)")
	// Ratios ours/PyTorch, midpoints of the same-run ranges: 2026-11-26 (both runs), 2026-11-27, 2026-11-27b,
	// 2026-11-27c (runs 2 and 3, Winograd in all three passes).
	bars("U-Net speed, ours / PyTorch (same run, midpoint of the measured range)", "ratio", "bench/unet_ratios.png", []bar{
		{"tiny fwd 11-26", (0.53 + 0.87) / 2}, {"tiny fwd 11-27", (0.75 + 0.94) / 2}, {"tiny fwd 11-27b", (1.03 + 1.23) / 2}, {"tiny fwd 11-27c", (1.48 + 1.72) / 2},
		{"tiny train 11-26", (0.65 + 0.69) / 2}, {"tiny train 11-27", (0.91 + 1.01) / 2}, {"tiny train 11-27b", (1.29 + 1.59) / 2}, {"tiny train 11-27c", (1.56 + 2.20) / 2},
		{"cifar fwd 11-26", (0.74 + 0.91) / 2}, {"cifar fwd 11-27", (1.19 + 1.27) / 2}, {"cifar fwd 11-27b", (1.04 + 1.31) / 2}, {"cifar fwd 11-27c", (1.42 + 1.95) / 2},
		{"cifar train 11-26", (0.56 + 0.98) / 2}, {"cifar train 11-27", (1.13 + 1.32) / 2}, {"cifar train 11-27b", (0.97 + 1.17) / 2}, {"cifar train 11-27c", (1.49 + 2.03) / 2},
	}, 1.25, "target 1.25×")
}
