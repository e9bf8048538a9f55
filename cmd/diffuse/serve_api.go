package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ---------------------------------------------------------------------------
// OpenAI Images API: /v1/images/generations, /v1/images/edits, /v1/models.

// openaiRequest holds the fields of a generation or edit request, with this
// server's extensions (negative_prompt, steps, seed, guidance_scale,
// sampler, strength). Fields OpenAI has and this server has no use for
// (quality, style, user, background, …) are ignored.
type openaiRequest struct {
	Model             string   `json:"model"`
	Prompt            *string  `json:"prompt"`
	N                 *float64 `json:"n"`
	Size              string   `json:"size"`
	ResponseFormat    string   `json:"response_format"`
	NegativePrompt    string   `json:"negative_prompt"`
	Steps             *float64 `json:"steps"`
	NumInferenceSteps *float64 `json:"num_inference_steps"`
	Seed              *float64 `json:"seed"`
	GuidanceScale     *float64 `json:"guidance_scale"`
	Sampler           string   `json:"sampler"`
	Strength          *float64 `json:"strength"`
}

// toGen turns the common fields into a genRequest.
func (o *openaiRequest) toGen() (*genRequest, error) {
	if o.Prompt == nil {
		return nil, badParam("prompt", "prompt: required")
	}
	switch o.ResponseFormat {
	case "", "url", "b64_json":
	default:
		return nil, badParam("response_format", "response_format %q: want url or b64_json", o.ResponseFormat)
	}
	req := &genRequest{Model: o.Model, Prompt: *o.Prompt, Negative: o.NegativePrompt, Sampler: o.Sampler, Guidance: guidanceOf(o.GuidanceScale)}
	var err error
	if req.N, err = intOf(o.N, "n", 1, serveMaxImages); err != nil {
		return nil, err
	}
	steps := o.Steps
	if steps == nil {
		steps = o.NumInferenceSteps
	}
	if req.Steps, err = intOf(steps, "steps", 1, serveMaxSteps); err != nil {
		return nil, err
	}
	if req.Seed, err = seedOf(o.Seed, "seed"); err != nil {
		return nil, err
	}
	if req.Width, req.Height, err = parseSize(o.Size); err != nil {
		return nil, err
	}
	if o.Strength != nil {
		req.Strength = *o.Strength
	}
	return req, nil
}

// parseSize reads "WxH" ("" and "auto": the model's default).
func parseSize(s string) (int, int, error) {
	if s == "" || s == "auto" {
		return 0, 0, nil
	}
	ws, hs, ok := strings.Cut(s, "x")
	w, err1 := strconv.Atoi(ws)
	h, err2 := strconv.Atoi(hs)
	if !ok || err1 != nil || err2 != nil || w < 1 || h < 1 {
		return 0, 0, badParam("size", "size %q: want WIDTHxHEIGHT, e.g. 512x512", s)
	}
	return w, h, nil
}

func (s *server) openaiGenerations(w http.ResponseWriter, r *http.Request) {
	var o openaiRequest
	if err := decodeJSON(r, &o); err != nil {
		writeError(w, styleOpenAI, statusOf(err), err, "")
		return
	}
	req, err := o.toGen()
	if err == nil {
		err = s.prepare(req)
	}
	if err != nil {
		writeError(w, styleOpenAI, statusOf(err), err, "")
		return
	}
	s.openaiRun(w, r, req, o.ResponseFormat)
}

func (s *server) openaiRun(w http.ResponseWriter, r *http.Request, req *genRequest, format string) {
	imgs, err := s.generate(r.Context(), req, nil)
	if err != nil {
		writeError(w, styleOpenAI, statusOf(err), err, "")
		return
	}
	var data []map[string]any
	for _, im := range imgs {
		d := map[string]any{"revised_prompt": req.Prompt}
		if format == "b64_json" {
			d["b64_json"] = base64.StdEncoding.EncodeToString(im.png)
		} else {
			d["url"] = imageURL(r, im.ID)
		}
		data = append(data, d)
	}
	writeJSON(w, http.StatusOK, map[string]any{"created": time.Now().Unix(), "data": data})
}

