package main

import (
	"bufio"
	"context"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	iofs "io/fs"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/godiffuse/godiffuse/safety"
	"github.com/godiffuse/godiffuse/tensor"
)

// diffuse serve: a web page, the OpenAI Images API and a subset of
// AUTOMATIC1111's /sdapi/v1 from one process. The APIs differ only in how
// requests and answers are spelled: each turns its request into a
// genRequest, which the queue runs (serve_queue.go) on a model of the
// registry (serve_models.go).

//go:embed web
var webFiles embed.FS

// serverConfig is what runServe passes to newServer.
type serverConfig struct {
	sources []*modelSource
	load    func(*modelSource) (backend, error)
	apiKey  string
	cors    string
	queue   int
	budget  int64 // bytes for models and requests
	maxBody int64
	grace   time.Duration // how long a running job may finish after SIGTERM
	// loopbackOnly refuses requests whose Host is not a loopback name, which
	// stops DNS-rebinding pages from reaching a server on 127.0.0.1.
	loopbackOnly bool
	policy       safety.Policy // for the page
}

type server struct {
	cfg     serverConfig
	reg     *registry
	q       *queue
	gallery *gallery
	started time.Time
}

func runServe(args []string) error {
	fs := newFlags("serve", "Serves a web page, the OpenAI Images API (/v1/images/generations, /v1/images/edits,\n"+
		"/v1/models) and AUTOMATIC1111's API (/sdapi/v1/txt2img, img2img, progress, interrupt, samplers,\n"+
		"sd-models, options) for Stable Diffusion folders and checkpoints of diffuse train (the prompt\n"+
		"names a class). With no -model it serves what out/ holds.")
	var models stringList
	fs.Var(&models, "model", "a Stable Diffusion folder or a checkpoint to serve (repeat for more; default: what out/ holds)")
	addr := fs.String("addr", "127.0.0.1:7860", "address to listen on")
	apiKey := fs.String("api-key", os.Getenv("GODIFFUSE_API_KEY"), "key clients must send as 'Authorization: Bearer KEY' (default: $GODIFFUSE_API_KEY)")
	insecure := fs.Bool("insecure", false, "listen on a non-loopback address without -api-key")
	queueLen := fs.Int("queue", 16, "requests that may wait; more are answered 429 with Retry-After")
	cors := fs.String("cors", "", "allow browser pages from this origin (e.g. http://localhost:3000, or *) to call the APIs")
	memGB := fs.Float64("memory", 0, "GB of memory for loaded models and requests (0: half the machine's memory)")
	maxBody := fs.Int("max-body-mb", 32, "largest request body in MB")
	grace := fs.Duration("grace", 30*time.Second, "on SIGTERM, how long the running job may finish before it is cancelled")
	devSpec := deviceFlag(fs)
	output := addOutputFlags(fs, "auto")
	if err := parse(fs, args); err != nil {
		return err
	}
	policy, err := output.check()
	if err != nil {
		return err
	}
	switch {
	case *queueLen < 1 || *queueLen > 10000:
		return fmt.Errorf("-queue: want 1 … 10000, have %d", *queueLen)
	case !(*memGB >= 0 && *memGB <= 1e6):
		return fmt.Errorf("-memory: want 0 (half the machine's) or a size in GB, have %g", *memGB)
	case *maxBody < 1 || *maxBody > 4096:
		return fmt.Errorf("-max-body-mb: want 1 … 4096, have %d", *maxBody)
	case *grace < 0:
		return fmt.Errorf("-grace: want ≥ 0, have %s", *grace)
	}
	loopback, err := isLoopbackAddr(*addr)
	if err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	if !loopback && *apiKey == "" && !*insecure {
		return fmt.Errorf("-addr %s: listening beyond this machine needs -api-key (or -insecure to serve anyone who can reach it)", *addr)
	}
	srcs, err := findSources(models, "out")
	if err != nil {
		return err
	}
	if len(srcs) == 0 {
		fmt.Fprintln(os.Stderr, "note: out/ holds no checkpoint or Stable Diffusion folder: the page says how to make one; "+
			"train with 'diffuse train' (or give -model DIR) and start the server again")
	}
	inferenceGC() // as diffuse generate: weights held, activations made and dropped
	dev, err := pickDevice(devSpec)
	if err != nil {
		return err
	}
	budget := int64(*memGB * 1e9)
	if budget == 0 {
		budget = physicalMemory() / 2
	}
	out := serveOutput{flags: output, policy: policy}
	cfg := serverConfig{sources: srcs, apiKey: *apiKey, cors: *cors, queue: *queueLen, budget: budget,
		maxBody: int64(*maxBody) << 20, grace: *grace, loopbackOnly: loopback, policy: policy}
	cfg.load = func(src *modelSource) (backend, error) { return loadBackend(dev, src, out) }
	s, err := newServer(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	for _, mi := range s.reg.infos() {
		fmt.Fprintf(os.Stderr, "serving %s (%s, %dx%d)\n", mi.Name, mi.Kind, mi.Width, mi.Height)
	}
	fmt.Fprintf(os.Stderr, "listening on http://%s/ (policy: safety %s, watermark %s)\n", ln.Addr(), policy, *output.watermark)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return s.serve(ctx, ln)
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func loadBackend(dev tensor.Device, src *modelSource, out serveOutput) (backend, error) {
	if src.kind == kindSD {
		return loadSD(dev, src, out)
	}
	return loadCheckpointBackend(dev, src, out)
}

// isLoopbackAddr says whether a listen address stays on this machine.
func isLoopbackAddr(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, err
	}
	if host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

// physicalMemory is the machine's memory in bytes (8 GB when unknown).
func physicalMemory() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err == nil {
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					return kb << 10
				}
			}
		}
	}
	return 8e9
}

