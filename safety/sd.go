package safety

import (
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/nn/clip"
	"github.com/godiffuse/godiffuse/safetensors"
	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// Stable Diffusion's safety checker (diffusers' StableDiffusionSafetyChecker,
// shared/reference/safety/safety_checker.py): CLIP vision tower → projection
// → cosine similarity with 17 concept and 3 "special care" embeddings; per
// image, in order, a special concept fires when round(cos − threshold +
// adjustment, 3) > 0 and switches the adjustment to 0.01 for what follows;
// then every concept with round(cos − threshold + adjustment, 3) > 0 is bad,
// and an image with a bad concept is flagged.
// ---------------------------------------------------------------------------

// SDChecker is a loaded safety_checker/ (with its feature_extractor/).
type SDChecker struct {
	Vision      *clip.VisionModel
	Projection  *nn.Linear // no bias
	Concepts    *tensor.Tensor
	Special     *tensor.Tensor
	ConceptW    []float32 // thresholds
	SpecialW    []float32
	Preprocess  Preprocessor
	Device      tensor.Device
	conceptsCPU [][]float64 // unit rows, for the cosines on the host
	specialCPU  [][]float64
}

// LoadSDChecker loads dir/safety_checker (config.json + model.safetensors or
// model.fp16.safetensors) and dir/feature_extractor/preprocessor_config.json
// (CLIP's defaults when that folder is missing), its weights in float32.
func LoadSDChecker(dev tensor.Device, dir string) (*SDChecker, error) {
	return LoadSDCheckerWith(dev, dir, nn.StoreF32)
}

// LoadSDCheckerWith is LoadSDChecker with the precision the Linear and
// Conv2d weights are kept in (nn.StoreF16 halves SD 1.x's 1.2 GB).
func LoadSDCheckerWith(dev tensor.Device, dir string, storage nn.Storage) (*SDChecker, error) {
	scDir := filepath.Join(dir, "safety_checker")
	cfgPath := filepath.Join(scDir, "config.json")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("safety checker: %w", err)
	}
	vc, proj, err := clip.VisionFromCLIPConfig(cfgPath, b)
	if err != nil {
		return nil, err
	}
	pre := DefaultPreprocessor()
	if pp := filepath.Join(dir, "feature_extractor", "preprocessor_config.json"); fileExists(pp) {
		if pre, err = LoadPreprocessor(pp); err != nil {
			return nil, err
		}
	}
	if pre.DoCenterCrop && (pre.CropH != vc.ImageSize || pre.CropW != vc.ImageSize) {
		return nil, fmt.Errorf("safety checker: %s: the feature extractor crops to %d×%d, the vision tower takes %d×%d",
			dir, pre.CropW, pre.CropH, vc.ImageSize, vc.ImageSize)
	}
	weights, err := nn.FindWeights(scDir, "model")
	if err != nil {
		return nil, fmt.Errorf("safety checker: %w", err)
	}
	st, err := safetensors.Read(weights)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	nc, ns := 17, 3 // diffusers hard-codes them; a file may hold others
	if info, ok := st.Tensors["concept_embeds"]; ok && len(info.Shape) == 2 {
		nc = info.Shape[0]
	}
	if info, ok := st.Tensors["special_care_embeds"]; ok && len(info.Shape) == 2 {
		ns = info.Shape[0]
	}
	if nc < 1 || nc > 1024 || ns < 0 || ns > 1024 {
		return nil, fmt.Errorf("safety checker: %s: %d concepts and %d special ones: want 1 … 1024", weights, nc, ns)
	}
	c, cw, sw, ps, err := shapesOnly(vc, proj, nc, ns)
	if err != nil {
		return nil, err
	}
	c.Preprocess, c.Device = pre, dev
	ignore := func(k string) bool { return strings.HasSuffix(k, "embeddings.position_ids") }
	if err := nn.LoadParams(ps, st, nn.LoadOptions{Ignore: ignore, Storage: storage, Device: dev}); err != nil {
		return nil, err
	}
	c.Vision.Device = dev
	if c.ConceptW, err = cw.Float32s(); err != nil {
		return nil, err
	}
	if c.SpecialW, err = sw.Float32s(); err != nil {
		return nil, err
	}
	if c.conceptsCPU, err = unitRows(c.Concepts); err != nil {
		return nil, err
	}
	if c.specialCPU, err = unitRows(c.Special); err != nil {
		return nil, err
	}
	nn.NoGrad(ps)
	return c, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// unitRows returns the rows of a (n, P) tensor divided by max(‖row‖, 1e-12).
func unitRows(t *tensor.Tensor) ([][]float64, error) {
	v, err := t.Float32s()
	if err != nil {
		return nil, err
	}
	n := t.Dim(0)
	if n == 0 {
		return nil, nil
	}
	P := len(v) / n
	rows := make([][]float64, n)
	for i := range n {
		rows[i] = unit(v[i*P : (i+1)*P])
	}
	return rows, nil
}

func unit(v []float32) []float64 {
	s := 0.0
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	norm := max(math.Sqrt(s), 1e-12)
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x) / norm
	}
	return out
}

// SDOutput is the checker's output for a batch.
type SDOutput struct {
	Pooled, ImageEmbeds *tensor.Tensor // (B, D), (B, P)
	Vision              *clip.VisionOutput
	Scores              []SDScores
}

