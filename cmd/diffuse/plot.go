package main

import (
	"bytes"
	"fmt"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/godiffuse/godiffuse/ddpm"
	"github.com/godiffuse/godiffuse/internal/atomicfile"
)

// savePlots renders plots side by side into one PNG, written atomically.
func savePlots(path string, width, height vg.Length, plots ...*plot.Plot) error {
	img := vgimg.New(width, height)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: len(plots), PadX: vg.Millimeter * 4}
	canvases := plot.Align([][]*plot.Plot{plots}, tiles, dc)
	for i, p := range plots {
		p.Draw(canvases[0][i])
	}
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return fmt.Errorf("render %s: %w", path, err)
	}
	return atomicfile.Write(path, buf.Bytes())
}

// lossPlot draws the per-step loss (log scale) and its running mean.
func lossPlot(path string, losses []float32) error {
	p := plot.New()
	p.Title.Text = "training loss"
	p.X.Label.Text = "step"
	p.Y.Label.Text = "loss (log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	raw, smooth := make(plotter.XYs, 0, len(losses)), make(plotter.XYs, 0, len(losses))
	avg := 0.0
	for i, l := range losses {
		v := math.Max(float64(l), 1e-6)
		if i == 0 {
			avg = v
		}
		avg = 0.95*avg + 0.05*v
		raw = append(raw, plotter.XY{X: float64(i + 1), Y: v})
		smooth = append(smooth, plotter.XY{X: float64(i + 1), Y: avg})
	}
	if len(raw) == 0 {
		return nil
	}
	// The range set here: gonum pads a degenerate one (a single step) by ±1,
	// which goes below zero, where a log scale panics.
	lo, hi := math.Inf(1), 0.0
	for _, xy := range raw {
		lo, hi = math.Min(lo, xy.Y), math.Max(hi, xy.Y)
	}
	p.Y.Min, p.Y.Max = lo/1.25, hi*1.25
	l1, err := plotter.NewLine(raw)
	if err != nil {
		return err
	}
	l1.Color = plotutil.Color(1)
	l1.Width = vg.Points(0.5)
	l2, err := plotter.NewLine(smooth)
	if err != nil {
		return err
	}
	l2.Color = plotutil.Color(0)
	l2.Width = vg.Points(2)
	p.Add(plotter.NewGrid(), l1, l2)
	p.Legend.Add("loss", l1)
	p.Legend.Add("running mean (0.95)", l2)
	p.Legend.Top = true
	return savePlots(path, 7*vg.Inch, 4*vg.Inch, p)
}

// schedulesPlot draws β_t and ᾱ_t for every schedule.
func schedulesPlot(path string, T int) error {
	pb, pa := plot.New(), plot.New()
	pb.Title.Text, pa.Title.Text = "β_t", "ᾱ_t"
	for _, p := range []*plot.Plot{pb, pa} {
		p.X.Label.Text = "t"
		p.Add(plotter.NewGrid())
		p.Legend.Top = true
	}
	pb.Legend.Left = true
	pb.Title.Text = "β_t (log scale)"
	pb.Y.Scale = plot.LogScale{}
	pb.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	for i, name := range ddpm.BetaSchedules {
		kind, _ := ddpm.ParseBetaSchedule(name)
		s, err := ddpm.NewSchedule(kind, T)
		if err != nil {
			return err
		}
		b, a := make(plotter.XYs, T), make(plotter.XYs, T)
		for t := range T {
			b[t] = plotter.XY{X: float64(t), Y: s.Betas[t]}
			a[t] = plotter.XY{X: float64(t), Y: s.AlphasCumprod[t]}
		}
		for _, pair := range []struct {
			p   *plot.Plot
			xys plotter.XYs
		}{{pb, b}, {pa, a}} {
			l, err := plotter.NewLine(pair.xys)
			if err != nil {
				return err
			}
			l.Color = plotutil.Color(i)
			l.Width = vg.Points(1.5)
			pair.p.Add(l)
			pair.p.Legend.Add(name, l)
		}
	}
	return savePlots(path, 11*vg.Inch, 4*vg.Inch, pb, pa)
}
