package mesh

import (
	"image"
	"image/color"
	"math"
)

// ---------------------------------------------------------------------------
// Shaded previews, pure Go: an orthographic camera turned by azimuth and
// elevation around the grid's centre, a z-buffer, and Gouraud shading
// (vertex normals, one directional light from over the viewer's shoulder
// plus ambient). The frame is fixed by the grid, not by the mesh, so
// previews of different samples show their real sizes.
// ---------------------------------------------------------------------------

// View is a camera direction in degrees: azimuth around the vertical (y)
// axis, elevation above the horizontal.
type View struct{ Azimuth, Elevation float64 }

// PreviewViews are the three views of a preview: two oblique, one from above.
var PreviewViews = []View{{-35, 25}, {55, 25}, {20, 70}}

// Colours of the renderer.
var (
	Background = color.RGBA{246, 246, 246, 255}
	Surface    = [3]float64{110, 150, 215}
)

// Render draws m, from a grid of the given side, seen from v, into a
// size×size image.
func Render(m *Mesh, side int, v View, size int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = Background.R, Background.G, Background.B, 255
	}
	az, el := v.Azimuth*math.Pi/180, v.Elevation*math.Pi/180
	// Camera axes: right, up, toward the viewer.
	right := [3]float64{math.Cos(az), 0, -math.Sin(az)}
	back := [3]float64{math.Sin(az) * math.Cos(el), math.Sin(el), math.Cos(az) * math.Cos(el)}
	up := [3]float64{back[1]*right[2] - back[2]*right[1], back[2]*right[0] - back[0]*right[2], back[0]*right[1] - back[1]*right[0]}
	centre := float64(side-1) / 2
	scale := float64(size) / (float64(side) * 1.15)
	light := normalize([3]float64{0.4*right[0] + 0.6*up[0] + back[0], 0.4*right[1] + 0.6*up[1] + back[1], 0.4*right[2] + 0.6*up[2] + back[2]})
	type sv struct{ x, y, z, shade float64 }
	normals := m.Normals()
	pts := make([]sv, len(m.Vertices))
	for i, p := range m.Vertices {
		q := [3]float64{float64(p[0]) - centre, float64(p[1]) - centre, float64(p[2]) - centre}
		n := normals[i]
		nd := float64(n[0])*light[0] + float64(n[1])*light[1] + float64(n[2])*light[2]
		pts[i] = sv{
			x:     float64(size)/2 + scale*dot64(q, right),
			y:     float64(size)/2 - scale*dot64(q, up),
			z:     dot64(q, back),
			shade: 0.28 + 0.72*math.Max(0, nd),
		}
	}
	depth := make([]float64, size*size)
	for i := range depth {
		depth[i] = math.Inf(-1)
	}
	for _, t := range m.Triangles {
		a, b, c := pts[t[0]], pts[t[1]], pts[t[2]]
		area := (b.x-a.x)*(c.y-a.y) - (b.y-a.y)*(c.x-a.x)
		if area == 0 {
			continue
		}
		x0, x1 := max(0, int(math.Floor(min(a.x, b.x, c.x)))), min(size-1, int(math.Ceil(max(a.x, b.x, c.x))))
		y0, y1 := max(0, int(math.Floor(min(a.y, b.y, c.y)))), min(size-1, int(math.Ceil(max(a.y, b.y, c.y))))
		for y := y0; y <= y1; y++ {
			py := float64(y) + 0.5
			for x := x0; x <= x1; x++ {
				px := float64(x) + 0.5
				w0 := ((b.x-px)*(c.y-py) - (b.y-py)*(c.x-px)) / area
				w1 := ((c.x-px)*(a.y-py) - (c.y-py)*(a.x-px)) / area
				w2 := 1 - w0 - w1
				if w0 < 0 || w1 < 0 || w2 < 0 {
					continue
				}
				z := w0*a.z + w1*b.z + w2*c.z
				if z <= depth[y*size+x] {
					continue
				}
				depth[y*size+x] = z
				s := w0*a.shade + w1*b.shade + w2*c.shade
				o := img.PixOffset(x, y)
				img.Pix[o] = uint8(math.Min(255, Surface[0]*s+40*s*s))
				img.Pix[o+1] = uint8(math.Min(255, Surface[1]*s+40*s*s))
				img.Pix[o+2] = uint8(math.Min(255, Surface[2]*s+40*s*s))
			}
		}
	}
	return img
}

// Preview draws the three PreviewViews side by side (3·size × size).
func Preview(m *Mesh, side, size int) *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, 3*size, size))
	for i, v := range PreviewViews {
		tile := Render(m, side, v, size)
		for y := range size {
			copy(out.Pix[out.PixOffset(i*size, y):][:4*size], tile.Pix[tile.PixOffset(0, y):][:4*size])
		}
	}
	return out
}

// Turntable renders frames of m turning once around the vertical axis at
// 25° elevation, as paletted images for an animated GIF.
func Turntable(m *Mesh, side, size, frames int) []*image.Paletted {
	pal := make(color.Palette, 0, 256)
	pal = append(pal, Background)
	for i := range 255 {
		s := float64(i) / 254 * 1.05
		pal = append(pal, color.RGBA{uint8(math.Min(255, Surface[0]*s+40*s*s)), uint8(math.Min(255, Surface[1]*s+40*s*s)),
			uint8(math.Min(255, Surface[2]*s+40*s*s)), 255})
	}
	out := make([]*image.Paletted, frames)
	for f := range frames {
		rgba := Render(m, side, View{Azimuth: 360 * float64(f) / float64(frames), Elevation: 25}, size)
		p := image.NewPaletted(rgba.Rect, pal)
		for i := 0; i < len(p.Pix); i++ {
			r, g, b := rgba.Pix[4*i], rgba.Pix[4*i+1], rgba.Pix[4*i+2]
			if r == Background.R && g == Background.G && b == Background.B {
				continue // index 0
			}
			p.Pix[i] = uint8(pal.Index(color.RGBA{r, g, b, 255}))
		}
		out[f] = p
	}
	return out
}

func dot64(a, b [3]float64) float64 { return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] }

func normalize(v [3]float64) [3]float64 {
	l := math.Sqrt(dot64(v, v))
	return [3]float64{v[0] / l, v[1] / l, v[2] / l}
}
