package safety

import (
	"encoding/json"
	"fmt"
	"image"
	"math"
	"os"

	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// CLIP image preprocessing (transformers' CLIPImageProcessor, PIL path), as
// the feature_extractor/ of an SD pipeline does it before the safety
// checker (shared/reference/safety/clip_preprocess.py):
//
//	resize the shorter side to size.shortest_edge with Pillow's 8-bit
//	bicubic (bit-exact: Pillow's fixed-point two-pass algorithm), centre-crop
//	to crop_size, x = float32(u8·rescale_factor), (x − mean)/std in float32,
//	channels first.
// ---------------------------------------------------------------------------

// Preprocessor is a feature_extractor/preprocessor_config.json.
type Preprocessor struct {
	DoResize      bool
	ShortestEdge  int // resize target of the shorter side (0: Height×Width)
	Height, Width int // resize target when ShortestEdge is 0
	Resample      int // Pillow filter: 3 bicubic, 2 bilinear
	DoCenterCrop  bool
	CropH, CropW  int
	DoRescale     bool
	RescaleFactor float64
	DoNormalize   bool
	Mean, Std     [3]float64
}

// CLIP's normalization (OPENAI_CLIP_MEAN/STD).
var (
	clipMean = [3]float64{0.48145466, 0.4578275, 0.40821073}
	clipStd  = [3]float64{0.26862954, 0.26130258, 0.27577711}
)

// Pillow's filter numbers.
const (
	pilBilinear = 2
	pilBicubic  = 3
)

// DefaultPreprocessor is CLIPImageProcessor's default (224, bicubic).
func DefaultPreprocessor() Preprocessor {
	return Preprocessor{DoResize: true, ShortestEdge: 224, Resample: pilBicubic, DoCenterCrop: true, CropH: 224, CropW: 224,
		DoRescale: true, RescaleFactor: 1.0 / 255, DoNormalize: true, Mean: clipMean, Std: clipStd}
}

// LoadPreprocessor reads a preprocessor_config.json (size and crop_size in
// their dict or legacy int forms; missing keys take the defaults).
func LoadPreprocessor(path string) (Preprocessor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Preprocessor{}, fmt.Errorf("feature extractor: %w", err)
	}
	return ParsePreprocessor(path, b)
}