// newServer loads every model once (so that a broken one fails at start
// and the page can describe them all); the budget then decides which
// stay loaded.
func newServer(cfg serverConfig) (*server, error) {
	reg := &registry{sources: cfg.sources, loaded: map[string]*loadedModel{}, budget: cfg.budget, load: cfg.load}
	for _, src := range cfg.sources {
		if _, err := reg.get(src.name); err != nil {
			return nil, fmt.Errorf("model %s: %w", src.name, err)
		}
	}
	if len(cfg.sources) > 0 {
		reg.current = cfg.sources[0].name
	}
	g := &gallery{maxBytes: 256 << 20}
	return &server{cfg: cfg, reg: reg, q: newQueue(cfg.queue, reg, g), gallery: g, started: time.Now()}, nil
}

// serve answers on ln until ctx is done, then shuts down gracefully: no new
// jobs, waiting ones cancelled, the running one given cfg.grace to finish.
func (s *server) serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go s.q.run()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.q.close()
	select {
	case <-s.q.stopped:
	case <-time.After(s.cfg.grace):
		s.q.interrupt()
		<-s.q.stopped
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if hs.Shutdown(sctx) != nil {
		hs.Close()
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// ---------------------------------------------------------------------------
// Routing and the checks every request passes.

// apiStyle is whose error shape a route answers in.
type apiStyle int

const (
	styleOpenAI apiStyle = iota
	styleA1111
	styleWeb
)

func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.page)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(mustSub(webFiles, "web"))))
	mux.HandleFunc("GET /images/{file}", s.imageFile)

	mux.HandleFunc("POST /v1/images/generations", s.openaiGenerations)
	mux.HandleFunc("POST /v1/images/edits", s.openaiEdits)
	mux.HandleFunc("GET /v1/models", s.openaiModels)
	mux.HandleFunc("GET /v1/models/{id...}", s.openaiModel)

	mux.HandleFunc("POST /sdapi/v1/txt2img", s.a1111Txt2Img)
	mux.HandleFunc("POST /sdapi/v1/img2img", s.a1111Img2Img)
	mux.HandleFunc("GET /sdapi/v1/progress", s.a1111Progress)
	mux.HandleFunc("POST /sdapi/v1/interrupt", s.a1111Interrupt)
	mux.HandleFunc("POST /sdapi/v1/skip", s.a1111Interrupt)
	mux.HandleFunc("GET /sdapi/v1/samplers", s.a1111Samplers)
	mux.HandleFunc("GET /sdapi/v1/sd-models", s.a1111Models)
	mux.HandleFunc("POST /sdapi/v1/refresh-checkpoints", s.a1111Empty)
	mux.HandleFunc("GET /sdapi/v1/options", s.a1111Options)
	mux.HandleFunc("POST /sdapi/v1/options", s.a1111SetOptions)
	for _, p := range []string{"sd-vae", "upscalers", "loras", "prompt-styles", "hypernetworks", "face-restorers", "schedulers"} {
		mux.HandleFunc("GET /sdapi/v1/"+p, s.a1111List)
	}

	mux.HandleFunc("GET /api/models", s.webModels)
	mux.HandleFunc("GET /api/gallery", s.webGallery)
	mux.HandleFunc("POST /api/generate", s.webGenerate)
	mux.HandleFunc("GET /api/status", s.webStatus)

	return s.guard(mux)
}

func mustSub(f embed.FS, dir string) iofs.FS {
	sub, err := iofs.Sub(f, dir)
	if err != nil {
		panic(err) // the embedded folder is part of the binary
	}
	return sub
}

