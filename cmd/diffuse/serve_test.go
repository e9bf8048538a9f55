package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/ddpm"
	"github.com/godiffuse/godiffuse/device"
	"github.com/godiffuse/godiffuse/internal/sdfixtures"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/pngtext"
	"github.com/godiffuse/godiffuse/safety"
)

// classConfig is a small class-conditional U-Net for the 28×28 embedded
// Fashion-MNIST slice.
const classConfig = `{"sample_size": 28, "in_channels": 1, "out_channels": 1, "block_out_channels": [8, 16],
 "layers_per_block": 1, "norm_num_groups": 4, "attention_head_dim": 8, "num_class_embeds": 10,
 "down_block_types": ["DownBlock2D", "AttnDownBlock2D"], "up_block_types": ["AttnUpBlock2D", "UpBlock2D"]}`

// classCheckpoint writes a class-conditional checkpoint (one training
// step) into dir/name/checkpoint and returns its path.
func classCheckpoint(t testing.TB, dir, name string) string {
	t.Helper()
	dev, _, err := device.SelectThreads("cpu", 0)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := nn.ParseUNet2DConfig("classConfig", []byte(classConfig))
	if err != nil {
		t.Fatal(err)
	}
	ds, err := data.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	tc := ddpm.DefaultTrainConfig()
	tc.Steps, tc.Batch = 1, 2
	tr, err := ddpm.NewTrainer(dev, cfg, tc, ds)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.TrainStep(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name, "checkpoint")
	if err := tr.Save(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// testServer is a running server and its address.
type testServer struct {
	*server
	url  string
	stop func() // shuts it down and waits for serve to return
}

// startServer serves the tiny pipeline fixture ("tiny-pipeline") and a
// class-conditional checkpoint ("fmnist") on a free port.
func startServer(t testing.TB, mod func(*serverConfig)) *testServer {
	t.Helper()
	srcs, err := findSources([]string{sdfixtures.Folders(t, sdfixtures.Pipeline)[0], classCheckpoint(t, t.TempDir(), "fmnist")}, "")
	if err != nil {
		t.Fatal(err)
	}
	dev, _, err := device.SelectThreads("cpu", 0)
	if err != nil {
		t.Fatal(err)
	}
	policy, checker, wm, noMeta := "blur", "auto", "on", false
	out := serveOutput{flags: outputFlags{policy: &policy, checker: &checker, watermark: &wm, noMeta: &noMeta}, policy: safety.Blur}
	cfg := serverConfig{sources: srcs, queue: 16, budget: 4e9, maxBody: 8 << 20, grace: 5 * time.Second, loopbackOnly: true, policy: safety.Blur}
	cfg.load = func(src *modelSource) (backend, error) { return loadBackend(dev, src, out) }
	if mod != nil {
		mod(&cfg)
	}
	s, err := newServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.serve(ctx, ln) }()
	ts := &testServer{server: s, url: "http://" + ln.Addr().String()}
	var once sync.Once
	ts.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(ts.stop)
	return ts
}

// call sends a request and returns the status, the header and the body.
func call(t testing.TB, method, url, contentType string, body []byte, header ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func postJSON(t testing.TB, url string, v any) (int, []byte) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	status, _, body := call(t, "POST", url, "application/json", b)
	return status, body
}

// decodePNG decodes a PNG and checks its size (0: any).
func decodePNG(t testing.TB, b []byte, w, h int) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if w > 0 && (img.Bounds().Dx() != w || img.Bounds().Dy() != h) {
		t.Fatalf("image %v, want %dx%d", img.Bounds().Size(), w, h)
	}
	return img
}

func mustJSON(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v in %.300s", err, b)
	}
}

// pngOf encodes an image.
func pngOf(img image.Image) []byte {
	var buf bytes.Buffer
	png.Encode(&buf, img)
	return buf.Bytes()
}

// testPicture is a w×h RGBA picture; transparent (alpha 0) in the right
// half when hole is set.
func testPicture(w, h int, hole bool) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.NRGBA{uint8(x * 255 / w), uint8(y * 255 / h), 120, 255}
			if hole && x >= w/2 {
				c.A = 0
			}
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

// halfMask is white (repaint) in the right half.
func halfMask(w, h int) *image.Gray {
	m := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := w / 2; x < w; x++ {
			m.SetGray(x, y, color.Gray{255})
		}
	}
	return m
}

// multipartBody builds a multipart form of fields and files.
func multipartBody(t testing.TB, fields map[string]string, files map[string][]byte) (string, []byte) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	for k, v := range files {
		fw, err := mw.CreateFormFile(k, k+".png")
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(v)
	}
	mw.Close()
	return mw.FormDataContentType(), buf.Bytes()
}

