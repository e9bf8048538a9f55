package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/internal/atomicfile"
	"github.com/godiffuse/godiffuse/pngtext"
	"github.com/godiffuse/godiffuse/safety"
	"github.com/godiffuse/godiffuse/tensor"
	"github.com/godiffuse/godiffuse/watermark"
)

// Every generated PNG carries its provenance: the "parameters" text chunk
// as SD front-ends write it, and a machine-readable JSON record in the
// "godiffuse" chunk (software, model and weights hash, settings, time, the
// safety verdict); -no-metadata leaves both out. Generated images pass
// the safety check of -safety-checker under the policy of -safety first.

// provenance is the JSON record of one written image.
type provenance struct {
	Software  string         `json:"software"`
	Version   string         `json:"version"`
	Task      string         `json:"task"` // sample, txt2img, img2img, inpaint
	Model     string         `json:"model"`
	ModelHash string         `json:"model_hash"`
	Sampler   string         `json:"sampler"`
	Steps     int            `json:"steps"`
	Guidance  float64        `json:"guidance"`
	Interval  *[2]float64    `json:"guidance_interval,omitempty"` // the fractions of T guided, when not all
	Seed      uint64         `json:"seed"`
	Prompt    string         `json:"prompt,omitempty"`
	Negative  string         `json:"negative_prompt,omitempty"`
	Class     string         `json:"class,omitempty"`
	Images    int            `json:"images,omitempty"` // a grid's count
	Width     int            `json:"width"`
	Height    int            `json:"height"`
	Time      string         `json:"time"`
	Safety    *safetyRecord  `json:"safety"`
	Watermark string         `json:"watermark"` // the payload in hex, or why there is none
	Extra     map[string]any `json:"extra,omitempty"`
}

// safetyRecord is the safety verdict in the record.
type safetyRecord struct {
	Checker string             `json:"checker,omitempty"`
	Policy  string             `json:"policy"`
	Action  string             `json:"action"` // ok, warned, blurred, unchecked
	Flagged bool               `json:"flagged"`
	Scores  map[string]float64 `json:"scores,omitempty"`
	Message string             `json:"message,omitempty"`
}

// version is the module version and VCS revision the binary was built from.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v
}

func newProvenance(task string) provenance {
	return provenance{Software: "godiffuse", Version: version(), Task: task, Time: time.Now().UTC().Format(time.RFC3339)}
}

// fileHash is the first 10 hex digits of a file's SHA-256 (A1111's short form).
func fileHash(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "unknown"
	}
	return hex.EncodeToString(h.Sum(nil))[:10]
}

// outputFlags are -safety, -safety-checker, -watermark and -no-metadata.
type outputFlags struct {
	policy, checker, watermark *string
	noMeta                     *bool
}

func addOutputFlags(fs *flag.FlagSet, defaultChecker string) outputFlags {
	return outputFlags{
		policy: fs.String("safety", "blur", "what happens to an image the safety checker flags: off (no check), warn, blur (a pixelated image is written) or block (not written; exit status 3)"),
		checker: fs.String("safety-checker", defaultChecker, "auto (a Stable Diffusion folder's safety_checker/, when it has one), none, or judge:CLASS[,CLASS…][:THRESHOLD] "+
			"(the Fashion-MNIST judge flags those classes)"),
		noMeta:    fs.Bool("no-metadata", false, "write PNGs without the parameters and provenance text chunks"),
		watermark: fs.String("watermark", "on", "on: hide an invisible watermark (a hash of the model and the seed) in every image of 128 pixels or more (diffuse detect finds it); off"),
	}
}

// check validates the flags before any work.
func (o outputFlags) check() (safety.Policy, error) {
	p, err := safety.ParsePolicy(*o.policy)
	if err != nil {
		return "", fmt.Errorf("-safety: %w", err)
	}
	if *o.watermark != "on" && *o.watermark != "off" {
		return "", fmt.Errorf("-watermark %q: want on or off", *o.watermark)
	}
	if c := *o.checker; c != "auto" && c != "none" {
		if _, _, err := safety.ParseCheckerSpec(c); err != nil {
			return "", fmt.Errorf("-safety-checker: %w", err)
		}
	}
	return p, nil
}

