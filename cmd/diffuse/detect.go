package main

import (
	"encoding/json"
	"fmt"
	_ "image/jpeg"
	"io"
	"os"

	"github.com/godiffuse/godiffuse/pngtext"
	"github.com/godiffuse/godiffuse/watermark"
)

func runDetect(args []string) error {
	fs := newFlags("detect", "Looks for the invisible watermark diffuse writes into generated images (PNG or JPEG,\n"+
		"also after compression, resizing, cropping or a brightness change) and prints, per file, whether it is\n"+
		"there, its payload and a confidence; a PNG that still has its provenance record is checked against it.\n"+
		"Usage: diffuse detect IMAGE...")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("give one or more images")
	}
	for _, path := range fs.Args() {
		if err := detect(os.Stdout, path); err != nil {
			return err
		}
	}
	return nil
}

func detect(w io.Writer, path string) error {
	img, err := readImage("detect", path)
	if err != nil {
		return err
	}
	d := watermark.Detect(img)
	b := img.Bounds()
	switch {
	case d.Present:
		fmt.Fprintf(w, "%s: watermarked: payload %012x (data %08x), confidence %.3f\n", path, d.Payload, uint32(d.Payload), d.Confidence)
	case min(b.Dx(), b.Dy()) < watermark.MinSide:
		fmt.Fprintf(w, "%s: no watermark can be read: %d×%d is under %d pixels\n", path, b.Dx(), b.Dy(), watermark.MinSide)
		return nil
	default:
		fmt.Fprintf(w, "%s: no watermark found (best reading confidence %.3f)\n", path, d.Confidence)
		return nil
	}
	if prov, ok := provenanceOf(path); ok {
		if want := watermark.PayloadFor(prov.Model, prov.Seed); want == d.Payload {
			fmt.Fprintf(w, "  matches its provenance record: model %s, seed %d\n", prov.Model, prov.Seed)
		} else {
			fmt.Fprintf(w, "  differs from its provenance record (model %s, seed %d would give %012x)\n", prov.Model, prov.Seed, want)
		}
	}
	return nil
}

// provenanceOf reads a PNG's godiffuse record, if it has one.
func provenanceOf(path string) (provenance, bool) {
	var prov provenance
	f, err := os.Open(path)
	if err != nil {
		return prov, false
	}
	defer f.Close()
	chunks, err := pngtext.Read(f)
	if err != nil {
		return prov, false
	}
	for _, c := range chunks {
		if c.Key == "godiffuse" && json.Unmarshal([]byte(c.Value), &prov) == nil {
			return prov, true
		}
	}
	return prov, false
}
