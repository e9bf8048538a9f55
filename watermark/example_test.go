package watermark_test

import (
	"fmt"
	"image"

	"github.com/godiffuse/godiffuse/watermark"
)

// Hiding a payload and finding it again.
func Example() {
	img := image.NewNRGBA(image.Rect(0, 0, 256, 256))
	for y := range 256 {
		for x := range 256 {
			i := img.PixOffset(x, y)
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = uint8(x), uint8(y), uint8(x^y), 255
		}
	}
	payload := watermark.PayloadFor("my-model", 42)
	marked, err := watermark.Embed(img, payload)
	if err != nil {
		panic(err)
	}
	d := watermark.Detect(marked)
	fmt.Println(d.Present, d.Payload == payload, watermark.Detect(img).Present)
	// Output: true true false
}
