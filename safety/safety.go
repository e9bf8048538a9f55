// Package safety checks generated images before they are written: a
// Checker scores each image (per category, flagged or not, with a message)
// and a Policy says what happens to a flagged one — Block (not written),
// Blur (a strong pixelation is written instead), Warn (written, with a
// warning) or Off (no check).
//
// Built-in checkers: SDChecker, Stable Diffusion's own safety_checker/ (a
// CLIP vision tower, its projection and concept embeddings with thresholds,
// as diffusers' StableDiffusionSafetyChecker computes them, after the
// feature_extractor/ preprocessing, Pillow-exact), and ClassifierChecker,
// any image classifier with a list of flagged classes and a threshold.
// Programs plug in their own by implementing Checker.
package safety

import (
	"fmt"
	"image"
	"image/color"
	"slices"
	"strings"
)

// Verdict is a checker's judgement of one image.
type Verdict struct {
	Checker string             // the checker's name
	Flagged bool               // the image should not be published as it is
	Scores  map[string]float64 // per category: > 0 is over its threshold
	Message string             // why, when flagged
}

// Checker judges images.
type Checker interface {
	Name() string
	Check(imgs []image.Image) ([]Verdict, error)
}

// Policy is what happens to a flagged image.
type Policy string

// Policies.
const (
	Off   Policy = "off"   // no check
	Warn  Policy = "warn"  // written as it is, with a warning
	Blur  Policy = "blur"  // a strong pixelation is written instead
	Block Policy = "block" // not written
)

// Policies lists the policies in the order of their strength.
var Policies = []Policy{Off, Warn, Blur, Block}

// ParsePolicy reads a policy name.
func ParsePolicy(s string) (Policy, error) {
	if slices.Contains(Policies, Policy(s)) {
		return Policy(s), nil
	}
	names := make([]string, len(Policies))
	for i, p := range Policies {
		names[i] = string(p)
	}
	return "", fmt.Errorf("safety policy %q: want %s", s, strings.Join(names, ", "))
}

// Outcome is what Apply decided for one image.
type Outcome struct {
	Verdict Verdict
	Image   image.Image // what to write (nil: nothing, the image is withheld)
	Action  string      // "ok", "warned", "blurred", "blocked" or "unchecked"
}

// Apply checks imgs with c and applies p to each: the images to write (nil
// for a withheld one) with the verdicts. With p Off, or c nil, nothing is
// checked.
func Apply(c Checker, p Policy, imgs []image.Image) ([]Outcome, error) {
	out := make([]Outcome, len(imgs))
	if p == Off || c == nil {
		for i, img := range imgs {
			out[i] = Outcome{Image: img, Action: "unchecked"}
		}
		return out, nil
	}
	vs, err := c.Check(imgs)
	if err != nil {
		return nil, fmt.Errorf("safety check (%s): %w", c.Name(), err)
	}
	if len(vs) != len(imgs) {
		return nil, fmt.Errorf("safety check (%s): %d verdicts for %d images", c.Name(), len(vs), len(imgs))
	}
	for i, img := range imgs {
		o := Outcome{Verdict: vs[i], Image: img, Action: "ok"}
		if vs[i].Flagged {
			switch p {
			case Warn:
				o.Action = "warned"
			case Blur:
				o.Image, o.Action = Pixelate(img, 16), "blurred"
			case Block:
				o.Image, o.Action = nil, "blocked"
			}
		}
		out[i] = o
	}
	return out, nil
}

// Pixelate replaces the image by blocks of about 1/blocks of its shorter
// side, each the mean colour of what it covers (nothing of the content
// survives but the coarse colours).
func Pixelate(img image.Image, blocks int) *image.NRGBA {
	b := img.Bounds()
	out := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	side := max(1, min(b.Dx(), b.Dy())/max(1, blocks))
	for y0 := 0; y0 < b.Dy(); y0 += side {
		for x0 := 0; x0 < b.Dx(); x0 += side {
			var r, g, bl, n uint64
			for y := y0; y < min(y0+side, b.Dy()); y++ {
				for x := x0; x < min(x0+side, b.Dx()); x++ {
					c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
					r, g, bl, n = r+uint64(c.R), g+uint64(c.G), bl+uint64(c.B), n+1
				}
			}
			c := color.NRGBA{uint8(r / n), uint8(g / n), uint8(bl / n), 255}
			for y := y0; y < min(y0+side, b.Dy()); y++ {
				for x := x0; x < min(x0+side, b.Dx()); x++ {
					out.SetNRGBA(x, y, c)
				}
			}
		}
	}
	return out
}
