package features

import (
	"math"
	"sync"

	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// Inference-only image ops of InceptionV3, in plain Go over N×C planes: a
// bilinear resize and 3×3 pools. They run once per image outside any
// gradient, and cost little next to the convolutions.
// ---------------------------------------------------------------------------

// planes runs f over every (image, channel) plane of x (N, C, H, W) in
// parallel and returns the (N, C, OH, OW) result on x's device.
func planes(x *tensor.Tensor, oh, ow int, f func(dst, src []float32)) *tensor.Tensor {
	n, c, h, w := x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3)
	src := x.MustFloat32s()
	dst := make([]float32, n*c*oh*ow)
	var wg sync.WaitGroup
	jobs := make(chan int)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range jobs {
				f(dst[p*oh*ow:(p+1)*oh*ow], src[p*h*w:(p+1)*h*w])
			}
		}()
	}
	for p := range n * c {
		jobs <- p
	}
	close(jobs)
	wg.Wait()
	return tensor.FromFloat32(x.Device(), dst, n, c, oh, ow)
}

// bilinearTaps gives, for each output index, the two source indices and
// their weights of F.interpolate(mode="bilinear", align_corners=False)
// without antialiasing: src = max((dst+½)·in/out − ½, 0).
func bilinearTaps(in, out int) (i0, i1 []int, l0, l1 []float64) {
	scale := float64(in) / float64(out)
	i0, i1 = make([]int, out), make([]int, out)
	l0, l1 = make([]float64, out), make([]float64, out)
	for d := range out {
		s := max(scale*(float64(d)+0.5)-0.5, 0)
		a := int(math.Floor(s))
		i0[d], i1[d] = a, min(a+1, in-1)
		l1[d] = s - float64(a)
		l0[d] = 1 - l1[d]
	}
	return
}

// resizeBilinear resizes every plane of x to oh×ow.
func resizeBilinear(x *tensor.Tensor, oh, ow int) *tensor.Tensor {
	h, w := x.Dim(2), x.Dim(3)
	y0, y1, ly0, ly1 := bilinearTaps(h, oh)
	x0, x1, lx0, lx1 := bilinearTaps(w, ow)
	return planes(x, oh, ow, func(dst, src []float32) {
		for oy := range oh {
			r0, r1 := src[y0[oy]*w:], src[y1[oy]*w:]
			for ox := range ow {
				a, b := x0[ox], x1[ox]
				top := lx0[ox]*float64(r0[a]) + lx1[ox]*float64(r0[b])
				bot := lx0[ox]*float64(r1[a]) + lx1[ox]*float64(r1[b])
				dst[oy*ow+ox] = float32(ly0[oy]*top + ly1[oy]*bot)
			}
		}
	})
}

// maxPool3x3 is F.max_pool2d(x, 3, stride, padding=pad) in floor mode; the
// padding never wins (it acts as −∞).
func maxPool3x3(x *tensor.Tensor, stride, pad int) *tensor.Tensor {
	h, w := x.Dim(2), x.Dim(3)
	oh, ow := (h+2*pad-3)/stride+1, (w+2*pad-3)/stride+1
	return planes(x, oh, ow, func(dst, src []float32) {
		for oy := range oh {
			for ox := range ow {
				m := float32(math.Inf(-1))
				for ky := range 3 {
					iy := oy*stride - pad + ky
					if iy < 0 || iy >= h {
						continue
					}
					for kx := range 3 {
						ix := ox*stride - pad + kx
						if ix >= 0 && ix < w {
							m = max(m, src[iy*w+ix])
						}
					}
				}
				dst[oy*ow+ox] = m
			}
		}
	})
}

// avgPool3x3Exclusive is F.avg_pool2d(x, 3, stride=1, padding=1,
// count_include_pad=False): each output divides by its in-bounds taps (4 at
// a corner, 6 on an edge, 9 inside).
func avgPool3x3Exclusive(x *tensor.Tensor) *tensor.Tensor {
	h, w := x.Dim(2), x.Dim(3)
	return planes(x, h, w, func(dst, src []float32) {
		for oy := range h {
			for ox := range w {
				var s float32
				taps := 0
				for iy := max(oy-1, 0); iy <= min(oy+1, h-1); iy++ {
					for ix := max(ox-1, 0); ix <= min(ox+1, w-1); ix++ {
						s += src[iy*w+ix]
						taps++
					}
				}
				dst[oy*w+ox] = s / float32(taps)
			}
		}
	})
}
