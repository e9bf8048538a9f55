package features

import (
	"fmt"
	"math"
	"slices"

	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/safetensors"
	"github.com/godiffuse/godiffuse/tensor"
)

// InceptionName names pytorch-fid's pool3 features in statistics files.
const InceptionName = "pytorch-fid-inception-v3/pool3"

// Inception is pytorch-fid's FID InceptionV3 (the TF 2015-12-05 graph as
// ported in pt_inception-2015-12-05-6726825d.pth), for inference:
//
//	resize to 299×299 (bilinear, align_corners=False, no antialiasing),
//	scale [0,1] → [-1,1], stem (5 convolutions, 2 max pools),
//	Mixed_5b–5d (InceptionA), 6a (B), 6b–6e (C), 7a (D), 7b and 7c (E),
//	pool3 = spatial mean (2048), logits = fc (1008).
//
// The FID variants differ from torchvision's stock blocks in two places:
// their 3×3 average pools leave the zero padding out of the divisor
// (count_include_pad=False), and Mixed_7c pools with max instead of average.
// Every convolution is followed by an inference BatchNorm (ε = 0.001) and a
// ReLU; the BatchNorm is folded into the convolution's weight and bias at
// load time (in float64, then rounded once).
type Inception struct {
	dev   tensor.Device
	convs map[string]*basicConv
	fcW   *tensor.Tensor // (1008, 2048)
	fcB   *tensor.Tensor
}

type basicConv struct {
	w, b   *tensor.Tensor
	stride int
	pad    tensor.Pad4
}

// inceptionLayout lists every BasicConv2d: name, in, out, kh, kw, stride,
// padding (ph, pw), in pytorch-fid's module order.
type convSpec struct {
	name                 string
	cin, cout, kh, kw, s int
	ph, pw               int
}