// SDScores are one image's decision values, as diffusers' forward computes
// them.
type SDScores struct {
	SpecialCos, ConceptCos []float32 // cosine similarities (float32, as diffusers' .float().numpy())
	SpecialRaw, ConceptRaw []float64 // cos − threshold + adjustment, unrounded
	SpecialMilli           []int64   // rint(raw·1000): the rounded scores ×1000
	ConceptMilli           []int64
	SpecialCare            []bool // special concepts that fired
	BadConcepts            []bool
	Adjustment             float64
	Flagged                bool
}

// Run embeds pixel values (B, 3, S, S) and scores them.
func (c *SDChecker) Run(pixels *tensor.Tensor) (*SDOutput, error) {
	vo, err := c.Vision.Forward(pixels)
	if err != nil {
		return nil, err
	}
	out := &SDOutput{Vision: vo, Pooled: vo.Pooled}
	if err := tensor.Catch(func() { out.ImageEmbeds = c.Projection.Forward(vo.Pooled) }); err != nil {
		return nil, err
	}
	emb, err := out.ImageEmbeds.Float32s()
	if err != nil {
		return nil, err
	}
	B := pixels.Dim(0)
	P := len(emb) / B
	for i := range B {
		out.Scores = append(out.Scores, c.score(unit(emb[i*P:(i+1)*P])))
	}
	return out, nil
}

// score is diffusers' per-image decision loop on the unit image embedding.
func (c *SDChecker) score(e []float64) SDScores {
	cos := func(rows [][]float64) []float32 {
		out := make([]float32, len(rows))
		for j, r := range rows {
			s := 0.0
			for k, v := range r {
				s += v * e[k]
			}
			out[j] = float32(s)
		}
		return out
	}
	s := SDScores{SpecialCos: cos(c.specialCPU), ConceptCos: cos(c.conceptsCPU)}
	round3 := func(x float64) int64 { return int64(math.RoundToEven(x * 1000)) }
	for j, v := range s.SpecialCos {
		x := float64(v) - float64(c.SpecialW[j]) + s.Adjustment
		m := round3(x)
		s.SpecialRaw, s.SpecialMilli = append(s.SpecialRaw, x), append(s.SpecialMilli, m)
		s.SpecialCare = append(s.SpecialCare, m > 0)
		if m > 0 {
			s.Adjustment = 0.01
		}
	}
	for j, v := range s.ConceptCos {
		x := float64(v) - float64(c.ConceptW[j]) + s.Adjustment
		m := round3(x)
		s.ConceptRaw, s.ConceptMilli = append(s.ConceptRaw, x), append(s.ConceptMilli, m)
		s.BadConcepts = append(s.BadConcepts, m > 0)
		s.Flagged = s.Flagged || m > 0
	}
	return s
}

// StateDictParams builds the checker's parameters for a config on a
// shapes-only device (nothing allocated), in PyTorch's state-dict order.
func StateDictParams(vc clip.VisionConfig, proj int) ([]nn.Param, error) {
	_, _, _, ps, err := shapesOnly(vc, proj, 17, 3)
	return ps, err
}

// shapesOnly builds a checker of nc concepts and ns special ones on a
// shapes-only device, with its thresholds and its parameter list in
// PyTorch's state-dict order (loading binds them to a device).
func shapesOnly(vc clip.VisionConfig, proj, nc, ns int) (c *SDChecker, cw, sw *tensor.Tensor, ps nn.ParamList, err error) {
	shapes := tensor.ShapesOnly()
	vision, err := clip.NewVisionModel(shapes, vc, nil)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	c = &SDChecker{Vision: vision, Projection: nn.NewLinear(shapes, nil, vc.HiddenSize, proj, false),
		Concepts: tensor.Zeros(shapes, nc, proj), Special: tensor.Zeros(shapes, ns, proj)}
	cw, sw = tensor.Zeros(shapes, nc), tensor.Zeros(shapes, ns)
	ps.Add("", "concept_embeds", c.Concepts)
	ps.Add("", "special_care_embeds", c.Special)
	ps.Add("", "concept_embeds_weights", cw)
	ps.Add("", "special_care_embeds_weights", sw)
	vision.Collect("vision_model.vision_model.", &ps)
	c.Projection.Collect("visual_projection.", &ps)
	return c, cw, sw, ps, nil
}

// Name implements Checker.
func (c *SDChecker) Name() string { return "sd-safety-checker" }

// Check implements Checker: the preprocessing of the feature extractor,
// then Run.
func (c *SDChecker) Check(imgs []image.Image) ([]Verdict, error) {
	rgb := make([]RGB, len(imgs))
	for i, img := range imgs {
		rgb[i] = ToRGB(img)
	}
	pixels, err := c.Preprocess.Batch(c.Device, rgb)
	if err != nil {
		return nil, err
	}
	out, err := c.Run(pixels)
	if err != nil {
		return nil, err
	}
	vs := make([]Verdict, len(imgs))
	for i, s := range out.Scores {
		v := Verdict{Checker: c.Name(), Flagged: s.Flagged, Scores: map[string]float64{}}
		var fired []string
		for j, m := range s.ConceptMilli {
			v.Scores[fmt.Sprintf("concept_%d", j)] = float64(m) / 1000
			if s.BadConcepts[j] {
				fired = append(fired, fmt.Sprintf("concept %d (%+.3f)", j, float64(m)/1000))
			}
		}
		for j, m := range s.SpecialMilli {
			v.Scores[fmt.Sprintf("special_%d", j)] = float64(m) / 1000
		}
		if s.Flagged {
			v.Message = "Stable Diffusion's safety checker flags " + strings.Join(fired, ", ")
		}
		vs[i] = v
	}
	return vs, nil
}