// openaiEdits is /v1/images/edits: inpainting. The mask's transparent
// pixels (or, without a mask, the image's) mark what to repaint, as OpenAI
// defines it.
func (s *server) openaiEdits(w http.ResponseWriter, r *http.Request) {
	fail := func(err error) { writeError(w, styleOpenAI, statusOf(err), err, "") }
	if err := r.ParseMultipartForm(8 << 20); err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			fail(bodyError(err))
		} else {
			fail(badParam("", "the request is not valid multipart/form-data: %v", err))
		}
		return
	}
	defer r.MultipartForm.RemoveAll()
	field := func(name string) *string {
		if v, ok := r.MultipartForm.Value[name]; ok && len(v) > 0 {
			return &v[0]
		}
		return nil
	}
	number := func(name string) (*float64, error) {
		v := field(name)
		if v == nil {
			return nil, nil
		}
		f, err := strconv.ParseFloat(*v, 64)
		if err != nil {
			return nil, badParam(name, "%s %q: not a number", name, *v)
		}
		return &f, nil
	}
	o := openaiRequest{Prompt: field("prompt")}
	for name, dst := range map[string]*string{"model": &o.Model, "size": &o.Size, "response_format": &o.ResponseFormat,
		"negative_prompt": &o.NegativePrompt, "sampler": &o.Sampler} {
		if v := field(name); v != nil {
			*dst = *v
		}
	}
	var err error
	for name, dst := range map[string]**float64{"n": &o.N, "steps": &o.Steps, "num_inference_steps": &o.NumInferenceSteps,
		"seed": &o.Seed, "guidance_scale": &o.GuidanceScale, "strength": &o.Strength} {
		if *dst, err = number(name); err != nil {
			fail(err)
			return
		}
	}
	req, err := o.toGen()
	if err != nil {
		fail(err)
		return
	}
	img, err := formImage(r, "image", "image[]")
	if err != nil {
		fail(err)
		return
	}
	if img == nil {
		fail(badParam("image", "image: required (a PNG file)"))
		return
	}
	maskImg, err := formImage(r, "mask")
	if err != nil {
		fail(err)
		return
	}
	if maskImg == nil {
		maskImg = img // the image's own transparency
	} else if maskImg.Bounds().Size() != img.Bounds().Size() {
		fail(badParam("mask", "mask: %v pixels, the image %v: they must be the same size", maskImg.Bounds().Size(), img.Bounds().Size()))
		return
	}
	mask, any := transparentMask(maskImg)
	if !any {
		fail(badParam("mask", "mask: no transparent pixels, so nothing to edit (transparent pixels mark the area to fill)"))
		return
	}
	req.Task, req.Image, req.Mask = taskInpaint, img, mask
	if req.Strength == 0 {
		req.Strength = 1
	}
	if err := s.prepare(req); err != nil {
		fail(err)
		return
	}
	s.openaiRun(w, r, req, o.ResponseFormat)
}

// formImage reads the first file of the named multipart fields (nil if none).
func formImage(r *http.Request, names ...string) (image.Image, error) {
	for _, name := range names {
		fhs := r.MultipartForm.File[name]
		if len(fhs) == 0 {
			continue
		}
		f, err := fhs[0].Open()
		if err != nil {
			return nil, badParam(name, "%s: %v", name, err)
		}
		raw, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, badParam(name, "%s: %v", name, err)
		}
		return decodeImageBytes(strings.TrimSuffix(name, "[]"), raw)
	}
	return nil, nil
}

// transparentMask is white where img is (mostly) transparent: the area to
// repaint; any says whether there is such a pixel.
func transparentMask(img image.Image) (mask *image.Gray, any bool) {
	b := img.Bounds()
	mask = image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := range b.Dy() {
		for x := range b.Dx() {
			if _, _, _, a := img.At(b.Min.X+x, b.Min.Y+y).RGBA(); a < 0x8000 {
				mask.SetGray(x, y, color.Gray{255})
				any = true
			}
		}
	}
	return mask, any
}

