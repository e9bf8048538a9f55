// Package watermark hides a 48-bit payload in an image's luma, invisibly,
// and finds it again after JPEG compression, resizing, cropping and
// brightness changes. Pure Go.
//
// The scheme is spread-spectrum in the spatial domain, tiled so that a
// crop only shifts it:
//
//   - the payload (a 16-bit tag 'gd' and 32 bits of the caller's, e.g. a
//     hash of the model and the seed) gets a CRC-16, making 64 coded bits;
//   - a 32×64-pixel tile holds 8×16 cells of 4×4 pixels, a horizontal pair
//     of cells per coded bit (a keyed permutation): the pair adds +d and −d
//     to the luma (R, G and B alike), d = ±Strength, the sign the bit XOR a
//     keyed pseudo-random sign; pairs keep the pattern free of local mean,
//     so the detector's high-pass does not eat it; the tile repeats over
//     the whole image;
//   - detection high-passes the luma (minus its 9×9 box mean), folds it
//     modulo the tile (summing every tile onto one: the image content
//     averages out, the pattern adds up), finds the phase within a cell
//     (the largest total |pair difference|) and the cell shift (the best
//     agreement with the known tag) — a crop only moves the grid — and
//     reads each pair's sign; the watermark is present when the tag and the
//     CRC both check.
//
// An image needs MinSide pixels on its shorter side: a 512×512 image
// repeats each bit 128 times; smaller ones (a 32×32 sample holds one
// tile) do not carry it reliably, and Embed refuses them.
package watermark

import (
	"cmp"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"slices"
)

const (
	tileH, tileW = 32, 64 // pixels
	cell         = 4      // pixels
	rows, cols   = tileH / cell, tileW / cell
	nBits        = rows * cols / 2 // 64 coded bits, a pair of cells each
	tagValue     = 0x6764          // "gd"
	// Strength is the luma amplitude of the pattern (levels of 255): PSNR
	// about 20·log10(255/Strength) ≈ 38.6 dB before clipping.
	Strength = 3.0
	// MinSide is the smallest shorter side Embed accepts.
	MinSide = 128
)

// key fixes the pattern: the cell signs and the bit permutation.
var signs, perm = func() ([nBits]float64, [nBits]int) {
	r := rand.New(rand.NewPCG(0x676f646966, 0x77617465726d61)) // fixed key
	var s [nBits]float64
	for i := range s {
		s[i] = float64(2*r.IntN(2) - 1)
	}
	var p [nBits]int
	for i, v := range r.Perm(nBits) {
		p[i] = v
	}
	return s, p
}()

// Payload makes a payload from the caller's 32 bits (the tag is added).
func Payload(data uint32) uint64 { return uint64(tagValue)<<32 | uint64(data) }

// PayloadFor hashes a model name and a seed into a payload.
func PayloadFor(model string, seed uint64) uint64 {
	h := crc32.NewIEEE()
	fmt.Fprintf(h, "%s\x00%d", model, seed)
	return Payload(h.Sum32())
}