func inceptionLayout() []convSpec {
	var l []convSpec
	add := func(name string, cin, cout, kh, kw, s, ph, pw int) {
		l = append(l, convSpec{name, cin, cout, kh, kw, s, ph, pw})
	}
	add("Conv2d_1a_3x3", 3, 32, 3, 3, 2, 0, 0)
	add("Conv2d_2a_3x3", 32, 32, 3, 3, 1, 0, 0)
	add("Conv2d_2b_3x3", 32, 64, 3, 3, 1, 1, 1)
	add("Conv2d_3b_1x1", 64, 80, 1, 1, 1, 0, 0)
	add("Conv2d_4a_3x3", 80, 192, 3, 3, 1, 0, 0)
	blockA := func(p string, cin, pool int) {
		add(p+".branch1x1", cin, 64, 1, 1, 1, 0, 0)
		add(p+".branch5x5_1", cin, 48, 1, 1, 1, 0, 0)
		add(p+".branch5x5_2", 48, 64, 5, 5, 1, 2, 2)
		add(p+".branch3x3dbl_1", cin, 64, 1, 1, 1, 0, 0)
		add(p+".branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1)
		add(p+".branch3x3dbl_3", 96, 96, 3, 3, 1, 1, 1)
		add(p+".branch_pool", cin, pool, 1, 1, 1, 0, 0)
	}
	blockA("Mixed_5b", 192, 32)
	blockA("Mixed_5c", 256, 64)
	blockA("Mixed_5d", 288, 64)
	add("Mixed_6a.branch3x3", 288, 384, 3, 3, 2, 0, 0)
	add("Mixed_6a.branch3x3dbl_1", 288, 64, 1, 1, 1, 0, 0)
	add("Mixed_6a.branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1)
	add("Mixed_6a.branch3x3dbl_3", 96, 96, 3, 3, 2, 0, 0)
	blockC := func(p string, c7 int) {
		add(p+".branch1x1", 768, 192, 1, 1, 1, 0, 0)
		add(p+".branch7x7_1", 768, c7, 1, 1, 1, 0, 0)
		add(p+".branch7x7_2", c7, c7, 1, 7, 1, 0, 3)
		add(p+".branch7x7_3", c7, 192, 7, 1, 1, 3, 0)
		add(p+".branch7x7dbl_1", 768, c7, 1, 1, 1, 0, 0)
		add(p+".branch7x7dbl_2", c7, c7, 7, 1, 1, 3, 0)
		add(p+".branch7x7dbl_3", c7, c7, 1, 7, 1, 0, 3)
		add(p+".branch7x7dbl_4", c7, c7, 7, 1, 1, 3, 0)
		add(p+".branch7x7dbl_5", c7, 192, 1, 7, 1, 0, 3)
		add(p+".branch_pool", 768, 192, 1, 1, 1, 0, 0)
	}
	blockC("Mixed_6b", 128)
	blockC("Mixed_6c", 160)
	blockC("Mixed_6d", 160)
	blockC("Mixed_6e", 192)
	add("Mixed_7a.branch3x3_1", 768, 192, 1, 1, 1, 0, 0)
	add("Mixed_7a.branch3x3_2", 192, 320, 3, 3, 2, 0, 0)
	add("Mixed_7a.branch7x7x3_1", 768, 192, 1, 1, 1, 0, 0)
	add("Mixed_7a.branch7x7x3_2", 192, 192, 1, 7, 1, 0, 3)
	add("Mixed_7a.branch7x7x3_3", 192, 192, 7, 1, 1, 3, 0)
	add("Mixed_7a.branch7x7x3_4", 192, 192, 3, 3, 2, 0, 0)
	blockE := func(p string, cin int) {
		add(p+".branch1x1", cin, 320, 1, 1, 1, 0, 0)
		add(p+".branch3x3_1", cin, 384, 1, 1, 1, 0, 0)
		add(p+".branch3x3_2a", 384, 384, 1, 3, 1, 0, 1)
		add(p+".branch3x3_2b", 384, 384, 3, 1, 1, 1, 0)
		add(p+".branch3x3dbl_1", cin, 448, 1, 1, 1, 0, 0)
		add(p+".branch3x3dbl_2", 448, 384, 3, 3, 1, 1, 1)
		add(p+".branch3x3dbl_3a", 384, 384, 1, 3, 1, 0, 1)
		add(p+".branch3x3dbl_3b", 384, 384, 3, 1, 1, 1, 0)
		add(p+".branch_pool", cin, 192, 1, 1, 1, 0, 0)
	}
	blockE("Mixed_7b", 1280)
	blockE("Mixed_7c", 2048)
	return l
}

const inceptionBNEps = 0.001

// LoadInception reads the FID InceptionV3 weights from a safetensors file
// with pytorch-fid's state-dict names (F32 or F16; num_batches_tracked is
// ignored), strictly: a missing, unexpected or misshapen tensor is an error
// naming the file and the tensor. dev nil means the CPU.
func LoadInception(path string, dev tensor.Device) (*Inception, error) {
	st, err := safetensors.Read(path)
	if err != nil {
		return nil, err
	}
	return NewInception(st, dev)
}

// NewInception builds the network from parsed weights (see LoadInception).
func NewInception(st *safetensors.File, dev tensor.Device) (*Inception, error) {
	if dev == nil {
		dev = kernels.CPU()
	}
	m := &Inception{dev: dev, convs: map[string]*basicConv{}}
	used := map[string]bool{}
	get := func(name string, shape ...int) ([]float64, error) {
		used[name] = true
		v, s, err := st.Float64(name)
		if err != nil {
			return nil, err
		}
		if !slices.Equal(s, shape) {
			return nil, fmt.Errorf("%s: tensor %q has shape %v, want %v", st.Path, name, s, shape)
		}
		return v, nil
	}
	for _, c := range inceptionLayout() {
		w, err := get(c.name+".conv.weight", c.cout, c.cin, c.kh, c.kw)
		if err != nil {
			return nil, err
		}
		var bn [4][]float64
		for i, part := range []string{"weight", "bias", "running_mean", "running_var"} {
			if bn[i], err = get(c.name+".bn."+part, c.cout); err != nil {
				return nil, err
			}
		}
		used[c.name+".bn.num_batches_tracked"] = true
		// BatchNorm folded: y = (conv(x) − mean)·γ/√(var+ε) + β.
		per := c.cin * c.kh * c.kw
		wf, bf := make([]float32, len(w)), make([]float32, c.cout)
		for o := range c.cout {
			if bn[3][o] < 0 {
				return nil, fmt.Errorf("%s: tensor %q has a negative variance at %d", st.Path, c.name+".bn.running_var", o)
			}
			scale := bn[0][o] / math.Sqrt(bn[3][o]+inceptionBNEps)
			for k := range per {
				wf[o*per+k] = float32(w[o*per+k] * scale)
			}
			bf[o] = float32(bn[1][o] - bn[2][o]*scale)
		}
		m.convs[c.name] = &basicConv{
			w:      tensor.FromFloat32(dev, wf, c.cout, c.cin, c.kh, c.kw),
			b:      tensor.FromFloat32(dev, bf, c.cout),
			stride: c.s,
			pad:    tensor.Pad4{c.ph, c.ph, c.pw, c.pw},
		}
	}
	fw, err := get("fc.weight", 1008, 2048)
	if err != nil {
		return nil, err
	}
	fb, err := get("fc.bias", 1008)
	if err != nil {
		return nil, err
	}
	m.fcW, m.fcB = tensor.FromFloat32(dev, toF32(fw), 1008, 2048), tensor.FromFloat32(dev, toF32(fb), 1008)
	for _, name := range st.Names() {
		if !used[name] {
			return nil, fmt.Errorf("%s: unexpected tensor %q (not part of pytorch-fid's InceptionV3)", st.Path, name)
		}
	}
	return m, nil
}

func toF32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

func (m *Inception) conv(name string, x *tensor.Tensor) *tensor.Tensor {
	c := m.convs[name]
	return tensor.ReLU(tensor.Conv2D(x, c.w, c.b, c.stride, c.pad))
}

func (m *Inception) chain(x *tensor.Tensor, names ...string) *tensor.Tensor {
	for _, n := range names {
		x = m.conv(n, x)
	}
	return x
}

// Activations runs the network on x (N, 3, H, W) in [0, 1], as pytorch-fid
// feeds it, and returns the named stages: input (resized, in [-1, 1]),
// maxpool1, maxpool2, Mixed_5b … Mixed_7c, pool3 (N, 2048), logits (N, 1008).
func (m *Inception) Activations(x *tensor.Tensor) map[string]*tensor.Tensor {
	acts := map[string]*tensor.Tensor{}
	h := tensor.Affine(resizeBilinear(x, 299, 299), 2, -1)
	acts["input"] = h
	h = m.chain(h, "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3")
	h = maxPool3x3(h, 2, 0)
	acts["maxpool1"] = h
	h = m.chain(h, "Conv2d_3b_1x1", "Conv2d_4a_3x3")
	h = maxPool3x3(h, 2, 0)
	acts["maxpool2"] = h
	for _, p := range []string{"Mixed_5b", "Mixed_5c", "Mixed_5d"} {
		h = tensor.Concat(1,
			m.conv(p+".branch1x1", h),
			m.chain(h, p+".branch5x5_1", p+".branch5x5_2"),
			m.chain(h, p+".branch3x3dbl_1", p+".branch3x3dbl_2", p+".branch3x3dbl_3"),
			m.conv(p+".branch_pool", avgPool3x3Exclusive(h)))
		acts[p] = h
	}
	h = tensor.Concat(1,
		m.conv("Mixed_6a.branch3x3", h),
		m.chain(h, "Mixed_6a.branch3x3dbl_1", "Mixed_6a.branch3x3dbl_2", "Mixed_6a.branch3x3dbl_3"),
		maxPool3x3(h, 2, 0))
	acts["Mixed_6a"] = h
	for _, p := range []string{"Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"} {
		h = tensor.Concat(1,
			m.conv(p+".branch1x1", h),
			m.chain(h, p+".branch7x7_1", p+".branch7x7_2", p+".branch7x7_3"),
			m.chain(h, p+".branch7x7dbl_1", p+".branch7x7dbl_2", p+".branch7x7dbl_3", p+".branch7x7dbl_4", p+".branch7x7dbl_5"),
			m.conv(p+".branch_pool", avgPool3x3Exclusive(h)))
		acts[p] = h
	}
	h = tensor.Concat(1,
		m.chain(h, "Mixed_7a.branch3x3_1", "Mixed_7a.branch3x3_2"),
		m.chain(h, "Mixed_7a.branch7x7x3_1", "Mixed_7a.branch7x7x3_2", "Mixed_7a.branch7x7x3_3", "Mixed_7a.branch7x7x3_4"),
		maxPool3x3(h, 2, 0))
	acts["Mixed_7a"] = h
	for _, p := range []string{"Mixed_7b", "Mixed_7c"} {
		pooled := avgPool3x3Exclusive(h) // FIDInceptionE_1
		if p == "Mixed_7c" {
			pooled = maxPool3x3(h, 1, 1) // FIDInceptionE_2
		}
		b := m.conv(p+".branch3x3_1", h)
		c := m.chain(h, p+".branch3x3dbl_1", p+".branch3x3dbl_2")
		h = tensor.Concat(1,
			m.conv(p+".branch1x1", h),
			m.conv(p+".branch3x3_2a", b), m.conv(p+".branch3x3_2b", b),
			m.conv(p+".branch3x3dbl_3a", c), m.conv(p+".branch3x3dbl_3b", c),
			m.conv(p+".branch_pool", pooled))
		acts[p] = h
	}
	pool3 := tensor.MeanAxis(h.Reshape(h.Dim(0), h.Dim(1), -1), 2, false)
	acts["pool3"] = pool3
	acts["logits"] = tensor.Linear(pool3, m.fcW, m.fcB)
	return acts
}

// Name implements Extractor.
func (m *Inception) Name() string { return InceptionName }

// FeatureDim implements Extractor.
func (m *Inception) FeatureDim() int { return 2048 }

// NumClasses implements Extractor.
func (m *Inception) NumClasses() int { return 1008 }

// Accepts implements Extractor: grey (replicated to RGB) or RGB, any size.
func (m *Inception) Accepts(c, h, w int) error {
	if c != 1 && c != 3 {
		return fmt.Errorf("InceptionV3 takes grey or RGB images, not %d channels", c)
	}
	return nil
}

// Extract implements Extractor, 8 images at a time: pool3 features and the
// softmax of the 1008 logits.
func (m *Inception) Extract(images []float32, n, c, h, w int) (feats, probs []float32, err error) {
	if err := checkImages(images, n, c, h, w); err != nil {
		return nil, nil, err
	}
	if err := m.Accepts(c, h, w); err != nil {
		return nil, nil, err
	}
	err = tensor.Catch(func() {
		const chunk = 8
		per := c * h * w
		for s := 0; s < n; s += chunk {
			k := min(chunk, n-s)
			x01 := make([]float32, k*3*h*w)
			for i := range k {
				img := images[(s+i)*per : (s+i+1)*per]
				for ch := range 3 {
					src := img[(ch%c)*h*w : (ch%c+1)*h*w]
					dst := x01[(i*3+ch)*h*w : (i*3+ch+1)*h*w]
					for p, v := range src {
						dst[p] = (v + 1) / 2
					}
				}
			}
			acts := m.Activations(tensor.FromFloat32(m.dev, x01, k, 3, h, w))
			feats = append(feats, acts["pool3"].MustFloat32s()...)
			probs = append(probs, tensor.Softmax(acts["logits"]).MustFloat32s()...)
		}
	})
	return feats, probs, err
}

// InceptionKeys lists the state-dict names LoadInception reads (without the
// ignored num_batches_tracked), for converters and error messages.
func InceptionKeys() []string {
	var keys []string
	for _, c := range inceptionLayout() {
		keys = append(keys, c.name+".conv.weight")
		for _, p := range []string{"weight", "bias", "running_mean", "running_var"} {
			keys = append(keys, c.name+".bn."+p)
		}
	}
	return append(keys, "fc.weight", "fc.bias")
}