// openaiImages returns the PNGs of an OpenAI images answer (fetching urls).
func openaiImages(t testing.TB, body []byte) [][]byte {
	t.Helper()
	var resp struct {
		Created int64 `json:"created"`
		Data    []struct {
			B64 string `json:"b64_json"`
			URL string `json:"url"`
		} `json:"data"`
	}
	mustJSON(t, body, &resp)
	if resp.Created == 0 {
		t.Error("no created time")
	}
	var out [][]byte
	for _, d := range resp.Data {
		if d.URL != "" {
			status, h, b := call(t, "GET", d.URL, "", nil)
			if status != 200 || h.Get("Content-Type") != "image/png" {
				t.Fatalf("GET %s: %d %s", d.URL, status, h.Get("Content-Type"))
			}
			out = append(out, b)
			continue
		}
		b, err := base64.StdEncoding.DecodeString(d.B64)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// TestServeOpenAI: generations (both response formats, both kinds of
// model), edits (mask transparency and the image's own), models, and the
// error shape.
func TestServeOpenAI(t *testing.T) {
	ts := startServer(t, nil)
	status, _, body := call(t, "GET", ts.url+"/v1/models", "", nil)
	var models struct {
		Object string `json:"object"`
		Data   []struct {
			ID, Object string
		} `json:"data"`
	}
	mustJSON(t, body, &models)
	if status != 200 || models.Object != "list" || len(models.Data) != 2 || models.Data[0].ID != "tiny-pipeline" || models.Data[1].ID != "fmnist" {
		t.Fatalf("/v1/models: %d %s", status, body)
	}
	if status, _, body := call(t, "GET", ts.url+"/v1/models/fmnist", "", nil); status != 200 || !strings.Contains(string(body), `"id":"fmnist"`) {
		t.Errorf("/v1/models/fmnist: %d %s", status, body)
	}

	status, body = postJSON(t, ts.url+"/v1/images/generations", map[string]any{"model": "tiny-pipeline", "prompt": "a red house",
		"n": 2, "size": "32x24", "response_format": "b64_json", "steps": 3, "seed": 5, "negative_prompt": "blue", "guidance_scale": 5})
	if status != 200 {
		t.Fatalf("generations: %d %s", status, body)
	}
	imgs := openaiImages(t, body)
	if len(imgs) != 2 {
		t.Fatalf("%d images, want 2", len(imgs))
	}
	for _, b := range imgs {
		decodePNG(t, b, 32, 24)
		chunks, err := pngChunks(b)
		if err != nil || !strings.Contains(chunks["parameters"], "Steps: 3") || !strings.Contains(chunks["godiffuse"], `"prompt":"a red house"`) {
			t.Errorf("metadata: %v %v", chunks, err)
		}
	}
	// The same seed gives the same image.
	_, again := postJSON(t, ts.url+"/v1/images/generations", map[string]any{"model": "tiny-pipeline", "prompt": "a red house",
		"size": "32x24", "response_format": "url", "steps": 3, "seed": 5, "negative_prompt": "blue", "guidance_scale": 5})
	if a := openaiImages(t, again); len(a) != 1 || !samePixels(decodePNG(t, a[0], 0, 0), decodePNG(t, imgs[0], 0, 0)) {
		t.Error("the same seed made a different image")
	}

	status, body = postJSON(t, ts.url+"/v1/images/generations", map[string]any{"model": "fmnist", "prompt": "a sneaker", "size": "56x56",
		"response_format": "b64_json", "n": 3})
	if status != 200 {
		t.Fatalf("checkpoint generations: %d %s", status, body)
	}
	for _, b := range openaiImages(t, body) {
		decodePNG(t, b, 56, 56)
		if c, _ := pngChunks(b); !strings.Contains(c["parameters"], "class: sneaker") {
			t.Errorf("parameters %q: want the class", c["parameters"])
		}
	}

	// Edits: the mask's transparent half is repainted.
	ctype, mp := multipartBody(t, map[string]string{"model": "tiny-pipeline", "prompt": "a window", "size": "32x32",
		"response_format": "b64_json", "steps": "2"}, map[string][]byte{"image": pngOf(testPicture(32, 32, false)), "mask": pngOf(testPicture(32, 32, true))})
	status, _, body = call(t, "POST", ts.url+"/v1/images/edits", ctype, mp)
	if status != 200 {
		t.Fatalf("edits: %d %s", status, body)
	}
	decodePNG(t, openaiImages(t, body)[0], 32, 32)
	// Without a mask the image's own transparency is the mask; gpt-image clients send image[].
	ctype, mp = multipartBody(t, map[string]string{"model": "fmnist", "prompt": "bag", "response_format": "b64_json", "steps": "4"},
		map[string][]byte{"image[]": pngOf(testPicture(28, 28, true))})
	status, _, body = call(t, "POST", ts.url+"/v1/images/edits", ctype, mp)
	if status != 200 {
		t.Fatalf("edits without a mask: %d %s", status, body)
	}
	decodePNG(t, openaiImages(t, body)[0], 140, 140)

	// Errors come in OpenAI's shape.
	for _, c := range []struct {
		body   map[string]any
		status int
		code   string
		param  string
	}{
		{map[string]any{"model": "dall-e-3", "prompt": "x"}, 404, "model_not_found", ""},
		{map[string]any{"prompt": "x", "size": "1x1"}, 400, "", "size"},
		{map[string]any{"model": "fmnist", "prompt": "a giraffe"}, 400, "", "prompt"},
		{map[string]any{"size": "32x32"}, 400, "", "prompt"},
	} {
		status, body := postJSON(t, ts.url+"/v1/images/generations", c.body)
		var e struct {
			Error struct {
				Message, Type string
				Param, Code   any
			} `json:"error"`
		}
		mustJSON(t, body, &e)
		if status != c.status || e.Error.Message == "" || e.Error.Type == "" || (c.code != "" && e.Error.Code != c.code) ||
			(c.param != "" && e.Error.Param != c.param) {
			t.Errorf("%v: %d %s, want %d code %q param %q", c.body, status, body, c.status, c.code, c.param)
		}
	}
}

// pngChunks are a PNG's text chunks by key.
func pngChunks(b []byte) (map[string]string, error) {
	cs, err := pngtext.Read(bytes.NewReader(b))
	m := map[string]string{}
	for _, c := range cs {
		m[c.Key] = c.Value
	}
	return m, err
}

func samePixels(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y++ {
		for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x++ {
			if a.At(x, y) != b.At(x, y) {
				return false
			}
		}
	}
	return true
}

// TestServeA1111: txt2img, img2img (with and without a mask, every
// inpainting_fill), progress, interrupt, samplers, sd-models, options.
func TestServeA1111(t *testing.T) {
	ts := startServer(t, nil)
	status, body := postJSON(t, ts.url+"/sdapi/v1/txt2img", map[string]any{"prompt": "a boat", "negative_prompt": "", "steps": 3,
		"cfg_scale": 6, "width": 37, "height": 32, "batch_size": 2, "n_iter": 1, "seed": 11, "sampler_name": "Euler a",
		"restore_faces": false, "send_images": true, "alwayson_scripts": map[string]any{}})
	if status != 200 {
		t.Fatalf("txt2img: %d %s", status, body)
	}
	var resp struct {
		Images     []string       `json:"images"`
		Parameters map[string]any `json:"parameters"`
		Info       string         `json:"info"`
	}
	mustJSON(t, body, &resp)
	var info struct {
		AllSeeds    []uint64 `json:"all_seeds"`
		SamplerName string   `json:"sampler_name"`
		Width       int      `json:"width"`
		Infotexts   []string `json:"infotexts"`
		ModelName   string   `json:"sd_model_name"`
	}
	mustJSON(t, []byte(resp.Info), &info)
	if len(resp.Images) != 2 || !slices.Equal(info.AllSeeds, []uint64{11, 12}) || info.SamplerName != "Euler a" || info.Width != 36 ||
		len(info.Infotexts) != 2 || !strings.HasPrefix(info.Infotexts[0], "a boat\n") || resp.Parameters["prompt"] != "a boat" {
		t.Errorf("txt2img answer: %d images, info %s, parameters %v", len(resp.Images), resp.Info, resp.Parameters)
	}
	for _, im := range resp.Images {
		b, _ := base64.StdEncoding.DecodeString(im)
		decodePNG(t, b, 36, 32) // 37 rounded down to a multiple of the tiny VAE's factor 2
	}

	init := base64.StdEncoding.EncodeToString(pngOf(testPicture(32, 32, false)))
	mask := "data:image/png;base64," + base64.StdEncoding.EncodeToString(pngOf(halfMask(32, 32)))
	for _, fill := range []int{0, 1, 2, 3} {
		status, body = postJSON(t, ts.url+"/sdapi/v1/img2img", map[string]any{"prompt": "a door", "init_images": []string{init},
			"mask": mask, "inpainting_fill": fill, "denoising_strength": 0.6, "steps": 4, "mask_blur": 4, "inpaint_full_res": false})
		if status != 200 {
			t.Fatalf("img2img inpainting_fill %d: %d %s", fill, status, body)
		}
		mustJSON(t, body, &resp)
		b, _ := base64.StdEncoding.DecodeString(resp.Images[0])
		decodePNG(t, b, 32, 32)
	}
	status, body = postJSON(t, ts.url+"/sdapi/v1/img2img", map[string]any{"prompt": "trouser", "init_images": []string{init},
		"denoising_strength": 0.5, "steps": 4, "override_settings": map[string]any{"sd_model_checkpoint": "fmnist"}, "width": 512, "height": 512})
	if status != 200 {
		t.Fatalf("img2img on the checkpoint: %d %s", status, body)
	}
	mustJSON(t, body, &resp)
	b, _ := base64.StdEncoding.DecodeString(resp.Images[0])
	decodePNG(t, b, 504, 504)

	// Samplers, models, options.
	status, _, body = call(t, "GET", ts.url+"/sdapi/v1/samplers", "", nil)
	if status != 200 || !strings.Contains(string(body), `"name":"DPM++ 2M Karras"`) {
		t.Errorf("samplers: %d %s", status, body)
	}
	status, _, body = call(t, "GET", ts.url+"/sdapi/v1/sd-models", "", nil)
	var sdModels []struct{ Title, ModelName string }
	json.Unmarshal(body, &sdModels)
	if status != 200 || len(sdModels) != 2 || !strings.HasPrefix(sdModels[1].Title, "fmnist [") {
		t.Errorf("sd-models: %d %s", status, body)
	}
	if status, body = postJSON(t, ts.url+"/sdapi/v1/options", map[string]any{"sd_model_checkpoint": sdModels[1].Title, "samples_save": true}); status != 200 {
		t.Errorf("options: %d %s", status, body)
	}
	_, _, body = call(t, "GET", ts.url+"/sdapi/v1/options", "", nil)
	if !strings.Contains(string(body), `"sd_model_checkpoint":"fmnist [`) {
		t.Errorf("options after switching: %s", body)
	}
	if status, body = postJSON(t, ts.url+"/sdapi/v1/txt2img", map[string]any{"prompt": "coat", "steps": 2}); status != 200 {
		t.Errorf("txt2img on the switched model: %d %s", status, body)
	} else if mustJSON(t, body, &resp); !strings.Contains(resp.Info, `"sd_model_name":"fmnist"`) {
		t.Errorf("txt2img did not use the switched model: %s", resp.Info)
	}
	status, body = postJSON(t, ts.url+"/sdapi/v1/options", map[string]any{"sd_model_checkpoint": "nope.safetensors"})
	if status != 404 || !strings.Contains(string(body), `"detail"`) {
		t.Errorf("options with an unknown model: %d %s", status, body)
	}

	// Progress while a job runs, and interrupt.
	done := make(chan []byte)
	go func() {
		_, body := postJSON(t, ts.url+"/sdapi/v1/txt2img", map[string]any{"prompt": "shirt", "steps": 150, "batch_size": 16})
		done <- body
	}()
	var prog struct {
		Progress     float64 `json:"progress"`
		CurrentImage *string `json:"current_image"`
		State        struct {
			SamplingStep int `json:"sampling_step"`
			JobCount     int `json:"job_count"`
		} `json:"state"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		_, _, body := call(t, "GET", ts.url+"/sdapi/v1/progress", "", nil)
		mustJSON(t, body, &prog)
		if prog.State.SamplingStep > 2 && prog.CurrentImage != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if prog.Progress <= 0 || prog.CurrentImage == nil || prog.State.JobCount != 1 {
		t.Errorf("progress during a job: %+v", prog)
	} else if b, err := base64.StdEncoding.DecodeString(*prog.CurrentImage); err != nil {
		t.Error(err)
	} else {
		decodePNG(t, b, 0, 0)
	}
	if status, _, _ := call(t, "POST", ts.url+"/sdapi/v1/interrupt", "", nil); status != 200 {
		t.Errorf("interrupt: %d", status)
	}
	select {
	case body := <-done:
		if !strings.Contains(string(body), `\"interrupted\": true`) && !strings.Contains(string(body), `\"interrupted\":true`) {
			t.Errorf("interrupted txt2img answered %.300s", body)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("interrupt did not stop the job")
	}
}

// sseEvents reads a text/event-stream body into (event, data) pairs.
func sseEvents(t testing.TB, r io.Reader) [][2]string {
	var out [][2]string
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 16<<20)
	var ev string
	for sc.Scan() {
		line := sc.Text()
		if e, ok := strings.CutPrefix(line, "event: "); ok {
			ev = e
		} else if d, ok := strings.CutPrefix(line, "data: "); ok {
			out = append(out, [2]string{ev, d})
		}
	}
	return out
}

// TestServeWebAPI: the page, its files, the model list, a generation's
// event stream (queued, running with previews, done), the gallery and the
// download.
func TestServeWebAPI(t *testing.T) {
	ts := startServer(t, nil)
	status, h, body := call(t, "GET", ts.url+"/", "", nil)
	if status != 200 || !strings.Contains(string(body), `id="generate"`) || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("page: %d", status)
	}
	for _, f := range []string{"app.js", "style.css"} {
		if status, _, _ := call(t, "GET", ts.url+"/static/"+f, "", nil); status != 200 {
			t.Errorf("/static/%s: %d", f, status)
		}
	}
	_, _, body = call(t, "GET", ts.url+"/api/models", "", nil)
	if !strings.Contains(string(body), `"classes":["t-shirt/top"`) || !strings.Contains(string(body), `"current":"tiny-pipeline"`) {
		t.Errorf("/api/models: %s", body)
	}
	b, _ := json.Marshal(map[string]any{"task": "inpaint", "model": "fmnist", "prompt": "bag", "steps": 6,
		"image": "data:image/png;base64," + base64.StdEncoding.EncodeToString(pngOf(testPicture(64, 64, false))),
		"mask":  "data:image/png;base64," + base64.StdEncoding.EncodeToString(pngOf(halfMask(64, 64)))})
	resp, err := http.Post(ts.url+"/api/generate", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	events := sseEvents(t, resp.Body)
	resp.Body.Close()
	var states []string
	previews := 0
	for _, e := range events[:len(events)-1] {
		var ev struct {
			Status  jobStatus `json:"status"`
			Preview string    `json:"preview"`
		}
		mustJSON(t, []byte(e[1]), &ev)
		if len(states) == 0 || states[len(states)-1] != ev.Status.State {
			states = append(states, ev.Status.State)
		}
		if ev.Preview != "" {
			previews++
		}
	}
	last := events[len(events)-1]
	if last[0] != "done" || !slices.Contains(states, "running") || previews == 0 {
		t.Fatalf("events: states %v, %d previews, last %s", states, previews, last[0])
	}
	var done struct {
		Images []struct {
			ID, URL    string
			Parameters string
		} `json:"images"`
	}
	mustJSON(t, []byte(last[1]), &done)
	status, h, body = call(t, "GET", ts.url+done.Images[0].URL+"?download", "", nil)
	if status != 200 || !strings.Contains(h.Get("Content-Disposition"), "attachment") {
		t.Errorf("download: %d %v", status, h)
	}
	decodePNG(t, body, 140, 140)
	_, _, body = call(t, "GET", ts.url+"/api/gallery", "", nil)
	if !strings.Contains(string(body), done.Images[0].ID) || !strings.Contains(string(body), `"request"`) {
		t.Errorf("gallery: %.300s", body)
	}
	if status, _, _ := call(t, "GET", ts.url+"/images/0000.png", "", nil); status != 404 {
		t.Errorf("unknown image: %d", status)
	}
}

// TestServeSecurity: the API key (Bearer and basic), the public page, the
// DNS-rebinding host check, CORS, and the refusal to listen publicly
// without a key.
func TestServeSecurity(t *testing.T) {
	ts := startServer(t, func(c *serverConfig) { c.apiKey = "s3cret"; c.cors = "http://localhost:3000" })
	if status, _, body := call(t, "GET", ts.url+"/v1/models", "", nil); status != 401 || !strings.Contains(string(body), "invalid_api_key") {
		t.Errorf("no key: %d %s", status, body)
	}
	if status, _, _ := call(t, "GET", ts.url+"/v1/models", "", nil, "Authorization", "Bearer wrong"); status != 401 {
		t.Errorf("wrong key: %d", status)
	}
	if status, _, _ := call(t, "GET", ts.url+"/v1/models", "", nil, "Authorization", "Bearer s3cret"); status != 200 {
		t.Errorf("right key: %d", status)
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("user:s3cret"))
	if status, _, _ := call(t, "GET", ts.url+"/sdapi/v1/sd-models", "", nil, "Authorization", basic); status != 200 {
		t.Errorf("basic auth: %d", status)
	}
	if status, _, body := call(t, "GET", ts.url+"/sdapi/v1/sd-models", "", nil); status != 401 || !strings.Contains(string(body), `"detail"`) {
		t.Errorf("A1111 without key: %d %s", status, body)
	}
	if status, _, _ := call(t, "GET", ts.url+"/", "", nil); status != 200 {
		t.Errorf("the page needs no key: %d", status)
	}
	if status, _, _ := call(t, "GET", ts.url+"/v1/models", "", nil, "Authorization", "Bearer s3cret", "Host", "evil.example:7860"); status != 403 {
		t.Errorf("foreign Host: %d", status)
	}
	status, h, _ := call(t, "OPTIONS", ts.url+"/v1/images/generations", "", nil, "Origin", "http://localhost:3000")
	if status != 204 || h.Get("Access-Control-Allow-Origin") != "http://localhost:3000" {
		t.Errorf("CORS preflight: %d %v", status, h)
	}
	if _, h, _ := call(t, "GET", ts.url+"/v1/models", "", nil, "Authorization", "Bearer s3cret", "Origin", "http://evil.example"); h.Get("Access-Control-Allow-Origin") != "" {
		t.Error("CORS header for another origin")
	}
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:7860"} {
		err := runServe([]string{"-addr", addr, "-model", "nowhere"})
		if err == nil || !strings.Contains(err.Error(), "-api-key") {
			t.Errorf("-addr %s without a key: %v", addr, err)
		}
	}
}