// loadChecker builds the -safety-checker for a checkpoint of this engine
// (nil: no check; auto means none here: a Stable Diffusion folder brings
// its own, which the pipeline loads).
func (o outputFlags) loadChecker(dev tensor.Device) (safety.Checker, error) {
	if *o.policy == string(safety.Off) {
		return nil, nil
	}
	switch spec := *o.checker; spec {
	case "none", "auto":
		return nil, nil
	default:
		flagged, threshold, err := safety.ParseCheckerSpec(spec)
		if err != nil {
			return nil, fmt.Errorf("-safety-checker: %w", err)
		}
		j, err := safety.NewJudgeClassifier(dev, data.FashionMNISTClasses)
		if err != nil {
			return nil, err
		}
		c, err := safety.NewClassifierChecker("judge", j, flagged, threshold)
		if err != nil {
			return nil, fmt.Errorf("-safety-checker: %w", err)
		}
		return c, nil
	}
}

// withheldError says that the safety check withheld images (exit status 3).
type withheldError struct{ withheld, total int }

func (e withheldError) Error() string {
	return fmt.Sprintf("%d of %d images withheld by the safety check (-safety block)", e.withheld, e.total)
}

// screen runs the check on imgs under the policy: the images to write (nil
// for a withheld one) and their safety records, with one line on stderr
// for each flagged image.
func screen(c safety.Checker, p safety.Policy, imgs []image.Image) ([]image.Image, []*safetyRecord, error) {
	outs, err := safety.Apply(c, p, imgs)
	if err != nil {
		return nil, nil, err
	}
	keep := make([]image.Image, len(outs))
	recs := make([]*safetyRecord, len(outs))
	for i, o := range outs {
		keep[i] = o.Image
		recs[i] = &safetyRecord{Checker: o.Verdict.Checker, Policy: string(p), Action: o.Action, Flagged: o.Verdict.Flagged,
			Scores: o.Verdict.Scores, Message: o.Verdict.Message}
		if o.Verdict.Flagged {
			fmt.Fprintf(os.Stderr, "safety: image %d %s: %s\n", i+1, o.Action, o.Verdict.Message)
		}
	}
	return keep, recs, nil
}

// writeImage writes img as a PNG, watermarked (unless -watermark off; an
// image under watermark.MinSide pixels cannot carry it), with the
// parameters text and the provenance record (unless -no-metadata),
// atomically.
func writeImage(path string, img image.Image, params string, prov provenance, o outputFlags) error {
	img, payload := markImage(img, prov, o)
	return writeMarked(path, img, params, prov, o, payload)
}

// markImage hides the watermark of prov's model and seed in img (unless
// -watermark off); payload 0 when there is none (-watermark off, or an
// image under watermark.MinSide pixels).
func markImage(img image.Image, prov provenance, o outputFlags) (marked image.Image, payload uint64) {
	if *o.watermark != "on" {
		return img, 0
	}
	payload = watermark.PayloadFor(prov.Model, prov.Seed)
	wm, err := watermark.Embed(img, payload)
	if err != nil {
		return img, 0
	}
	return wm, payload
}

// watermarkNote is the provenance's watermark field for a payload (0: none).
func watermarkNote(o outputFlags, payload uint64) string {
	switch {
	case *o.watermark != "on":
		return "off"
	case payload == 0:
		return fmt.Sprintf("none: smaller than %d pixels", watermark.MinSide)
	}
	return fmt.Sprintf("%012x", payload)
}

// writeMarked writes an image whose watermark (payload, 0 for none) is
// already in it.
func writeMarked(path string, img image.Image, params string, prov provenance, o outputFlags, payload uint64) error {
	b, err := encodeMarked(img, params, prov, o, payload)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return atomicfile.Write(path, b)
}

// encodeMarked is the PNG file of an image whose watermark (payload, 0 for
// none) is already in it, with its parameters text and provenance record
// (unless -no-metadata).
func encodeMarked(img image.Image, params string, prov provenance, o outputFlags, payload uint64) ([]byte, error) {
	prov.Watermark = watermarkNote(o, payload)
	var chunks []pngtext.Chunk
	if !*o.noMeta {
		b := img.Bounds()
		prov.Width, prov.Height = b.Dx(), b.Dy()
		rec, err := json.Marshal(prov)
		if err != nil {
			return nil, fmt.Errorf("provenance: %w", err)
		}
		if params != "" {
			chunks = append(chunks, pngtext.Chunk{Key: "parameters", Value: params})
		}
		chunks = append(chunks, pngtext.Chunk{Key: "godiffuse", Value: string(rec)})
	}
	var buf bytes.Buffer
	if err := pngtext.Encode(&buf, img, chunks); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return buf.Bytes(), nil
}