// crc16 is CRC-16/CCITT-FALSE of the 48 payload bits.
func crc16(payload uint64) uint16 {
	crc := uint16(0xffff)
	for i := 5; i >= 0; i-- {
		crc ^= uint16(byte(payload>>(8*i))) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// coded is the 64 bits written: the payload's 48 and its CRC's 16.
func coded(payload uint64) uint64 { return payload<<16 | uint64(crc16(payload&(1<<48-1))) }

// Embed returns img with payload hidden in it (only the low 48 bits count).
func Embed(img image.Image, payload uint64) (*image.NRGBA, error) {
	b := img.Bounds()
	if min(b.Dx(), b.Dy()) < MinSide {
		return nil, fmt.Errorf("watermark: a %d×%d image is too small (the shorter side needs %d pixels)", b.Dx(), b.Dy(), MinSide)
	}
	bits := coded(payload & (1<<48 - 1))
	var delta [tileH][tileW]float64
	for c := range nBits { // pair c: cells (c/8, 2·(c%8)) and the one right of it
		cy, cx := c/(cols/2), 2*(c%(cols/2))
		d := Strength * signs[c] * (float64(bits>>(nBits-1-perm[c])&1)*2 - 1)
		for y := range cell {
			for x := range cell {
				delta[cy*cell+y][cx*cell+x] = d
				delta[cy*cell+y][(cx+1)*cell+x] = -d
			}
		}
	}
	out := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := range b.Dy() {
		for x := range b.Dx() {
			c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			d := delta[y%tileH][x%tileW]
			out.SetNRGBA(x, y, color.NRGBA{add(c.R, d), add(c.G, d), add(c.B, d), c.A})
		}
	}
	return out, nil
}

func add(v uint8, d float64) uint8 { return uint8(min(max(math.Round(float64(v)+d), 0), 255)) }

// Detection is what Detect found.
type Detection struct {
	Present    bool    // the tag and the CRC check
	Payload    uint64  // the 48 bits read (meaningful when Present)
	Bits       uint64  // the 64 coded bits read
	Confidence float64 // the estimated share of correctly read bits (0.5: chance)
	OffsetX    int     // the alignment found (the grid's phase)
	OffsetY    int
}

// Detect looks for a watermark.
func Detect(img image.Image) Detection {
	b := img.Bounds()
	W, H := b.Dx(), b.Dy()
	if W < tileW || H < tileH {
		return Detection{}
	}
	luma := make([]float64, W*H)
	for y := range H {
		for x := range W {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			luma[y*W+x] = (0.299*float64(r) + 0.587*float64(g) + 0.114*float64(bl)) / 257
		}
	}
	hp := highPass(luma, W, H, 4)
	// Clipped: edges and texture of the content are heavy-tailed noise to
	// the pattern, which never exceeds a few levels.
	const clip = 2 * Strength
	var fold [tileH][tileW]float64
	for y := range H {
		for x := range W {
			fold[y%tileH][x%tileW] += min(max(hp[y*W+x], -clip), clip)
		}
	}
	// pairSums are the pair differences (left cell − right cell) at an
	// alignment. The phase within a cell is the one of the largest total
	// |difference| (every whole-cell shift of it gives about the same, so
	// the energy alone cannot tell the cells apart).
	pairSums := func(ox, oy int) (sums [nBits]float64) {
		for c := range nBits {
			cy, cx := c/(cols/2), 2*(c%(cols/2))
			for y := range cell {
				for x := range cell {
					yy := (oy + cy*cell + y) % tileH
					sums[c] += fold[yy][(ox+cx*cell+x)%tileW] - fold[yy][(ox+(cx+1)*cell+x)%tileW]
				}
			}
		}
		return sums
	}
	phase, bestE := [2]int{}, -1.0
	for oy := range cell {
		for ox := range cell {
			e := 0.0
			for _, s := range pairSums(ox, oy) {
				e += math.Abs(s)
			}
			if e > bestE {
				phase, bestE = [2]int{ox, oy}, e
			}
		}
	}
	// The cell shift: the one whose tag cells agree best with the tag (16
	// known bits), weighted by their strength.
	tagBits := uint64(tagValue) << 48
	best, bestScore := [2]int{}, math.Inf(-1)
	var bestCorr [nBits]float64
	for sy := range rows {
		for sx := range cols {
			ox, oy := phase[0]+sx*cell, phase[1]+sy*cell
			sums := pairSums(ox, oy)
			var corr [nBits]float64
			score := 0.0
			for c := range nBits {
				corr[c] = sums[c] * signs[c]
				if bit := nBits - 1 - perm[c]; bit >= 48 {
					want := float64(tagBits>>bit&1)*2 - 1
					score += corr[c] * want
				}
			}
			if score > bestScore {
				best, bestScore, bestCorr = [2]int{ox, oy}, score, corr
			}
		}
	}
	// Noise scale of a cell sum: the spread of the folded values.
	m, v := 0.0, 0.0
	for y := range tileH {
		for x := range tileW {
			m += fold[y][x] / (tileH * tileW)
		}
	}
	for y := range tileH {
		for x := range tileW {
			v += (fold[y][x] - m) * (fold[y][x] - m) / (tileH * tileW)
		}
	}
	// A pair difference sums 32 values; taken as independent (the pattern
	// in them makes this err on the safe side).
	sigma := math.Sqrt(32 * v)
	d := Detection{OffsetX: best[0], OffsetY: best[1]}
	conf := 0.0
	weak := make([]int, nBits) // bit positions, weakest reading first
	z := make([]float64, nBits)
	for c := range nBits {
		bit := nBits - 1 - perm[c]
		if bestCorr[c] > 0 {
			d.Bits |= 1 << bit
		}
		z[bit] = math.Abs(bestCorr[c]) / max(sigma, 1e-9)
		conf += 1 - 0.5*math.Erfc(z[bit]/math.Sqrt2) // Φ(|z|)
		weak[c] = bit
	}
	d.Confidence = conf / nBits
	slices.SortFunc(weak, func(a, b int) int { return cmp.Compare(z[a], z[b]) })
	// Chase decoding: the reading as it is, then with one or two of its
	// eight weakest bits flipped, until the tag and the CRC check (37
	// candidates against a 32-bit check: a false positive stays below 1e-8).
	ok := func(bits uint64) bool { p := bits >> 16; return p>>32 == tagValue && uint16(bits) == crc16(p) }
	candidates := []uint64{d.Bits}
	for i := range 8 {
		candidates = append(candidates, d.Bits^1<<weak[i])
		for j := i + 1; j < 8; j++ {
			candidates = append(candidates, d.Bits^1<<weak[i]^1<<weak[j])
		}
	}
	for _, c := range candidates {
		if ok(c) {
			d.Bits, d.Present = c, true
			break
		}
	}
	d.Payload = d.Bits >> 16
	return d
}

// highPass returns v minus its (2r+1)² box mean (edges clamped), with
// summed-area tables.
func highPass(v []float64, W, H, r int) []float64 {
	sat := make([]float64, (W+1)*(H+1))
	for y := range H {
		row := 0.0
		for x := range W {
			row += v[y*W+x]
			sat[(y+1)*(W+1)+x+1] = sat[y*(W+1)+x+1] + row
		}
	}
	out := make([]float64, W*H)
	for y := range H {
		y0, y1 := max(0, y-r), min(H, y+r+1)
		for x := range W {
			x0, x1 := max(0, x-r), min(W, x+r+1)
			s := sat[y1*(W+1)+x1] - sat[y0*(W+1)+x1] - sat[y1*(W+1)+x0] + sat[y0*(W+1)+x0]
			out[y*W+x] = v[y*W+x] - s/float64((y1-y0)*(x1-x0))
		}
	}
	return out
}