// TestServeBadInput: malformed bodies, impossible sizes and counts,
// unknown models, broken images and masks: each a clean 4xx in its API's
// shape, and the server keeps serving.
func TestServeBadInput(t *testing.T) {
	ts := startServer(t, nil)
	png32 := base64.StdEncoding.EncodeToString(pngOf(testPicture(32, 32, false)))
	mask16 := base64.StdEncoding.EncodeToString(pngOf(halfMask(16, 16)))
	gen, a1, web := ts.url+"/v1/images/generations", ts.url+"/sdapi/v1/txt2img", ts.url+"/api/generate"
	big := bytes.Repeat([]byte("a"), 100<<20)
	type row struct {
		name, url, ctype string
		body             []byte
		status           int
	}
	js := func(v any) []byte { b, _ := json.Marshal(v); return b }
	rows := []row{
		{"malformed JSON", gen, "application/json", []byte(`{"prompt": "x",`), 400},
		{"JSON of the wrong type", gen, "application/json", []byte(`{"prompt": 7}`), 400},
		{"not JSON", gen, "text/plain", []byte(`prompt=x`), 400},
		{"100 MB body", gen, "application/json", big, 413},
		{"size 0", gen, "application/json", js(map[string]any{"prompt": "x", "size": "0x0"}), 400},
		{"size -1", gen, "application/json", js(map[string]any{"prompt": "x", "size": "-1x-1"}), 400},
		{"size 100000", gen, "application/json", js(map[string]any{"prompt": "x", "size": "100000x100000"}), 400},
		{"size words", gen, "application/json", js(map[string]any{"prompt": "x", "size": "big"}), 400},
		{"n 1000", gen, "application/json", js(map[string]any{"prompt": "x", "n": 1000}), 400},
		{"n 0.5", gen, "application/json", js(map[string]any{"prompt": "x", "n": 0.5}), 400},
		{"steps 1e9", gen, "application/json", js(map[string]any{"prompt": "x", "steps": 1e9}), 400},
		{"guidance NaN-ish", gen, "application/json", js(map[string]any{"prompt": "x", "guidance_scale": 1e300}), 400},
		{"seed 1.5", gen, "application/json", js(map[string]any{"prompt": "x", "seed": 1.5}), 400},
		{"unknown model", gen, "application/json", js(map[string]any{"prompt": "x", "model": "../../etc/passwd"}), 404},
		{"unknown sampler", gen, "application/json", js(map[string]any{"prompt": "x", "sampler": "heun"}), 400},
		{"response_format", gen, "application/json", js(map[string]any{"prompt": "x", "response_format": "jpeg"}), 400},
		{"beyond the memory budget", gen, "application/json", js(map[string]any{"prompt": "x", "size": "2048x2048"}), 413},
		{"checkpoint size", gen, "application/json", js(map[string]any{"prompt": "bag", "model": "fmnist", "size": "56x28"}), 400},
		{"A1111 malformed", a1, "application/json", []byte(`[1, 2`), 422},
		{"A1111 width 0", a1, "application/json", js(map[string]any{"prompt": "x", "width": 0}), 400},
		{"A1111 width 100000", a1, "application/json", js(map[string]any{"prompt": "x", "width": 100000}), 400},
		{"A1111 batch 1000", a1, "application/json", js(map[string]any{"prompt": "x", "batch_size": 1000}), 400},
		{"A1111 batch × iter", a1, "application/json", js(map[string]any{"prompt": "x", "batch_size": 8, "n_iter": 8}), 400},
		{"A1111 steps 1e9", a1, "application/json", js(map[string]any{"prompt": "x", "steps": 1e9}), 400},
		{"A1111 sampler", a1, "application/json", js(map[string]any{"prompt": "x", "sampler_name": "UniPC 9000"}), 404},
		{"A1111 model", a1, "application/json", js(map[string]any{"prompt": "x", "override_settings": map[string]any{"sd_model_checkpoint": "/etc/passwd"}}), 404},
		{"img2img no image", ts.url + "/sdapi/v1/img2img", "application/json", js(map[string]any{"prompt": "x"}), 422},
		{"img2img not an image", ts.url + "/sdapi/v1/img2img", "application/json", js(map[string]any{"prompt": "x", "init_images": []string{"aGVsbG8="}}), 400},
		{"img2img not base64", ts.url + "/sdapi/v1/img2img", "application/json", js(map[string]any{"prompt": "x", "init_images": []string{"%%%"}}), 400},
		{"img2img mask size", ts.url + "/sdapi/v1/img2img", "application/json", js(map[string]any{"prompt": "x", "init_images": []string{png32}, "mask": mask16}), 400},
		{"img2img strength 2", ts.url + "/sdapi/v1/img2img", "application/json", js(map[string]any{"prompt": "x", "init_images": []string{png32}, "denoising_strength": 2}), 400},
		{"img2img fill 9", ts.url + "/sdapi/v1/img2img", "application/json", js(map[string]any{"prompt": "x", "init_images": []string{png32}, "mask": png32, "inpainting_fill": 9}), 400},
		{"web task", web, "application/json", js(map[string]any{"task": "paint"}), 400},
		{"web image", web, "application/json", js(map[string]any{"task": "img2img", "image": "data:image/png;base64,AAAA"}), 400},
		{"web malformed", web, "application/json", []byte(`{`), 400},
	}
	ct, mp := multipartBody(t, map[string]string{"prompt": "x"}, map[string][]byte{"image": []byte("not a png")})
	rows = append(rows, row{"edits non-image", ts.url + "/v1/images/edits", ct, mp, 400})
	ct, mp = multipartBody(t, map[string]string{"prompt": "x"}, map[string][]byte{"image": pngOf(testPicture(32, 32, false)), "mask": pngOf(testPicture(16, 16, true))})
	rows = append(rows, row{"edits mask size", ts.url + "/v1/images/edits", ct, mp, 400})
	ct, mp = multipartBody(t, map[string]string{"prompt": "x"}, map[string][]byte{"image": pngOf(testPicture(32, 32, false))})
	rows = append(rows, row{"edits opaque, no mask", ts.url + "/v1/images/edits", ct, mp, 400})
	ct, mp = multipartBody(t, map[string]string{"prompt": "x", "n": "many"}, map[string][]byte{"image": pngOf(testPicture(32, 32, true))})
	rows = append(rows, row{"edits n", ts.url + "/v1/images/edits", ct, mp, 400})
	rows = append(rows, row{"edits no image", ts.url + "/v1/images/edits", ct, []byte("--broken\r\n"), 400})
	rows = append(rows, row{"edits broken multipart", ts.url + "/v1/images/edits", "multipart/form-data; boundary=zzz", []byte("--zzz\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nabc"), 400})
	for _, r := range rows {
		status, _, body := call(t, "POST", r.url, r.ctype, r.body)
		if status != r.status {
			t.Errorf("%s: status %d, want %d: %.300s", r.name, status, r.status, body)
			continue
		}
		var shape map[string]any
		if err := json.Unmarshal(body, &shape); err != nil {
			t.Errorf("%s: not JSON: %.200s", r.name, body)
			continue
		}
		switch {
		case strings.Contains(r.url, "/v1/images"):
			e, _ := shape["error"].(map[string]any)
			if e == nil || e["message"] == "" {
				t.Errorf("%s: not OpenAI's error shape: %s", r.name, body)
			}
		case strings.Contains(r.url, "/sdapi/"):
			if _, ok := shape["detail"].(string); !ok {
				t.Errorf("%s: not A1111's error shape: %s", r.name, body)
			}
		}
		if strings.Contains(string(body), "goroutine ") || strings.Contains(string(body), "panic") {
			t.Errorf("%s: a trace in the answer: %s", r.name, body)
		}
	}
	// Still serving.
	if status, body := postJSON(t, gen, map[string]any{"prompt": "x", "steps": 1, "response_format": "b64_json"}); status != 200 {
		t.Errorf("after the bad input: %d %s", status, body)
	}
}