// parametersText is the "parameters" text of an image of this engine's
// models, in the form SD front-ends write.
func parametersText(prov provenance) string {
	var b strings.Builder
	if prov.Class != "" {
		b.WriteString("class: " + prov.Class + "\n")
	}
	fmt.Fprintf(&b, "Steps: %d, Sampler: %s, CFG scale: %g, Seed: %d, Model hash: %s, Model: %s, Version: godiffuse",
		prov.Steps, prov.Sampler, prov.Guidance, prov.Seed, prov.ModelHash, prov.Model)
	return b.String()
}

// screenPixels runs the safety check on n generated images (C, H, W values
// in [-1, 1] each) and returns the values to show: a blurred image's
// pixelation in its place, a withheld one black; withheld marks those.
func screenPixels(c safety.Checker, p safety.Policy, pix []float32, n, ch, h, w int) ([]float32, []*safetyRecord, []bool, error) {
	imgs := make([]image.Image, n)
	size := ch * h * w
	for i := range n {
		g := grid(pix[i*size:(i+1)*size], 1, ch, h, w, 1)
		imgs[i] = g.SubImage(image.Rect(2, 2, 2+w, 2+h))
	}
	keep, recs, err := screen(c, p, imgs)
	if err != nil {
		return nil, nil, nil, err
	}
	out := append([]float32(nil), pix...)
	withheld := make([]bool, n)
	for i, img := range keep {
		switch {
		case img == nil:
			withheld[i] = true
			for k := range size {
				out[i*size+k] = -1
			}
		case img != imgs[i]: // replaced (blurred): back to values
			b := img.Bounds()
			for y := range h {
				for x := range w {
					r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
					vals := [3]uint32{r, g, bl}
					for k := range ch {
						out[i*size+(k*h+y)*w+x] = float32(vals[min(k, 2)]>>8)/127.5 - 1
					}
				}
			}
		}
	}
	return out, recs, withheld, nil
}

// runRecord is the safety outcome of a whole grid: the worst action of its
// images, and the flagged images' messages.
func runRecord(recs []*safetyRecord, p safety.Policy) *safetyRecord {
	r := &safetyRecord{Policy: string(p), Action: "ok"}
	rank := map[string]int{"unchecked": 0, "ok": 1, "warned": 2, "blurred": 3, "blocked": 4}
	var msgs []string
	for i, s := range recs {
		r.Checker = s.Checker
		if rank[s.Action] > rank[r.Action] || s.Action == "unchecked" {
			r.Action = s.Action
		}
		if s.Flagged {
			r.Flagged = true
			msgs = append(msgs, fmt.Sprintf("image %d: %s", i+1, s.Message))
		}
	}
	r.Message = strings.Join(msgs, "; ")
	return r
}

// writeGrid screens n generated images, writes them as one grid PNG with
// its provenance and returns the screened values (withheld ones black); a
// withheld image makes the result a withheldError after the write.
func writeGrid(path string, pix []float32, n, c, h, w, scale int, prov provenance, o outputFlags, checker safety.Checker) ([]float32, error) {
	policy, err := o.check()
	if err != nil {
		return nil, err
	}
	pix, recs, withheld, err := screenPixels(checker, policy, pix, n, c, h, w)
	if err != nil {
		return nil, err
	}
	prov.Images, prov.Safety = n, runRecord(recs, policy)
	if err := writeImage(path, scaleUp(grid(pix, n, c, h, w, 0), scale), parametersText(prov), prov, o); err != nil {
		return nil, err
	}
	fmt.Fprintln(os.Stderr, "wrote", path)
	k := 0
	for _, v := range withheld {
		if v {
			k++
		}
	}
	if k > 0 {
		return pix, withheldError{k, n}
	}
	return pix, nil
}