// styleOf picks the error shape from the path.
func styleOf(path string) apiStyle {
	switch {
	case strings.HasPrefix(path, "/sdapi/"):
		return styleA1111
	case strings.HasPrefix(path, "/v1/"):
		return styleOpenAI
	}
	return styleWeb
}

// guard applies the host check, CORS, the API key, the body limit and a
// last recover to every request.
func (s *server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		style := styleOf(r.URL.Path)
		defer func() {
			if v := recover(); v != nil && v != http.ErrAbortHandler {
				writeError(w, style, http.StatusInternalServerError, fmt.Errorf("internal error: %v", v), "")
			}
		}()
		if s.cfg.loopbackOnly && !loopbackHost(r.Host) {
			writeError(w, style, http.StatusForbidden, fmt.Errorf("host %q: this server answers only requests to localhost", r.Host), "")
			return
		}
		if origin := r.Header.Get("Origin"); origin != "" && s.cfg.cors != "" && (s.cfg.cors == "*" || s.cfg.cors == origin) {
			w.Header().Set("Access-Control-Allow-Origin", s.cfg.cors)
			w.Header().Set("Vary", "Origin")
			if r.Method == http.MethodOptions {
				w.Header().Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
				w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
				w.Header().Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		if s.cfg.apiKey != "" && !s.public(r) && !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="diffuse"`)
			writeError(w, style, http.StatusUnauthorized, errors.New("missing or wrong API key: send 'Authorization: Bearer KEY'"), "")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.maxBody)
		next.ServeHTTP(w, r)
	})
}

// public routes need no key: the page itself and its files, and image
// URLs (their random names are the capability, as OpenAI's url answers).
func (s *server) public(r *http.Request) bool {
	p := r.URL.Path
	return r.Method == http.MethodGet && (p == "/" || strings.HasPrefix(p, "/static/") || strings.HasPrefix(p, "/images/"))
}

func (s *server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	key, ok := strings.CutPrefix(h, "Bearer ")
	if !ok { // A1111 clients send HTTP basic auth; the key is the password
		if _, pw, basic := r.BasicAuth(); basic {
			key, ok = pw, true
		}
	}
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(key)), []byte(s.cfg.apiKey)) == 1
}

func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ---------------------------------------------------------------------------
// Errors, in the shape of the API asked.

// statusOf maps an error to its HTTP status.
func statusOf(err error) int {
	var br *badRequest
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &br):
		if br.status != 0 {
			return br.status
		}
		return http.StatusBadRequest
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errQueueFull):
		return http.StatusTooManyRequests
	case errors.Is(err, errShuttingDown):
		return http.StatusServiceUnavailable
	case errors.Is(err, errUnknownModel):
		return http.StatusNotFound
	case errors.Is(err, errWithheld):
		return http.StatusBadRequest
	case errors.Is(err, errNoModels):
		return http.StatusServiceUnavailable
	case errors.Is(err, errInterrupted), errors.Is(err, errClientGone), errors.Is(err, context.Canceled):
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

var errUnknownModel = errors.New("unknown model")

func writeError(w http.ResponseWriter, style apiStyle, status int, err error, param string) {
	var br *badRequest
	if errors.As(err, &br) && param == "" {
		param = br.param
	}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	msg := err.Error()
	var body any
	switch style {
	case styleOpenAI:
		typ, code := "invalid_request_error", any(nil)
		switch {
		case status == http.StatusUnauthorized:
			typ, code = "invalid_request_error", "invalid_api_key"
		case status == http.StatusNotFound:
			code = "model_not_found"
		case status == http.StatusTooManyRequests:
			typ, code = "rate_limit_error", "rate_limit_exceeded"
		case errors.Is(err, errWithheld):
			code = "content_policy_violation"
		case status >= 500:
			typ = "server_error"
		}
		var p any
		if param != "" {
			p = param
		}
		body = map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": p, "code": code}}
	case styleA1111:
		name := http.StatusText(status)
		body = map[string]any{"error": name, "detail": msg, "body": "", "errors": msg}
	default:
		body = map[string]any{"error": msg, "param": param, "status": status}
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// decodeJSON reads a JSON body into v (unknown fields are ignored, as
// clients send many).
func decodeJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return badParam("", "Content-Type %q: want application/json", ct)
	}
	b, err := readBody(r)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return badParam("", "the request is not valid JSON for this endpoint: %v", err)
	}
	return nil
}

// readBody reads the request body within the server's limit (413 beyond).
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, bodyError(err)
	}
	return b, nil
}

// bodyError is the client's error for a failed read of its body.
func bodyError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &badRequest{msg: fmt.Sprintf("the request body is larger than %d bytes", mbe.Limit), status: http.StatusRequestEntityTooLarge}
	}
	return badParam("", "reading the request: %v", err)
}

// ---------------------------------------------------------------------------
// Running a request.

// prepare resolves the model, fills in its defaults and checks the request.
func (s *server) prepare(req *genRequest) error {
	src := s.reg.source(req.Model)
	if len(s.reg.sources) == 0 {
		return errNoModels
	}
	if src == nil {
		return fmt.Errorf("%w %q: this server serves %s", errUnknownModel, req.Model, strings.Join(sortedNames(s.reg.infos()), ", "))
	}
	req.Model = src.name
	return req.check(src.info, s.cfg.budget, src.bytes)
}

// generate queues a checked request and waits for its images; the job is
// cancelled when the client goes away (ctx). watch, when set, sees every
// change of the job.
func (s *server) generate(ctx context.Context, req *genRequest, watch func(j *job)) ([]*genImage, error) {
	j := newJob(context.Background(), req)
	if err := s.q.submit(j); err != nil {
		return nil, err
	}
	for {
		st, changed := j.status(s.q)
		if watch != nil {
			watch(j)
		}
		if st.State == stateDone || st.State == stateFailed || st.State == stateCancelled {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			j.cancel(errClientGone)
			<-j.done
			return nil, errClientGone
		case <-time.After(time.Second): // the queue position changes without notice
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.images, j.err
}

// decodeImage reads a base64 image (a data: URL prefix allowed) of at most
// 4096×4096 pixels.
func decodeImage(param, b64 string) (image.Image, error) {
	if i := strings.Index(b64, ";base64,"); i >= 0 && strings.HasPrefix(b64, "data:") {
		b64 = b64[i+len(";base64,"):]
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return nil, badParam(param, "%s: not base64: %v", param, err)
	}
	return decodeImageBytes(param, raw)
}

func decodeImageBytes(param string, raw []byte) (image.Image, error) {
	cfg, _, err := image.DecodeConfig(strings.NewReader(string(raw)))
	if err != nil {
		return nil, badParam(param, "%s: not a PNG or JPEG image: %v", param, err)
	}
	if cfg.Width < 1 || cfg.Height < 1 || cfg.Width > 4096 || cfg.Height > 4096 {
		return nil, badParam(param, "%s: %dx%d pixels; want 1 … 4096 on each side", param, cfg.Width, cfg.Height)
	}
	img, _, err := image.Decode(strings.NewReader(string(raw)))
	if err != nil {
		return nil, badParam(param, "%s: not a readable image: %v", param, err)
	}
	return img, nil
}

// randomSeed draws a seed for a request that asked for none.
func randomSeed() uint64 {
	return uint64(time.Now().UnixNano()) % (1 << 32)
}

// seedOf reads an optional seed; absent or negative means random.
func seedOf(v *float64, param string) (uint64, error) {
	if v == nil || *v < 0 {
		return randomSeed(), nil
	}
	if *v != math.Trunc(*v) || *v >= 1<<53 {
		return 0, badParam(param, "%s %g: want a whole number 0 … 2^53 (or -1: random)", param, *v)
	}
	return uint64(*v), nil
}

// intOf reads an optional whole number in [lo, hi]; absent is 0.
func intOf(v *float64, param string, lo, hi int) (int, error) {
	if v == nil {
		return 0, nil
	}
	if *v != math.Trunc(*v) || *v < float64(lo) || *v > float64(hi) {
		return 0, badParam(param, "%s %g: want a whole number %d … %d", param, *v, lo, hi)
	}
	return int(*v), nil
}

// guidanceOf reads an optional guidance scale; absent is -1 (the model's).
func guidanceOf(v *float64) float64 {
	if v == nil {
		return -1
	}
	return *v
}

func (s *server) page(w http.ResponseWriter, r *http.Request) {
	b, err := webFiles.ReadFile("web/index.html")
	if err != nil {
		writeError(w, styleWeb, http.StatusInternalServerError, err, "")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'")
	w.Write(b)
}

func (s *server) imageFile(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutSuffix(r.PathValue("file"), ".png")
	im := s.gallery.find(id)
	if !ok || im == nil {
		writeError(w, styleWeb, http.StatusNotFound, errors.New("no such image (the server keeps the latest images only)"), "")
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Content-Length", strconv.Itoa(len(im.png)))
	if r.URL.Query().Has("download") {
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%d.png"`, sanitizeName(im.Model), im.Seed))
	}
	w.Write(im.png)
}

// sanitizeName keeps a name to letters, digits, '-' and '_' for a file name.
func sanitizeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			return r
		}
		return '_'
	}, s)
}

// imageURL is the absolute URL of a gallery image for this request's host.
func imageURL(r *http.Request, id string) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return fmt.Sprintf("%s://%s/images/%s.png", scheme, r.Host, id)
}