// TestServeMergesBatches: checkpoint requests with the same settings that
// wait together run as one batch, and each image is what the request makes
// alone (its noise comes from its own seed).
func TestServeMergesBatches(t *testing.T) {
	ts := startServer(t, nil)
	req := func(seed int) map[string]any {
		return map[string]any{"model": "fmnist", "prompt": "sandal", "steps": 5, "seed": seed, "n": 2, "response_format": "b64_json", "size": "28x28"}
	}
	alone := map[int][][]byte{}
	for _, seed := range []int{1, 2, 3} {
		_, body := postJSON(t, ts.url+"/v1/images/generations", req(seed))
		alone[seed] = openaiImages(t, body)
	}
	// Hold the worker with a long SD job so that the three wait together.
	blocker := make(chan struct{})
	go func() {
		postJSON(t, ts.url+"/sdapi/v1/txt2img", map[string]any{"prompt": "x", "steps": 150, "batch_size": 4})
		close(blocker)
	}()
	for ts.q.current() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	var wg sync.WaitGroup
	merged := map[int][][]byte{}
	var mu sync.Mutex
	for _, seed := range []int{1, 2, 3} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, body := postJSON(t, ts.url+"/v1/images/generations", req(seed))
			mu.Lock()
			merged[seed] = openaiImages(t, body)
			mu.Unlock()
		}()
	}
	for {
		if waiting, _ := ts.q.counts(); waiting == 3 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	ts.q.interrupt()
	<-blocker
	wg.Wait()
	if got := ts.q.merged.Load(); got < 2 {
		t.Errorf("%d requests joined another's batch, want 2", got)
	}
	for seed, imgs := range alone {
		for i := range imgs {
			a, b := decodePNG(t, imgs[i], 28, 28), decodePNG(t, merged[seed][i], 28, 28)
			if d := maxDiff(a, b); d > 2 {
				t.Errorf("seed %d image %d: merged differs from alone by %d levels", seed, i, d)
			}
		}
	}
}

