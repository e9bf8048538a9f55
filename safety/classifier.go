package safety

import (
	"fmt"
	"image"
	"math"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/image/draw"

	"github.com/godiffuse/godiffuse/features"
	"github.com/godiffuse/godiffuse/tensor"
)

// Classifier is an image classifier: class probabilities per image.
type Classifier interface {
	Classes() []string
	Classify(imgs []image.Image) ([][]float64, error)
}

// ClassifierChecker flags an image when a flagged class's probability is
// above the threshold; each flagged class's score is probability −
// threshold.
type ClassifierChecker struct {
	Model     Classifier
	Flagged   []string
	Threshold float64
	Label     string // the checker's name
}

// NewClassifierChecker checks that the flagged classes exist and the
// threshold is in (0, 1).
func NewClassifierChecker(label string, m Classifier, flagged []string, threshold float64) (*ClassifierChecker, error) {
	if len(flagged) == 0 {
		return nil, fmt.Errorf("classifier checker %s: no flagged class", label)
	}
	for _, f := range flagged {
		if !slices.Contains(m.Classes(), f) {
			return nil, fmt.Errorf("classifier checker %s: no class %q (the classes are %s)", label, f, strings.Join(m.Classes(), ", "))
		}
	}
	if !(threshold > 0 && threshold < 1) {
		return nil, fmt.Errorf("classifier checker %s: threshold %g: want 0 < threshold < 1", label, threshold)
	}
	return &ClassifierChecker{Model: m, Flagged: flagged, Threshold: threshold, Label: label}, nil
}

// Name implements Checker.
func (c *ClassifierChecker) Name() string { return c.Label }

// Check implements Checker.
func (c *ClassifierChecker) Check(imgs []image.Image) ([]Verdict, error) {
	probs, err := c.Model.Classify(imgs)
	if err != nil {
		return nil, err
	}
	classes := c.Model.Classes()
	out := make([]Verdict, len(imgs))
	for i, p := range probs {
		v := Verdict{Checker: c.Label, Scores: map[string]float64{}}
		var fired []string
		for _, f := range c.Flagged {
			k := slices.Index(classes, f)
			s := p[k] - c.Threshold
			v.Scores[f] = s
			if s > 0 {
				v.Flagged = true
				fired = append(fired, fmt.Sprintf("%s (p = %.3f)", f, p[k]))
			}
		}
		if v.Flagged {
			v.Message = fmt.Sprintf("%s: classified as %s, over the threshold %g", c.Label, strings.Join(fired, ", "), c.Threshold)
		}
		out[i] = v
	}
	return out, nil
}

// JudgeClassifier is the Fashion-MNIST judge as a Classifier: images are
// converted to grey and resized to 28×28 (Catmull-Rom) when they are not.
type JudgeClassifier struct {
	Judge   *features.Judge
	Device  tensor.Device
	classes []string
}

// NewJudgeClassifier loads the embedded judge with its class names.
func NewJudgeClassifier(dev tensor.Device, classes []string) (*JudgeClassifier, error) {
	j, err := features.LoadJudge(dev)
	if err != nil {
		return nil, err
	}
	if len(classes) != j.NumClasses() {
		return nil, fmt.Errorf("judge classifier: %d class names for %d classes", len(classes), j.NumClasses())
	}
	return &JudgeClassifier{Judge: j, Device: dev, classes: classes}, nil
}

// Classes implements Classifier.
func (j *JudgeClassifier) Classes() []string { return j.classes }

// Classify implements Classifier.
func (j *JudgeClassifier) Classify(imgs []image.Image) ([][]float64, error) {
	const side = 28
	pix := make([]float32, 0, len(imgs)*side*side)
	for _, img := range imgs {
		g := image.NewGray(image.Rect(0, 0, side, side))
		draw.CatmullRom.Scale(g, g.Bounds(), img, img.Bounds(), draw.Src, nil)
		for _, v := range g.Pix {
			pix = append(pix, float32(v)/127.5-1)
		}
	}
	var logits []float32
	err := tensor.Catch(func() {
		_, l := j.Judge.Forward(tensor.FromFloat32(j.Device, pix, len(imgs), 1, side, side), 0, 0)
		logits = l.MustFloat32s()
	})
	if err != nil {
		return nil, err
	}
	out := make([][]float64, len(imgs))
	for i := range imgs {
		row := logits[i*10 : (i+1)*10]
		m := float64(slices.Max(row))
		sum := 0.0
		p := make([]float64, 10)
		for k, v := range row {
			p[k] = math.Exp(float64(v) - m)
			sum += p[k]
		}
		for k := range p {
			p[k] /= sum
		}
		out[i] = p
	}
	return out, nil
}

// ParseCheckerSpec reads the classifier form of -safety-checker,
// "judge:CLASS[,CLASS…][:THRESHOLD]" (threshold 0.5 when left out), into
// the flagged classes and the threshold.
func ParseCheckerSpec(spec string) (flagged []string, threshold float64, err error) {
	rest, ok := strings.CutPrefix(spec, "judge:")
	if !ok {
		return nil, 0, fmt.Errorf("safety checker %q: want judge:CLASS[,CLASS…][:THRESHOLD]", spec)
	}
	threshold = 0.5
	if i := strings.LastIndex(rest, ":"); i >= 0 {
		if threshold, err = strconv.ParseFloat(rest[i+1:], 64); err != nil {
			return nil, 0, fmt.Errorf("safety checker %q: threshold: %v", spec, err)
		}
		rest = rest[:i]
	}
	for _, c := range strings.Split(rest, ",") {
		if c = strings.TrimSpace(c); c != "" {
			flagged = append(flagged, c)
		}
	}
	return flagged, threshold, nil
}
