// Command shapes3dgrid draws real data.Shapes3D solids as diffuse sample3d
// draws samples — a sheet of three shaded views each, n per class in rows —
// so that samples can be set beside the data (bench/RESULTS.md):
//
//	go run ./bench/internal/shapes3dgrid -n 4 -out bench/shapes3d_real.png
package main

import (
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"log"
	"os"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/mesh"
)

func main() {
	n := flag.Int("n", 4, "solids per class")
	out := flag.String("out", "shapes3d_real.png", "output PNG")
	split := flag.String("split", "test", "train or test")
	flag.Parse()
	k := len(data.Shape3DClasses)
	ds, err := data.Shapes3D(*n*k, 1, *split)
	if err != nil {
		log.Fatal(err)
	}
	const tile, textH = 128, 16
	sheet := image.NewRGBA(image.Rect(0, 0, *n*3*tile, k*(tile+textH)))
	draw.Draw(sheet, sheet.Bounds(), image.NewUniform(mesh.Background), image.Point{}, draw.Src)
	d := font.Drawer{Dst: sheet, Src: image.NewUniform(color.RGBA{40, 40, 40, 255}), Face: basicfont.Face7x13}
	v := make([]float32, data.Shape3DSize*data.Shape3DSize*data.Shape3DSize)
	for i := range ds.Len() {
		c := ds.Image(i, v)
		m, err := mesh.Extract(v, data.Shape3DSize, data.Shape3DSize, data.Shape3DSize, 0)
		if err != nil {
			log.Fatal(err)
		}
		col := i / k
		x0, y0 := col*3*tile, c*(tile+textH)
		draw.Draw(sheet, image.Rect(x0, y0+textH, x0+3*tile, y0+textH+tile), mesh.Preview(m, data.Shape3DSize, tile), image.Point{}, draw.Src)
		d.Dot = fixed.P(x0+4, y0+12)
		d.DrawString(fmt.Sprintf("%s (real, %s #%d)", data.Shape3DClasses[c], *split, i))
	}
	f, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	if err := png.Encode(f, sheet); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
}
