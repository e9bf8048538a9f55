package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// findBrowser is Debian's chromium (or another Chrome) on PATH.
func findBrowser() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestServePageInBrowser drives the page in a real headless chromium: type
// a prompt, press Generate, watch the progress bar advance and the image
// appear; then upload an image, paint a mask with the mouse and inpaint.
// GODIFFUSE_REQUIRE_BROWSER=1 makes a missing browser a failure;
// GODIFFUSE_SCREENSHOTS=DIR keeps screenshots of both (the README's).
func TestServePageInBrowser(t *testing.T) {
	browser := findBrowser()
	if browser == "" {
		if os.Getenv("GODIFFUSE_REQUIRE_BROWSER") == "1" {
			t.Fatal("no chromium on PATH (apt-get install chromium)")
		}
		t.Skip("needs chromium (apt-get install chromium)")
	}
	ts := startServer(t, nil)
	shots := os.Getenv("GODIFFUSE_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1100, 900))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	// Text to image, with enough steps to see the progress move.
	var progress []float64
	err := chromedp.Run(ctx,
		chromedp.Navigate(ts.url+"/"),
		chromedp.WaitReady(`#model option[value="tiny-pipeline"]`, chromedp.ByQuery),
		chromedp.SendKeys("#prompt", "a lighthouse at dawn", chromedp.ByID),
		chromedp.SetValue("#steps", "150", chromedp.ByID),
		chromedp.SetValue("#seed", "42", chromedp.ByID),
		chromedp.Click("#generate", chromedp.ByID),
		chromedp.ActionFunc(func(ctx context.Context) error {
			deadline := time.Now().Add(time.Minute)
			for time.Now().Before(deadline) {
				var v float64
				var n int
				if err := chromedp.Evaluate(`[document.getElementById("progress").value, document.querySelectorAll("#results img").length]`,
					&[]any{&v, &n}).Do(ctx); err != nil {
					return err
				}
				progress = append(progress, v)
				if n > 0 {
					return nil
				}
				time.Sleep(30 * time.Millisecond)
			}
			return context.DeadlineExceeded
		}),
	)
	if err != nil {
		t.Fatalf("text to image: %v (progress seen %v)", err, progress)
	}
	moving := 0
	for _, v := range progress {
		if v > 0 && v < 1 {
			moving++
		}
	}
	if moving < 2 {
		t.Errorf("the progress bar did not advance during the run: %v", progress)
	}
	var resultSrc, params string
	if err := chromedp.Run(ctx,
		chromedp.AttributeValue("#results img", "src", &resultSrc, nil, chromedp.ByQuery),
		chromedp.Text("#results pre", &params, chromedp.ByQuery),
		chromedp.WaitVisible("#gallery img", chromedp.ByQuery),
		screenshot(filepath.Join(shots, "serve-txt2img.png")),
	); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resultSrc, "/images/") || !strings.Contains(params, "Seed: 42") {
		t.Errorf("result %q with parameters %q", resultSrc, params)
	}

	// Inpainting: upload, paint a stroke, generate.
	dir := t.TempDir()
	upload := filepath.Join(dir, "input.png")
	writeFile(t, upload, pngOf(testPicture(32, 32, false)), 0o644)
	var white int
	err = chromedp.Run(ctx,
		chromedp.Click(`input[name=task][value=inpaint]`, chromedp.ByQuery),
		chromedp.WaitVisible("#mask", chromedp.ByID),
		chromedp.SetUploadFiles("#upload", []string{upload}, chromedp.ByID),
		chromedp.Sleep(300*time.Millisecond),
		chromedp.SetValue("#steps", "20", chromedp.ByID),
		chromedp.ActionFunc(func(ctx context.Context) error { return paintStroke(ctx, "#mask") }),
		chromedp.Evaluate(`(() => { const c = document.getElementById("mask"); const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
			let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 128) n++; return n; })()`, &white),
		chromedp.Click("#generate", chromedp.ByID),
		chromedp.WaitVisible("#results img", chromedp.ByQuery),
		screenshot(filepath.Join(shots, "serve-inpaint.png")),
	)
	if err != nil {
		t.Fatalf("inpainting: %v", err)
	}
	if white == 0 {
		t.Error("painting on the mask canvas left no white pixels")
	}
	var errText string
	chromedp.Run(ctx, chromedp.Text("#error", &errText, chromedp.ByID))
	if errText != "" {
		t.Errorf("the page shows an error: %s", errText)
	}
	if len(ts.gallery.list()) < 2 {
		t.Errorf("%d images in the gallery, want 2", len(ts.gallery.list()))
	}
}

// paintStroke drags the mouse across the middle of an element.
func paintStroke(ctx context.Context, sel string) error {
	var box []float64
	if err := chromedp.Evaluate(`(() => { const r = document.querySelector("`+sel+`").getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()`, &box).Do(ctx); err != nil {
		return err
	}
	x0, y0, w, h := box[0], box[1], box[2], box[3]
	if err := input.DispatchMouseEvent(input.MousePressed, x0+w*0.55, y0+h*0.5).WithButton(input.Left).WithClickCount(1).Do(ctx); err != nil {
		return err
	}
	for i := range 10 {
		x := x0 + w*(0.55+0.04*float64(i))
		if err := input.DispatchMouseEvent(input.MouseMoved, x, y0+h*0.5).WithButton(input.Left).WithButtons(1).Do(ctx); err != nil {
			return err
		}
	}
	return input.DispatchMouseEvent(input.MouseReleased, x0+w*0.95, y0+h*0.5).WithButton(input.Left).WithClickCount(1).Do(ctx)
}

// screenshot saves the page as a PNG.
func screenshot(path string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		var buf []byte
		if err := chromedp.FullScreenshot(&buf, 100).Do(ctx); err != nil {
			return err
		}
		return os.WriteFile(path, buf, 0o644)
	})
}