func (s *server) openaiModels(w http.ResponseWriter, r *http.Request) {
	data := []map[string]any{}
	for _, mi := range s.reg.infos() {
		data = append(data, openaiModelEntry(mi, s.started))
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

func (s *server) openaiModel(w http.ResponseWriter, r *http.Request) {
	src := s.reg.source(r.PathValue("id"))
	if src == nil || r.PathValue("id") == "" {
		writeError(w, styleOpenAI, http.StatusNotFound, fmt.Errorf("%w %q", errUnknownModel, r.PathValue("id")), "model")
		return
	}
	writeJSON(w, http.StatusOK, openaiModelEntry(src.info, s.started))
}

func openaiModelEntry(mi modelInfo, created time.Time) map[string]any {
	return map[string]any{"id": mi.Name, "object": "model", "created": created.Unix(), "owned_by": "godiffuse"}
}

// ---------------------------------------------------------------------------
// AUTOMATIC1111's /sdapi/v1 (the part image clients use).

// a1111Request holds the fields of txt2img and img2img this server uses;
// the many others clients send are ignored.
type a1111Request struct {
	Prompt               string         `json:"prompt"`
	NegativePrompt       string         `json:"negative_prompt"`
	Seed                 *float64       `json:"seed"`
	SamplerName          string         `json:"sampler_name"`
	SamplerIndex         string         `json:"sampler_index"`
	Scheduler            string         `json:"scheduler"`
	BatchSize            *float64       `json:"batch_size"`
	NIter                *float64       `json:"n_iter"`
	Steps                *float64       `json:"steps"`
	CFGScale             *float64       `json:"cfg_scale"`
	Width                *float64       `json:"width"`
	Height               *float64       `json:"height"`
	OverrideSettings     map[string]any `json:"override_settings"`
	InitImages           []string       `json:"init_images"`
	Mask                 string         `json:"mask"`
	DenoisingStrength    *float64       `json:"denoising_strength"`
	InpaintingFill       *float64       `json:"inpainting_fill"`
	InpaintingMaskInvert *float64       `json:"inpainting_mask_invert"`
}

// a1111Samplers names the engine's samplers as A1111 does.
var a1111Samplers = []struct{ name, engine, alias string }{
	{"DPM++ 2M Karras", "dpm++2m-karras", "k_dpmpp_2m_ka"},
	{"DPM++ 2M", "dpm++2m", "k_dpmpp_2m"},
	{"Euler a", "euler-a", "k_euler_a"},
	{"Euler", "euler", "k_euler"},
	{"DDIM", "ddim", "ddim"},
	{"DDPM", "ddpm", "ddpm"},
	{"DDPM (large variance)", "ddpm-large", "ddpm_large"},
}

// engineSampler maps an A1111 sampler name (or this engine's) to the
// engine's name ("" for the model's default).
func engineSampler(name, scheduler string) (string, error) {
	if name == "" {
		return "", nil
	}
	for _, s := range a1111Samplers {
		if strings.EqualFold(name, s.name) || strings.EqualFold(name, s.alias) || name == s.engine {
			if s.engine == "dpm++2m" && strings.EqualFold(scheduler, "karras") {
				return "dpm++2m-karras", nil
			}
			return s.engine, nil
		}
	}
	var names []string
	for _, s := range a1111Samplers {
		names = append(names, s.name)
	}
	return "", &badRequest{param: "sampler_name", status: http.StatusNotFound, msg: fmt.Sprintf("sampler %q not found (this server has %s)", name, strings.Join(names, ", "))}
}

func a1111SamplerName(engine string) string {
	for _, s := range a1111Samplers {
		if s.engine == engine {
			return s.name
		}
	}
	return engine
}

// modelByTitle finds a model by name, A1111 title ("name [hash]") or hash.
func (s *server) modelByTitle(t string) string {
	t = strings.TrimSpace(t)
	for _, mi := range s.reg.infos() {
		if t == mi.Name || t == a1111Title(mi) || t == mi.Hash || strings.TrimSuffix(t, ".safetensors") == mi.Name {
			return mi.Name
		}
	}
	return ""
}

func a1111Title(mi modelInfo) string { return fmt.Sprintf("%s [%s]", mi.Name, mi.Hash) }

// toGen turns an A1111 request into a genRequest for the named model.
func (a *a1111Request) toGen(s *server, task string) (*genRequest, []string, error) {
	req := &genRequest{Task: task, Prompt: a.Prompt, Negative: a.NegativePrompt, Guidance: guidanceOf(a.CFGScale)}
	var notes []string
	if m, ok := a.OverrideSettings["sd_model_checkpoint"].(string); ok && m != "" {
		if req.Model = s.modelByTitle(m); req.Model == "" {
			return nil, nil, fmt.Errorf("%w %q (override_settings.sd_model_checkpoint)", errUnknownModel, m)
		}
	}
	src := s.reg.source(req.Model)
	if src == nil {
		return nil, nil, errNoModels
	}
	name := a.SamplerName
	if name == "" {
		name = a.SamplerIndex
	}
	var err error
	if req.Sampler, err = engineSampler(name, a.Scheduler); err != nil {
		return nil, nil, err
	}
	if req.Sampler != "" && !slices.Contains(src.info.Samplers, req.Sampler) {
		return nil, nil, &badRequest{param: "sampler_name", status: http.StatusNotFound,
			msg: fmt.Sprintf("sampler %q: model %s has %s", name, src.name, strings.Join(src.info.Samplers, ", "))}
	}
	if req.Seed, err = seedOf(a.Seed, "seed"); err != nil {
		return nil, nil, err
	}
	batch, err := intOf(a.BatchSize, "batch_size", 1, serveMaxImages)
	if err != nil {
		return nil, nil, err
	}
	iter, err := intOf(a.NIter, "n_iter", 1, serveMaxImages)
	if err != nil {
		return nil, nil, err
	}
	req.N = max(batch, 1) * max(iter, 1)
	if req.N > serveMaxImages {
		return nil, nil, badParam("batch_size", "batch_size × n_iter = %d: want at most %d images", req.N, serveMaxImages)
	}
	if req.Steps, err = intOf(a.Steps, "steps", 1, serveMaxSteps); err != nil {
		return nil, nil, err
	}
	if req.Width, err = intOf(a.Width, "width", 1, serveMaxSide); err != nil {
		return nil, nil, err
	}
	if req.Height, err = intOf(a.Height, "height", 1, serveMaxSide); err != nil {
		return nil, nil, err
	}
	// A1111 rounds sizes down to the model's step, as do we.
	step := src.info.SizeStep
	for _, v := range []*int{&req.Width, &req.Height} {
		if *v >= step && *v%step != 0 {
			notes = append(notes, fmt.Sprintf("size rounded down to a multiple of %d", step))
			*v -= *v % step
		}
	}
	if src.info.Kind == kindCheckpoint && req.Width != req.Height && req.Width > 0 && req.Height > 0 {
		side := min(req.Width, req.Height)
		req.Width, req.Height = side, side
		notes = append(notes, fmt.Sprintf("model %s makes square images: %dx%d", src.name, side, side))
	}
	return req, notes, nil
}

func (s *server) a1111Txt2Img(w http.ResponseWriter, r *http.Request) {
	s.a1111Run(w, r, taskTxt2Img)
}

func (s *server) a1111Img2Img(w http.ResponseWriter, r *http.Request) {
	s.a1111Run(w, r, taskImg2Img)
}

func (s *server) a1111Run(w http.ResponseWriter, r *http.Request, task string) {
	fail := func(err error) { writeError(w, styleA1111, statusOf(err), err, "") }
	var raw map[string]any
	var a a1111Request
	body, err := readBody(r)
	if err != nil {
		fail(err)
		return
	}
	if err := json.Unmarshal(body, &a); err != nil {
		fail(&badRequest{msg: "the request is not valid JSON for this endpoint: " + err.Error(), status: http.StatusUnprocessableEntity})
		return
	}
	json.Unmarshal(body, &raw)
	req, notes, err := a.toGen(s, task)
	if err != nil {
		fail(err)
		return
	}
	if task == taskImg2Img {
		if err := a.fromImage(req); err != nil {
			fail(err)
			return
		}
	}
	if err := s.prepare(req); err != nil {
		fail(err)
		return
	}
	imgs, err := s.generate(r.Context(), req, nil)
	interrupted := errors.Is(err, errInterrupted)
	if err != nil && !interrupted {
		fail(err)
		return
	}
	src := s.reg.source(req.Model)
	images := []string{}
	var infotexts []string
	var seeds []uint64
	for _, im := range imgs {
		images = append(images, base64.StdEncoding.EncodeToString(im.png))
		infotexts = append(infotexts, a1111Infotext(im))
		seeds = append(seeds, im.Seed)
	}
	if raw == nil {
		raw = map[string]any{}
	}
	raw["prompt"], raw["negative_prompt"], raw["seed"], raw["steps"], raw["cfg_scale"] = req.Prompt, req.Negative, req.Seed, req.Steps, req.Guidance
	raw["width"], raw["height"], raw["sampler_name"] = req.Width, req.Height, a1111SamplerName(req.Sampler)
	prompts := make([]string, len(imgs))
	for i := range prompts {
		prompts[i] = req.Prompt
	}
	info := map[string]any{"prompt": req.Prompt, "all_prompts": prompts, "negative_prompt": req.Negative, "seed": req.Seed,
		"all_seeds": seeds, "subseed": -1, "width": req.Width, "height": req.Height, "sampler_name": a1111SamplerName(req.Sampler),
		"cfg_scale": req.Guidance, "steps": req.Steps, "batch_size": req.N, "sd_model_name": req.Model, "sd_model_hash": src.info.Hash,
		"denoising_strength": req.Strength, "infotexts": infotexts, "styles": []string{}, "clip_skip": 1,
		"job_timestamp": time.Now().Format("20060102150405"), "version": "godiffuse " + version(), "interrupted": interrupted,
		"notes": notes, "is_using_inpainting_conditioning": req.Task == taskInpaint}
	infoJSON, _ := json.Marshal(info)
	writeJSON(w, http.StatusOK, map[string]any{"images": images, "parameters": raw, "info": string(infoJSON)})
}

// a1111Infotext is an image's parameters text with the prompt first, as
// A1111 writes it.
func a1111Infotext(im *genImage) string {
	p := im.Parameters
	if im.req != nil && im.req.Prompt != "" && !strings.HasPrefix(p, im.req.Prompt) {
		p = im.req.Prompt + "\n" + p
	}
	return p
}

// fromImage reads init_images, mask and the inpainting settings of an
// img2img request. inpainting_fill: 0 fill (the masked area starts as the
// mean colour of the rest), 1 original, 2 latent noise (from pure noise:
// strength 1), 3 latent nothing (starts grey).
func (a *a1111Request) fromImage(req *genRequest) error {
	if len(a.InitImages) == 0 {
		return &badRequest{param: "init_images", status: http.StatusUnprocessableEntity, msg: "init_images: give one image (base64 PNG or JPEG)"}
	}
	img, err := decodeImage("init_images", a.InitImages[0])
	if err != nil {
		return err
	}
	req.Image = img
	req.Strength = 0.75
	if a.DenoisingStrength != nil {
		req.Strength = *a.DenoisingStrength
	}
	if a.Mask == "" {
		return nil
	}
	mask, err := decodeImage("mask", a.Mask)
	if err != nil {
		return err
	}
	if mask.Bounds().Size() != img.Bounds().Size() {
		return badParam("mask", "mask: %v pixels, init_images[0] %v: they must be the same size", mask.Bounds().Size(), img.Bounds().Size())
	}
	invert := a.InpaintingMaskInvert != nil && *a.InpaintingMaskInvert == 1
	m := thresholdMask(mask, invert)
	req.Task, req.Mask = taskInpaint, m
	fill := 1.0
	if a.InpaintingFill != nil {
		fill = *a.InpaintingFill
	}
	switch fill {
	case 0:
		req.Image = fillMasked(img, m, true)
	case 1:
	case 2:
		req.Strength = 1
	case 3:
		req.Image = fillMasked(img, m, false)
	default:
		return badParam("inpainting_fill", "inpainting_fill %g: want 0 (fill), 1 (original), 2 (latent noise) or 3 (latent nothing)", fill)
	}
	return nil
}

// thresholdMask is white where mask is at least half white (or, inverted,
// where it is not).
func thresholdMask(mask image.Image, invert bool) *image.Gray {
	b := mask.Bounds()
	out := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := range b.Dy() {
		for x := range b.Dx() {
			g := color.GrayModel.Convert(mask.At(b.Min.X+x, b.Min.Y+y)).(color.Gray).Y
			if (g >= 128) != invert {
				out.SetGray(x, y, color.Gray{255})
			}
		}
	}
	return out
}

// fillMasked paints the masked pixels of img with the mean colour of the
// others (mean) or mid grey.
func fillMasked(img image.Image, mask *image.Gray, mean bool) image.Image {
	b := img.Bounds()
	out := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	var sum [3]float64
	n := 0.0
	for y := range b.Dy() {
		for x := range b.Dx() {
			c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			out.SetNRGBA(x, y, c)
			if mask.GrayAt(x, y).Y == 0 {
				sum[0], sum[1], sum[2] = sum[0]+float64(c.R), sum[1]+float64(c.G), sum[2]+float64(c.B)
				n++
			}
		}
	}
	fill := color.NRGBA{128, 128, 128, 255}
	if mean && n > 0 {
		fill = color.NRGBA{uint8(sum[0] / n), uint8(sum[1] / n), uint8(sum[2] / n), 255}
	}
	for y := range b.Dy() {
		for x := range b.Dx() {
			if mask.GrayAt(x, y).Y != 0 {
				out.SetNRGBA(x, y, fill)
			}
		}
	}
	return out
}

func (s *server) a1111Progress(w http.ResponseWriter, r *http.Request) {
	waiting, running := s.q.counts()
	state := map[string]any{"skipped": false, "interrupted": false, "stopping_generation": false, "job": "", "job_count": waiting + running,
		"job_timestamp": "0", "job_no": 0, "sampling_step": 0, "sampling_steps": 0}
	resp := map[string]any{"progress": 0.0, "eta_relative": 0.0, "state": state, "current_image": nil, "textinfo": nil}
	if j := s.q.current(); j != nil {
		st, _ := j.status(s.q)
		resp["progress"], resp["eta_relative"] = st.Progress, st.ETA
		state["job"], state["sampling_step"], state["sampling_steps"] = j.req.Task, st.Step, st.Total
		state["job_timestamp"] = j.queued.Format("20060102150405")
		state["interrupted"] = errors.Is(context.Cause(j.ctx), errInterrupted)
		if r.URL.Query().Get("skip_current_image") != "true" {
			if p := j.latestPreview(); p != nil {
				resp["current_image"] = base64.StdEncoding.EncodeToString(p)
			}
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *server) a1111Interrupt(w http.ResponseWriter, r *http.Request) {
	s.q.interrupt()
	writeJSON(w, http.StatusOK, map[string]any{})
}

func (s *server) a1111Samplers(w http.ResponseWriter, r *http.Request) {
	var out []map[string]any
	for _, smp := range a1111Samplers {
		out = append(out, map[string]any{"name": smp.name, "aliases": []string{smp.alias, smp.engine}, "options": map[string]any{}})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) a1111Models(w http.ResponseWriter, r *http.Request) {
	out := []map[string]any{}
	for _, mi := range s.reg.infos() {
		out = append(out, map[string]any{"title": a1111Title(mi), "model_name": mi.Name, "hash": mi.Hash, "sha256": nil,
			"filename": mi.Name, "config": nil})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) a1111Options(w http.ResponseWriter, r *http.Request) {
	opts := map[string]any{"sd_model_checkpoint": nil, "sd_checkpoint_hash": nil, "samples_format": "png",
		"CLIP_stop_at_last_layers": 1, "sd_vae": "Automatic"}
	if cur := s.reg.source(""); cur != nil {
		opts["sd_model_checkpoint"], opts["sd_checkpoint_hash"] = a1111Title(cur.info), cur.info.Hash
	}
	writeJSON(w, http.StatusOK, opts)
}

// a1111SetOptions takes sd_model_checkpoint (loading the model, as A1111
// does); other options are ignored.
func (s *server) a1111SetOptions(w http.ResponseWriter, r *http.Request) {
	var opts map[string]any
	if err := decodeJSON(r, &opts); err != nil {
		writeError(w, styleA1111, statusOf(err), err, "")
		return
	}
	if v, ok := opts["sd_model_checkpoint"]; ok {
		t, _ := v.(string)
		name := s.modelByTitle(t)
		if name == "" {
			writeError(w, styleA1111, http.StatusNotFound, fmt.Errorf("%w %q: this server serves %s", errUnknownModel, t,
				strings.Join(sortedNames(s.reg.infos()), ", ")), "sd_model_checkpoint")
			return
		}
		if _, err := s.reg.get(name); err != nil {
			writeError(w, styleA1111, http.StatusInternalServerError, err, "")
			return
		}
		s.reg.setCurrent(name)
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}

func (s *server) a1111List(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, []any{})
}

func (s *server) a1111Empty(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{})
}

// ---------------------------------------------------------------------------
// The page's own API: /api/models, /api/generate (a stream of server-sent
// events), /api/gallery, /api/status.

// webRequest is what the page sends.
type webRequest struct {
	Task     string   `json:"task"`
	Model    string   `json:"model"`
	Prompt   string   `json:"prompt"`
	Negative string   `json:"negative"`
	Sampler  string   `json:"sampler"`
	Steps    *float64 `json:"steps"`
	Guidance *float64 `json:"guidance"`
	Seed     *float64 `json:"seed"`
	Width    *float64 `json:"width"`
	Height   *float64 `json:"height"`
	N        *float64 `json:"n"`
	Strength *float64 `json:"strength"`
	Image    string   `json:"image"` // data: URL
	Mask     string   `json:"mask"`  // data: URL, white = repaint
}

func (wr *webRequest) toGen() (*genRequest, error) {
	req := &genRequest{Task: wr.Task, Model: wr.Model, Prompt: wr.Prompt, Negative: wr.Negative, Sampler: wr.Sampler, Guidance: guidanceOf(wr.Guidance)}
	var err error
	if req.Steps, err = intOf(wr.Steps, "steps", 1, serveMaxSteps); err != nil {
		return nil, err
	}
	if req.Seed, err = seedOf(wr.Seed, "seed"); err != nil {
		return nil, err
	}
	if req.Width, err = intOf(wr.Width, "width", 1, serveMaxSide); err != nil {
		return nil, err
	}
	if req.Height, err = intOf(wr.Height, "height", 1, serveMaxSide); err != nil {
		return nil, err
	}
	if req.N, err = intOf(wr.N, "n", 1, serveMaxImages); err != nil {
		return nil, err
	}
	switch wr.Task {
	case "", taskTxt2Img:
		return req, nil
	case taskImg2Img, taskInpaint:
	default:
		return nil, badParam("task", "task %q: want txt2img, img2img or inpaint", wr.Task)
	}
	if req.Image, err = decodeImage("image", wr.Image); err != nil {
		return nil, err
	}
	req.Strength = 0.75
	if wr.Task == taskInpaint {
		req.Strength = 1
	}
	if wr.Strength != nil {
		req.Strength = *wr.Strength
	}
	if wr.Task == taskInpaint {
		m, err := decodeImage("mask", wr.Mask)
		if err != nil {
			return nil, err
		}
		if m.Bounds().Size() != req.Image.Bounds().Size() {
			return nil, badParam("mask", "mask: %v pixels, the image %v: they must be the same size", m.Bounds().Size(), req.Image.Bounds().Size())
		}
		req.Mask = thresholdMask(m, false)
	}
	return req, nil
}

func (s *server) webModels(w http.ResponseWriter, r *http.Request) {
	type entry struct {
		modelInfo
		Loaded bool `json:"loaded"`
	}
	models := []entry{}
	for _, mi := range s.reg.infos() {
		models = append(models, entry{mi, s.reg.isLoaded(mi.Name)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": models, "current": s.reg.currentName(), "no_models": errNoModels.Error(),
		"safety": string(s.cfg.policy), "max_images": serveMaxImages, "max_steps": serveMaxSteps})
}

// webImage is a gallery entry as the page sees it.
func webImage(im *genImage) map[string]any {
	e := map[string]any{"id": im.ID, "url": "/images/" + im.ID + ".png", "model": im.Model, "seed": im.Seed,
		"parameters": im.Parameters, "width": im.Width, "height": im.Height, "safety": im.Safety, "created": im.Created}
	if r := im.req; r != nil {
		e["request"] = map[string]any{"task": r.Task, "model": r.Model, "prompt": r.Prompt, "negative": r.Negative,
			"sampler": r.Sampler, "steps": r.Steps, "guidance": r.Guidance, "seed": im.Seed, "width": r.Width, "height": r.Height}
	}
	return e
}

func (s *server) webGallery(w http.ResponseWriter, r *http.Request) {
	out := []map[string]any{}
	for _, im := range s.gallery.list() {
		out = append(out, webImage(im))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) webStatus(w http.ResponseWriter, r *http.Request) {
	waiting, running := s.q.counts()
	resp := map[string]any{"waiting": waiting, "running": running}
	if j := s.q.current(); j != nil {
		st, _ := j.status(s.q)
		resp["current"] = st
	}
	writeJSON(w, http.StatusOK, resp)
}

// webGenerate runs a request and streams its progress as server-sent
// events: "status" (state, queue position, steps, ETA, and a preview
// image when there is a new one), then "done" (the images) or "error".
// Closing the stream cancels the job.
func (s *server) webGenerate(w http.ResponseWriter, r *http.Request) {
	var wr webRequest
	if err := decodeJSON(r, &wr); err != nil {
		writeError(w, styleWeb, statusOf(err), err, "")
		return
	}
	req, err := wr.toGen()
	if err == nil {
		err = s.prepare(req)
	}
	if err != nil {
		writeError(w, styleWeb, statusOf(err), err, "")
		return
	}
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	send := func(event string, v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
		if flusher != nil {
			flusher.Flush()
		}
	}
	var lastPreview []byte
	ranSent := false
	imgs, err := s.generate(r.Context(), req, func(j *job) {
		st, _ := j.status(s.q)
		ev := map[string]any{"status": st}
		if p := j.latestPreview(); p != nil && (lastPreview == nil || &p[0] != &lastPreview[0]) {
			lastPreview = p
			ev["preview"] = "data:image/png;base64," + base64.StdEncoding.EncodeToString(p)
		}
		if st.State == stateRunning {
			ranSent = true
		}
		// A job that ran all its steps between two looks (a small model is
		// done in milliseconds) still shows the stream its running state,
		// with its last step and preview, before it ends.
		if !ranSent && st.Total > 0 && st.State == stateDone {
			running := st
			running.State = stateRunning
			rev := map[string]any{"status": running}
			if p, ok := ev["preview"]; ok {
				rev["preview"] = p
				delete(ev, "preview")
			}
			send("status", rev)
			ranSent = true
		}
		send("status", ev)
	})
	if err != nil {
		send("error", map[string]any{"error": err.Error(), "status": statusOf(err)})
		return
	}
	var out []map[string]any
	for _, im := range imgs {
		out = append(out, webImage(im))
	}
	send("done", map[string]any{"images": out})
}