func maxDiff(a, b image.Image) int {
	d := 0
	for y := range a.Bounds().Dy() {
		for x := range a.Bounds().Dx() {
			r1, g1, b1, _ := a.At(x, y).RGBA()
			r2, g2, b2, _ := b.At(x, y).RGBA()
			for _, p := range [][2]uint32{{r1, r2}, {g1, g2}, {b1, b2}} {
				d = max(d, abs(int(p[0]>>8)-int(p[1]>>8)))
			}
		}
	}
	return d
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// TestServeLoad: 32 clients × 4 requests against the tiny pipeline with a
// queue of 16: every request is answered with an image or a clean 429/503
// with Retry-After; clients that go away mid-request get their jobs
// cancelled; no goroutine is left behind once the server stops.
func TestServeLoad(t *testing.T) {
	before := runtime.NumGoroutine()
	ts := startServer(t, nil)
	stats := loadRun(t, ts.url, 32, 4, 2)
	t.Logf("load: %d ok, %d refused (429/503), p50 %.0f ms, p95 %.0f ms, %.1f images/s", stats.ok, stats.refused,
		stats.p50*1e3, stats.p95*1e3, stats.imagesPerSec)
	if stats.ok == 0 || stats.ok+stats.refused != 128 {
		t.Errorf("%d ok + %d refused of 128", stats.ok, stats.refused)
	}
	// Clients that give up: their jobs are cancelled, the server goes on.
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
			defer cancel()
			b, _ := json.Marshal(map[string]any{"prompt": "slow", "steps": 150, "n": 4, "response_format": "b64_json"})
			req, _ := http.NewRequestWithContext(ctx, "POST", ts.url+"/v1/images/generations", bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for {
		waiting, running := ts.q.counts()
		if waiting == 0 && running == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs of clients that went away still queued: %d waiting, %d running", waiting, running)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if status, _ := postJSON(t, ts.url+"/v1/images/generations", map[string]any{"prompt": "x", "steps": 1}); status != 200 {
		t.Errorf("after cancelled clients: %d", status)
	}
	ts.stop()
	http.DefaultClient.CloseIdleConnections()
	var after int
	for range 100 {
		if after = runtime.NumGoroutine(); after <= before {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if after > before {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines: %d before, %d after the server stopped\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}

type loadStats struct {
	ok, refused        int
	p50, p95           float64 // seconds of the answered requests
	imagesPerSec       float64
	wall               time.Duration
	badStatus, badBody []string
}

// loadRun runs clients × perClient generation requests of steps steps.
func loadRun(t testing.TB, url string, clients, perClient, steps int) loadStats {
	var mu sync.Mutex
	var st loadStats
	var lat []float64
	start := time.Now()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perClient {
				b, _ := json.Marshal(map[string]any{"prompt": fmt.Sprintf("client %d request %d", c, i), "steps": steps,
					"size": "32x32", "response_format": "b64_json", "seed": c*100 + i})
				t0 := time.Now()
				resp, err := http.Post(url+"/v1/images/generations", "application/json", bytes.NewReader(b))
				if err != nil {
					t.Error(err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				switch {
				case resp.StatusCode == 200 && bytes.Contains(body, []byte(`"b64_json"`)):
					st.ok++
					lat = append(lat, time.Since(t0).Seconds())
				case (resp.StatusCode == 429 || resp.StatusCode == 503) && resp.Header.Get("Retry-After") != "":
					st.refused++
				default:
					t.Errorf("status %d: %.200s", resp.StatusCode, body)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	st.wall = time.Since(start)
	slices.Sort(lat)
	if len(lat) > 0 {
		st.p50, st.p95 = lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*95/100)]
	}
	st.imagesPerSec = float64(st.ok) / st.wall.Seconds()
	return st
}

// TestServeShutdown: on shutdown the running job finishes within the
// grace period and its client gets its image; waiting jobs are cancelled
// with 503.
func TestServeShutdown(t *testing.T) {
	ts := startServer(t, func(c *serverConfig) { c.grace = 2 * time.Minute })
	type answer struct {
		status int
		body   []byte
	}
	first := make(chan answer, 1)
	go func() {
		s, b := postJSON(t, ts.url+"/v1/images/generations", map[string]any{"prompt": "x", "steps": 40, "response_format": "b64_json"})
		first <- answer{s, b}
	}()
	for ts.q.current() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	second := make(chan answer, 1)
	go func() {
		s, b := postJSON(t, ts.url+"/v1/images/generations", map[string]any{"prompt": "y", "steps": 40})
		second <- answer{s, b}
	}()
	for {
		if waiting, _ := ts.q.counts(); waiting == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	ts.stop()
	if a := <-first; a.status != 200 || len(openaiImages(t, a.body)) != 1 {
		t.Errorf("the running job: %d %.200s", a.status, a.body)
	}
	if a := <-second; a.status != 503 {
		t.Errorf("the waiting job: %d %.200s", a.status, a.body)
	}
}

// BenchmarkServeLoad: 32 clients × 4 requests (2 steps, 32×32) against the
// tiny pipeline; reports p50/p95 latency and images per second.
func BenchmarkServeLoad(b *testing.B) {
	ts := startServer(b, func(c *serverConfig) { c.queue = 128 })
	var st loadStats
	for b.Loop() {
		st = loadRun(b, ts.url, 32, 4, 2)
	}
	b.ReportMetric(st.p50*1e3, "p50-ms")
	b.ReportMetric(st.p95*1e3, "p95-ms")
	b.ReportMetric(st.imagesPerSec, "images/s")
	b.ReportMetric(float64(st.refused), "refused")
}

// TestServeOpenAINodeClient: the official openai npm package, its baseURL
// pointed at the server, generates (b64_json and url) and edits PNGs of the
// size asked, lists the models and sees OpenAI's errors. It needs node and
// the package: GODIFFUSE_NODE_MODULES names the node_modules folder that
// holds openai (.ci/run installs it); GODIFFUSE_REQUIRE_NODE=1 makes its
// absence a failure.
func TestServeOpenAINodeClient(t *testing.T) {
	modules := os.Getenv("GODIFFUSE_NODE_MODULES")
	node, err := exec.LookPath("node")
	if modules == "" || err != nil {
		if os.Getenv("GODIFFUSE_REQUIRE_NODE") == "1" {
			t.Fatalf("node (%v) or GODIFFUSE_NODE_MODULES (%q) missing", err, modules)
		}
		t.Skip("needs node and GODIFFUSE_NODE_MODULES with the openai package (npm install openai@4)")
	}
	ts := startServer(t, func(c *serverConfig) { c.apiKey = "sk-test" })
	dir := t.TempDir()
	img, mask := filepath.Join(dir, "image.png"), filepath.Join(dir, "mask.png")
	writeFile(t, img, pngOf(testPicture(32, 32, false)), 0o644)
	writeFile(t, mask, pngOf(testPicture(32, 32, true)), 0o644)
	cmd := exec.Command(node, filepath.Join("testdata", "openai_client.cjs"))
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules, "BASE_URL="+ts.url, "API_KEY=sk-test", "IMAGE="+img, "MASK="+mask)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	var out struct {
		Models   []string `json:"models"`
		Generate []string `json:"generate"`
		URL      []string `json:"url"`
		Edit     []string `json:"edit"`
		Error    struct {
			Status int    `json:"status"`
			Code   string `json:"code"`
		} `json:"error"`
		Auth struct {
			Status int `json:"status"`
		} `json:"auth"`
	}
	mustJSON(t, outb, &out)
	if !slices.Equal(out.Models, []string{"tiny-pipeline", "fmnist"}) {
		t.Errorf("models %v", out.Models)
	}
	if len(out.Generate) != 2 || len(out.Edit) != 1 || len(out.URL) != 1 {
		t.Fatalf("images: %d generated, %d edited, %d urls", len(out.Generate), len(out.Edit), len(out.URL))
	}
	for _, b64 := range append(out.Generate, out.Edit...) {
		b, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatal(err)
		}
		decodePNG(t, b, 32, 32)
	}
	_, _, b := call(t, "GET", out.URL[0], "", nil)
	decodePNG(t, b, 56, 56)
	if out.Error.Status != 404 || out.Error.Code != "model_not_found" || out.Auth.Status != 401 {
		t.Errorf("errors as the package sees them: %+v, auth %+v", out.Error, out.Auth)
	}
}

// fakeBackend stands in for a model in the registry test.
type fakeBackend struct{ name string }

func (f *fakeBackend) info() modelInfo                 { return modelInfo{Name: f.name} }
func (f *fakeBackend) mergeable(_, _ *genRequest) bool { return false }
func (f *fakeBackend) run(context.Context, []*genRequest, progressFunc) ([][]*genImage, error) {
	return nil, nil
}

// TestRegistryKeepsModelsWithinBudget: loading a model beyond the budget
// evicts the least recently used one; one model always stays.
func TestRegistryKeepsModelsWithinBudget(t *testing.T) {
	loads := map[string]int{}
	r := &registry{loaded: map[string]*loadedModel{}, budget: 250, current: "a",
		load: func(s *modelSource) (backend, error) { loads[s.name]++; return &fakeBackend{s.name}, nil }}
	for _, n := range []string{"a", "b", "c"} {
		r.sources = append(r.sources, &modelSource{name: n, bytes: 100})
	}
	r.sources[2].bytes = 1000 // bigger than the budget alone
	for _, step := range []struct {
		get    string
		loaded []string
	}{
		{"a", []string{"a"}}, {"b", []string{"a", "b"}}, {"a", []string{"a", "b"}}, {"c", []string{"c"}},
		{"b", []string{"b"}}, {"a", []string{"a", "b"}}, {"", []string{"a", "b"}},
	} {
		if _, err := r.get(step.get); err != nil {
			t.Fatal(err)
		}
		var got []string
		for n := range r.loaded {
			got = append(got, n)
		}
		slices.Sort(got)
		if !slices.Equal(got, step.loaded) {
			t.Errorf("after get(%q): loaded %v, want %v", step.get, got, step.loaded)
		}
	}
	if loads["a"] != 2 || loads["b"] != 2 || loads["c"] != 1 {
		t.Errorf("loads %v", loads)
	}
	if _, err := r.get("d"); err == nil {
		t.Error("an unknown model loaded")
	}
}

// TestServeWithoutModels: with nothing to serve the server still starts;
// the page says which command makes a model and the APIs answer 503.
func TestServeWithoutModels(t *testing.T) {
	s, err := newServer(serverConfig{queue: 4, budget: 1e9, maxBody: 1 << 20, loopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	h := s.handler()
	for _, c := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", "/api/models", "", 200, "go run ./cmd/diffuse train"},
		{"POST", "/v1/images/generations", `{"prompt": "x"}`, 503, "diffuse train"},
		{"POST", "/sdapi/v1/txt2img", `{"prompt": "x"}`, 503, "diffuse train"},
		{"GET", "/sdapi/v1/options", "", 200, `"sd_model_checkpoint":null`},
		{"GET", "/v1/models", "", 200, `"data":[]`},
	} {
		req := httptest.NewRequest(c.method, "http://localhost:7860"+c.path, strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.want) {
			t.Errorf("%s %s: %d %s, want %d and %q", c.method, c.path, rec.Code, rec.Body, c.status, c.want)
		}
	}
}

// FuzzServeRequestParsing: any body, read as an OpenAI, page or A1111
// request (with its images), gives a request or a client error, never a
// panic.
func FuzzServeRequestParsing(f *testing.F) {
	png32 := base64.StdEncoding.EncodeToString(pngOf(testPicture(32, 32, true)))
	for _, s := range []string{`{"prompt": "x", "n": 2, "size": "64x64", "seed": 3}`, `{"prompt": "x", "size": "0x-1", "n": 1e300}`,
		`{"prompt": null, "steps": -1}`, `{"task": "inpaint", "image": "data:image/png;base64,` + png32 + `", "mask": "` + png32 + `"}`,
		`{"init_images": ["` + png32 + `"], "mask": "` + png32 + `", "inpainting_fill": 7, "denoising_strength": -1}`,
		`{"size": "99999999999999999999x1"}`, `{"seed": 1.5e20}`, `[]`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var o openaiRequest
		if json.Unmarshal(body, &o) == nil {
			o.toGen()
		}
		var w webRequest
		if json.Unmarshal(body, &w) == nil {
			w.toGen()
		}
		var a a1111Request
		if json.Unmarshal(body, &a) == nil {
			a.fromImage(&genRequest{})
		}
		decodeImage("image", string(body))
		decodeImageBytes("image", body)
	})
}