// ParsePreprocessor parses preprocessor_config.json bytes (name is used in errors).
func ParsePreprocessor(name string, data []byte) (Preprocessor, error) {
	p := DefaultPreprocessor()
	var raw struct {
		DoResize      *bool           `json:"do_resize"`
		Size          json.RawMessage `json:"size"`
		Resample      *int            `json:"resample"`
		DoCenterCrop  *bool           `json:"do_center_crop"`
		CropSize      json.RawMessage `json:"crop_size"`
		DoRescale     *bool           `json:"do_rescale"`
		RescaleFactor *float64        `json:"rescale_factor"`
		DoNormalize   *bool           `json:"do_normalize"`
		Mean          []float64       `json:"image_mean"`
		Std           []float64       `json:"image_std"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return p, fmt.Errorf("%s: not a preprocessor config: %w", name, err)
	}
	set := func(dst *bool, v *bool) {
		if v != nil {
			*dst = *v
		}
	}
	set(&p.DoResize, raw.DoResize)
	set(&p.DoCenterCrop, raw.DoCenterCrop)
	set(&p.DoRescale, raw.DoRescale)
	set(&p.DoNormalize, raw.DoNormalize)
	if raw.Resample != nil {
		p.Resample = *raw.Resample
	}
	if raw.RescaleFactor != nil {
		p.RescaleFactor = *raw.RescaleFactor
	}
	for _, c := range []struct {
		field string
		v     []float64
		dst   *[3]float64
	}{{"image_mean", raw.Mean, &p.Mean}, {"image_std", raw.Std, &p.Std}} {
		if c.v == nil {
			continue
		}
		if len(c.v) != 3 {
			return p, fmt.Errorf("%s: %s has %d values, want 3", name, c.field, len(c.v))
		}
		copy(c.dst[:], c.v)
	}
	if len(raw.Size) > 0 {
		var n int
		var d struct{ ShortestEdge, Height, Width int }
		var m map[string]int
		switch {
		case json.Unmarshal(raw.Size, &n) == nil: // legacy int: the shortest edge
			p.ShortestEdge = n
		case json.Unmarshal(raw.Size, &m) == nil:
			d.ShortestEdge, d.Height, d.Width = m["shortest_edge"], m["height"], m["width"]
			p.ShortestEdge, p.Height, p.Width = d.ShortestEdge, d.Height, d.Width
		default:
			return p, fmt.Errorf("%s: size: want an integer or {\"shortest_edge\": n}", name)
		}
	}
	if len(raw.CropSize) > 0 {
		var n int
		var m map[string]int
		switch {
		case json.Unmarshal(raw.CropSize, &n) == nil:
			p.CropH, p.CropW = n, n
		case json.Unmarshal(raw.CropSize, &m) == nil:
			p.CropH, p.CropW = m["height"], m["width"]
		default:
			return p, fmt.Errorf("%s: crop_size: want an integer or {\"height\": h, \"width\": w}", name)
		}
	}
	const maxSide = 4096
	switch {
	case p.DoResize && p.ShortestEdge == 0 && (p.Height < 1 || p.Width < 1):
		return p, fmt.Errorf("%s: size: want a shortest_edge or a height and a width", name)
	case p.ShortestEdge < 0 || p.ShortestEdge > maxSide || p.Height > maxSide || p.Width > maxSide:
		return p, fmt.Errorf("%s: size: at most %d", name, maxSide)
	case p.DoCenterCrop && (p.CropH < 1 || p.CropW < 1 || p.CropH > maxSide || p.CropW > maxSide):
		return p, fmt.Errorf("%s: crop_size %d×%d: want 1 … %d", name, p.CropH, p.CropW, maxSide)
	case p.DoResize && p.Resample != pilBicubic && p.Resample != pilBilinear:
		return p, fmt.Errorf("%s: resample %d: want 3 (bicubic) or 2 (bilinear)", name, p.Resample)
	case !(p.RescaleFactor > 0) || math.IsInf(p.RescaleFactor, 0):
		return p, fmt.Errorf("%s: rescale_factor %g: want a positive number", name, p.RescaleFactor)
	}
	for c := range 3 {
		if !(p.Std[c] > 0) || math.IsInf(p.Std[c], 0) || math.IsNaN(p.Mean[c]) || math.IsInf(p.Mean[c], 0) {
			return p, fmt.Errorf("%s: image_mean/image_std: want finite values and a positive std", name)
		}
	}
	return p, nil
}

// RGB is an 8-bit H×W×3 image, row-major, as the preprocessing sees it.
type RGB struct {
	H, W int
	Pix  []uint8
}

// ToRGB converts any image to RGB bytes (alpha ignored, as PIL's RGB mode).
func ToRGB(img image.Image) RGB {
	b := img.Bounds()
	out := RGB{H: b.Dy(), W: b.Dx(), Pix: make([]uint8, 3*b.Dx()*b.Dy())}
	if n, ok := img.(*image.NRGBA); ok {
		for y := range out.H {
			for x := range out.W {
				copy(out.Pix[3*(y*out.W+x):], n.Pix[n.PixOffset(b.Min.X+x, b.Min.Y+y):][:3])
			}
		}
		return out
	}
	for y := range out.H {
		for x := range out.W {
			r, g, bl, a := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			if a != 0 && a != 0xffff { // un-premultiply, as NRGBA holds it
				r, g, bl = r*0xffff/a, g*0xffff/a, bl*0xffff/a
			}
			i := 3 * (y*out.W + x)
			out.Pix[i], out.Pix[i+1], out.Pix[i+2] = uint8(r>>8), uint8(g>>8), uint8(bl>>8)
		}
	}
	return out
}

// Resized returns the size the shorter side rule gives (transformers'
// get_resize_output_image_size: the long side truncated).
func (p Preprocessor) Resized(h, w int) (int, int) {
	if p.ShortestEdge == 0 {
		return p.Height, p.Width
	}
	short, long := h, w
	if w <= h {
		short, long = w, h
	}
	newLong := int(float64(p.ShortestEdge) * float64(long) / float64(short))
	if w <= h {
		return newLong, p.ShortestEdge
	}
	return p.ShortestEdge, newLong
}

// Resize is the resize step alone (Pillow-exact), for tests and callers
// that want the intermediate.
func (p Preprocessor) Resize(img RGB) RGB {
	if !p.DoResize {
		return img
	}
	h, w := p.Resized(img.H, img.W)
	return PilResize(img, h, w, p.Resample)
}

// PixelValues preprocesses one image into (3, CropH, CropW) float32 values.
func (p Preprocessor) PixelValues(img RGB) []float32 {
	x := p.Resize(img)
	if p.DoCenterCrop {
		x = centerCrop(x, p.CropH, p.CropW)
	}
	out := make([]float32, 3*x.H*x.W)
	for c := range 3 {
		mean, std := float32(p.Mean[c]), float32(p.Std[c])
		for i := range x.H * x.W {
			v := float32(x.Pix[3*i+c])
			if p.DoRescale {
				v = float32(float64(x.Pix[3*i+c]) * p.RescaleFactor)
			}
			if p.DoNormalize {
				v = (v - mean) / std
			}
			out[c*x.H*x.W+i] = v
		}
	}
	return out
}

// Batch preprocesses images into pixel values (B, 3, CropH, CropW) on dev.
func (p Preprocessor) Batch(dev tensor.Device, imgs []RGB) (*tensor.Tensor, error) {
	if len(imgs) == 0 {
		return nil, fmt.Errorf("safety: no images")
	}
	var all []float32
	h, w := 0, 0
	for i, img := range imgs {
		if img.H < 1 || img.W < 1 {
			return nil, fmt.Errorf("safety: image %d is %d×%d", i, img.W, img.H)
		}
		v := p.PixelValues(img)
		all = append(all, v...)
		if p.DoCenterCrop {
			h, w = p.CropH, p.CropW
		} else {
			h, w = p.Resized(img.H, img.W)
		}
		if i > 0 && len(v) != 3*h*w {
			return nil, fmt.Errorf("safety: images of different sizes without a centre crop")
		}
	}
	return tensor.FromFloat32(dev, all, len(imgs), 3, h, w), nil
}

// centerCrop is transformers' center_crop: top = (h − ch)/2 (floor), zero
// padding (centred, the extra row/column first) when the image is smaller.
func centerCrop(img RGB, ch, cw int) RGB {
	out := RGB{H: ch, W: cw, Pix: make([]uint8, 3*ch*cw)}
	nh, nw := max(ch, img.H), max(cw, img.W)
	tp, lp := (nh-img.H+1)/2, (nw-img.W+1)/2 // padding (ceil)
	top, left := (img.H-ch)/2+tp, (img.W-cw)/2+lp
	if img.H-ch < 0 && (img.H-ch)%2 != 0 {
		top = (img.H-ch-1)/2 + tp // Python's floor division
	}
	if img.W-cw < 0 && (img.W-cw)%2 != 0 {
		left = (img.W-cw-1)/2 + lp
	}
	for y := range ch {
		for x := range cw {
			sy, sx := top+y-tp, left+x-lp // in the unpadded image
			if sy < 0 || sy >= img.H || sx < 0 || sx >= img.W {
				continue
			}
			copy(out.Pix[3*(y*cw+x):][:3], img.Pix[3*(sy*img.W+sx):][:3])
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Pillow's 8-bit resampling (libImaging/Resample.c), bit-exact: separable,
// horizontal pass first (when the width changes), then vertical, each
// rounding to uint8 through 22-bit fixed-point coefficients.
// ---------------------------------------------------------------------------

const pilPrecision = 22

func bicubicFilter(x float64) float64 {
	const a = -0.5
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return ((a+2)*x-(a+3))*x*x + 1
	}
	if x < 2 {
		return (((x-5)*x+8)*x - 4) * a
	}
	return 0
}

func bilinearFilter(x float64) float64 {
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return 1 - x
	}
	return 0
}

// pilCoeffs are Pillow's precompute_coeffs + normalize_coeffs_8bpc: for
// each output index its first input index and fixed-point weights.
func pilCoeffs(in, out, resample int) (xmin []int, k [][]int64) {
	filter, support := bicubicFilter, 2.0
	if resample == pilBilinear {
		filter, support = bilinearFilter, 1.0
	}
	scale := float64(in) / float64(out)
	filterscale := max(scale, 1)
	support *= filterscale
	ss := 1 / filterscale
	for xx := range out {
		center := (float64(xx) + 0.5) * scale
		lo := max(int(center-support+0.5), 0)
		n := min(int(center+support+0.5), in) - lo
		w := make([]float64, n)
		ww := 0.0
		for x := range n {
			w[x] = filter((float64(x+lo) - center + 0.5) * ss)
			ww += w[x]
		}
		row := make([]int64, n)
		for x := range n {
			v := w[x]
			if ww != 0 {
				v /= ww
			}
			if v < 0 {
				row[x] = int64(-0.5 + v*(1<<pilPrecision))
			} else {
				row[x] = int64(0.5 + v*(1<<pilPrecision))
			}
		}
		xmin, k = append(xmin, lo), append(k, row)
	}
	return xmin, k
}

// PilResize is Pillow's Image.resize((w, h), resample) of an 8-bit RGB image.
func PilResize(img RGB, h, w, resample int) RGB {
	out := img
	if w != img.W {
		xmin, k := pilCoeffs(img.W, w, resample)
		next := RGB{H: out.H, W: w, Pix: make([]uint8, 3*out.H*w)}
		for y := range out.H {
			for x := range w {
				for c := range 3 {
					acc := int64(1) << (pilPrecision - 1)
					for j, kv := range k[x] {
						acc += kv * int64(out.Pix[3*(y*out.W+xmin[x]+j)+c])
					}
					next.Pix[3*(y*w+x)+c] = clip8(acc >> pilPrecision)
				}
			}
		}
		out = next
	}
	if h != img.H {
		ymin, k := pilCoeffs(img.H, h, resample)
		next := RGB{H: h, W: out.W, Pix: make([]uint8, 3*h*out.W)}
		for y := range h {
			for x := range out.W {
				for c := range 3 {
					acc := int64(1) << (pilPrecision - 1)
					for j, kv := range k[y] {
						acc += kv * int64(out.Pix[3*((ymin[y]+j)*out.W+x)+c])
					}
					next.Pix[3*(y*out.W+x)+c] = clip8(acc >> pilPrecision)
				}
			}
		}
		out = next
	}
	return out
}

func clip8(v int64) uint8 { return uint8(min(max(v, 0), 255)) }
