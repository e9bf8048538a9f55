package kernels

import "github.com/godiffuse/godiffuse/tensor"

// ---------------------------------------------------------------------------
// Conv3D by vol2col + GEMM, the 3-D twin of conv.go.
//
// For one volume, vol2col lays the receptive fields out as a
// (C·KD·KH·KW, OD·OH·OW) matrix `col`:
//
//	col[((c·KD + kz)·KH + ky)·KW + kx][(oz·OH + oy)·OW + ox]
//	    = x[c][oz·SD + kz - PD][oy·SH + ky - PH][ox·SW + kx - PW]   (0 outside)
//
// so that, with w viewed as (F, C·KD·KH·KW),
//
//	forward:          y_n  = w · col_n + b
//	backward input:   dcol = wᵀ · dy_n,  dx_n = col2vol(dcol)   (col2vol adds overlapping taps)
//	backward weight:  dw   = Σ_n dy_n · col_nᵀ,   db = Σ_n Σ_voxels dy_n
//
// The column matrix is 27 times the volume for a 3×3×3 kernel, so it is
// built a few output planes (oz) at a time: colPlanes keeps it near 16 MB.
// This is the reference (GODIFFUSE_CPU=generic) and the path for strides
// other than 1.
//
// Stride 1 at the packed levels takes "shifted rows" as the 2-D convolution
// does (see conv.go): pad the volume once into xp (C × Dp × Hp × Wp) and
// number the outputs j = oz·Hp·Wp + oy·Wp + ox as if the output were padded
// too; then row (c, kz, ky, kx) of the column matrix is xp read from offset
//
//	c·Dp·Hp·Wp + kz·Hp·Wp + ky·Wp + kx
//
// and the GEMM takes B straight from xp: nothing 27 times the volume is ever
// written. The price is the outputs computed in the padding and dropped
// (12 % at 32³ with padding 1). The input gradient is the convolution of dy
// with the weights flipped and C, F swapped (as flippedConv in 2-D); the
// weight gradient reads the rows of col from xp the same way.
// ---------------------------------------------------------------------------

// colPlanes is how many output planes one vol2col block holds.
func colPlanes(p tensor.Conv3DParams) int {
	per := p.C * p.KD * p.KH * p.KW * p.OH * p.OW
	return max(1, min(p.OD, (1<<22)/max(per, 1)))
}

// vol2col fills col (C·KD·KH·KW × (z1-z0)·OH·OW) from one volume x
// (C × D × H × W), for output planes z0 ≤ oz < z1.
func vol2col(col, x []float32, p tensor.Conv3DParams, z0, z1 int) {
	volTaps(col, x, p, z0, z1, false)
}

// col2vol adds col, laid out as vol2col writes it, into one volume dx.
func col2vol(dx, col []float32, p tensor.Conv3DParams, z0, z1 int) {
	volTaps(col, dx, p, z0, z1, true)
}

// volTaps walks every (row, column) of the column matrix with the voxel it
// names: it copies the voxel into col, or, when add, adds col into the voxel.
func volTaps(col, x []float32, p tensor.Conv3DParams, z0, z1 int, add bool) {
	ohw := p.OH * p.OW
	cols := (z1 - z0) * ohw
	r := 0
	for c := range p.C {
		xc := x[c*p.D*p.H*p.W:][:p.D*p.H*p.W]
		for kz := range p.KD {
			for ky := range p.KH {
				for kx := range p.KW {
					row := col[r*cols:][:cols]
					r++
					for oz := z0; oz < z1; oz++ {
						plane := row[(oz-z0)*ohw:][:ohw]
						iz := oz*p.StrideD + kz - p.PadD
						for oy := range p.OH {
							dst := plane[oy*p.OW:][:p.OW]
							iy := oy*p.StrideH + ky - p.PadH
							if iz < 0 || iz >= p.D || iy < 0 || iy >= p.H {
								if !add {
									clear(dst)
								}
								continue
							}
							src := xc[(iz*p.H+iy)*p.W:][:p.W]
							for ox := range dst {
								ix := ox*p.StrideW + kx - p.PadW
								switch {
								case ix < 0 || ix >= p.W:
									if !add {
										dst[ox] = 0
									}
								case add:
									src[ix] += dst[ox]
								default:
									dst[ox] = src[ix]
								}
							}
						}
					}
				}
			}
		}
	}
}

// volShift is the padded geometry and row offsets of a stride-1 convolution.
type volShift struct {
	dp, hp, wp int
	n          int   // output positions j: (OD-1)·Hp·Wp + (OH-1)·Wp + OW
	off        []int // per row of the column matrix
}

func newVolShift(p tensor.Conv3DParams) volShift {
	s := volShift{dp: p.D + 2*p.PadD, hp: p.H + 2*p.PadH, wp: p.W + 2*p.PadW}
	s.n = (p.OD-1)*s.hp*s.wp + (p.OH-1)*s.wp + p.OW
	s.off = make([]int, 0, p.C*p.KD*p.KH*p.KW)
	for c := range p.C {
		for kz := range p.KD {
			for ky := range p.KH {
				for kx := range p.KW {
					s.off = append(s.off, ((c*s.dp+kz)*s.hp+ky)*s.wp+kx)
				}
			}
		}
	}
	return s
}

func (s volShift) padLen(c int) int { return c * s.dp * s.hp * s.wp }

// pad writes volume x (C × D × H × W) into xp (C × Dp × Hp × Wp) with zero borders.
func (s volShift) pad(xp, x []float32, p tensor.Conv3DParams) {
	clear(xp[:s.padLen(p.C)])
	for c := range p.C {
		for z := range p.D {
			for y := range p.H {
				copy(xp[((c*s.dp+z+p.PadD)*s.hp+y+p.PadH)*s.wp+p.PadW:][:p.W], x[((c*p.D+z)*p.H+y)*p.W:][:p.W])
			}
		}
	}
}

// rows visits every output row (f, oz, oy): its place in y and in the
// shifted-rows output (F × n).
func (s volShift) rows(p tensor.Conv3DParams, fn func(f, yAt, jAt int)) {
	for f := range p.F {
		for oz := range p.OD {
			for oy := range p.OH {
				fn(f, ((f*p.OD+oz)*p.OH+oy)*p.OW, f*s.n+oz*s.hp*s.wp+oy*s.wp)
			}
		}
	}
}

// Conv3D computes y = conv(x, w) + b (see tensor.Conv3DParams).
func (d *Device) Conv3D(y, x, w, b tensor.Buffer, p tensor.Conv3DParams) {
	ws, release := d.floats(w)
	defer release()
	ys, xs, bs := f32(y), f32(x), f32(b)
	k, ohw, odhw, vol := p.C*p.KD*p.KH*p.KW, p.OH*p.OW, p.OD*p.OH*p.OW, p.D*p.H*p.W
	path := d.PlanConv3D(p).Forward
	if path == ConvWinograd {
		d.conv3DWinograd(ys, xs, w, ws, bs, p, false)
		return
	}
	wA := d.newGemmA(false, p.F, k, ws, k) // packed once for all volumes
	if path == ConvShifted {
		s := newVolShift(p)
		padLen := s.padLen(p.C)
		d.forImages(p.N, padLen+p.F*s.n, func(n int, scratch []float32, threads int) {
			xp, out := scratch[:padLen], scratch[padLen:]
			s.pad(xp, xs[n*p.C*vol:][:p.C*vol], p)
			d.sgemmA(threads, wA, s.n, operandB{b: xp, off: s.off}, 0, out, s.n)
			yn := ys[n*p.F*odhw:][:p.F*odhw]
			s.rows(p, func(f, yAt, jAt int) {
				var bias float32
				if bs != nil {
					bias = bs[f]
				}
				dst, src := yn[yAt:][:p.OW], out[jAt:][:p.OW]
				for i, v := range src {
					dst[i] = v + bias
				}
			})
		})
		return
	}
	planes := colPlanes(p)
	d.forImages(p.N, k*planes*ohw, func(n int, col []float32, threads int) {
		yn := ys[n*p.F*odhw:][:p.F*odhw]
		xn := xs[n*p.C*vol:][:p.C*vol]
		for z0 := 0; z0 < p.OD; z0 += planes {
			z1 := min(z0+planes, p.OD)
			cols := (z1 - z0) * ohw
			vol2col(col, xn, p, z0, z1)
			d.sgemmA(threads, wA, cols, operandB{b: col, ld: cols}, 0, yn[z0*ohw:], odhw)
		}
		if bs != nil {
			for f := range p.F {
				row := yn[f*odhw:][:odhw]
				for i := range row {
					row[i] += bs[f]
				}
			}
		}
	})
}

// flippedConv3D returns the stride-1 convolution q with q(dy) = the input
// gradient of p: dy padded by K-1-P, the kernel turned around in all three
// axes, C and F swapped (see flippedConv). It needs stride 1 and P ≤ K-1.
func flippedConv3D(p tensor.Conv3DParams) (tensor.Conv3DParams, bool) {
	q := tensor.Conv3DParams{N: p.N, C: p.F, D: p.OD, H: p.OH, W: p.OW, F: p.C, KD: p.KD, KH: p.KH, KW: p.KW,
		StrideD: 1, StrideH: 1, StrideW: 1, PadD: p.KD - 1 - p.PadD, PadH: p.KH - 1 - p.PadH, PadW: p.KW - 1 - p.PadW,
		OD: p.D, OH: p.H, OW: p.W}
	ok := p.StrideD == 1 && p.StrideH == 1 && p.StrideW == 1 && q.PadD >= 0 && q.PadH >= 0 && q.PadW >= 0
	return q, ok
}

// Conv3DBackwardInput computes dx = col2vol(wᵀ·dy) for every volume, or at
// stride 1 on the shifted-rows path the convolution of dy with the flipped
// weights.
func (d *Device) Conv3DBackwardInput(dx, dy, w tensor.Buffer, p tensor.Conv3DParams) {
	ws, release := d.floats(w)
	defer release()
	dxs, dys := f32(dx), f32(dy)
	k, ohw, odhw, vol := p.C*p.KD*p.KH*p.KW, p.OH*p.OW, p.OD*p.OH*p.OW, p.D*p.H*p.W
	switch d.PlanConv3D(p).BackwardInput {
	case ConvWinograd:
		d.conv3DWinograd(dxs, dys, w, ws, nil, p, true)
		return
	case ConvFlippedShifted:
		q, _ := flippedConv3D(p)
		taps := p.KD * p.KH * p.KW
		fk := p.F * taps
		wf := make([]float32, p.C*fk)
		for f := range p.F {
			for c := range p.C {
				src := ws[(f*p.C+c)*taps:][:taps]
				dst := wf[c*fk+f*taps:][:taps]
				for i, v := range src {
					dst[taps-1-i] = v // (kz, ky, kx) → (KD-1-kz, KH-1-ky, KW-1-kx)
				}
			}
		}
		tmp := &Buffer{dev: d, dt: tensor.F32, F: wf}
		d.Conv3D(dx, dy, tmp, nil, q)
		return
	}
	wT := d.newGemmA(true, k, p.F, ws, k) // wᵀ, packed once for all volumes
	planes := colPlanes(p)
	d.forImages(p.N, k*planes*ohw, func(n int, col []float32, threads int) {
		dxn := dxs[n*p.C*vol:][:p.C*vol]
		dyn := dys[n*p.F*odhw:][:p.F*odhw]
		clear(dxn)
		for z0 := 0; z0 < p.OD; z0 += planes {
			z1 := min(z0+planes, p.OD)
			cols := (z1 - z0) * ohw
			d.sgemmA(threads, wT, cols, operandB{b: dyn[z0*ohw:], ld: odhw}, 0, col, cols)
			col2vol(dxn, col, p, z0, z1)
		}
	})
}

// Conv3DBackwardWeight computes dw = Σ_n dy_n·col_nᵀ and db = Σ dy over
// volumes and voxels.
func (d *Device) Conv3DBackwardWeight(dw, db, x, dy tensor.Buffer, p tensor.Conv3DParams) {
	dws, dbs, xs, dys := f32(dw), f32(db), f32(x), f32(dy)
	k, ohw, odhw, vol := p.C*p.KD*p.KH*p.KW, p.OH*p.OW, p.OD*p.OH*p.OW, p.D*p.H*p.W
	if dws != nil {
		switch d.PlanConv3D(p).BackwardWeight {
		case ConvWinograd:
			d.conv3DWinogradBackwardWeight(dws, xs, dys, p)
		case ConvShifted:
			d.conv3DShiftedBackwardWeight(dws, xs, dys, p)
		default:
			planes := colPlanes(p)
			d.sumOverImages(dws, p.F*k, k*planes*ohw, p.N, odhw, func(n int, acc, col []float32, threads int, beta float32) {
				xn := xs[n*p.C*vol:][:p.C*vol]
				dyn := dys[n*p.F*odhw:][:p.F*odhw]
				for z0 := 0; z0 < p.OD; z0 += planes {
					z1 := min(z0+planes, p.OD)
					cols := (z1 - z0) * ohw
					vol2col(col, xn, p, z0, z1)
					d.sgemm(threads, gemm{M: p.F, N: k, K: cols, Alpha: 1, A: dyn[z0*ohw:], LdA: odhw, B: operandB{b: col, ld: cols, trans: true}, Beta: beta, C: acc, LdC: k})
					beta = 1
				}
			})
		}
	}
	if dbs != nil {
		d.parallelFor(p.F, 1+(1<<16)/max(1, p.N*odhw), func(lo, hi int) {
			for f := lo; f < hi; f++ {
				var s float64
				for n := range p.N {
					s += sum64(dys[(n*p.F+f)*odhw : (n*p.F+f+1)*odhw])
				}
				dbs[f] = float32(s)
			}
		})
	}
}

// conv3DShiftedBackwardWeight computes dw = Σ_n dy_n·col_nᵀ with col_n read
// from the padded volume and dy_n spread to the shifted-rows layout (zeros
// at the dropped positions); as dwᵀ = col_n·dy_nᵀ where the level has the
// unpacked-A kernels (see convShiftedBackwardWeight).
func (d *Device) conv3DShiftedBackwardWeight(dws, xs, dys []float32, p tensor.Conv3DParams) {
	s := newVolShift(p)
	k, odhw, vol, padLen := p.C*p.KD*p.KH*p.KW, p.OD*p.OH*p.OW, p.D*p.H*p.W, s.padLen(p.C)
	mk, _ := d.microKernel()
	rowsA := mk.rowsAAdd != nil
	dst := dws
	if rowsA {
		dst = make([]float32, k*p.F) // dwᵀ
	}
	d.sumOverImages(dst, p.F*k, padLen+p.F*s.n, p.N, odhw, func(n int, acc, scratch []float32, threads int, beta float32) {
		xp, dyp := scratch[:padLen], scratch[padLen:]
		s.pad(xp, xs[n*p.C*vol:][:p.C*vol], p)
		clear(dyp)
		dyn := dys[n*p.F*odhw:][:p.F*odhw]
		s.rows(p, func(_, yAt, jAt int) { copy(dyp[jAt:][:p.OW], dyn[yAt:][:p.OW]) })
		if rowsA {
			sgemmRowsAThreads(mk, threads, k, p.F, s.n, xp, s.off, operandB{b: dyp, ld: s.n, trans: true}, beta, acc, p.F)
			return
		}
		d.sgemm(threads, gemm{M: p.F, N: k, K: s.n, Alpha: 1, A: dyp, LdA: s.n, B: operandB{b: xp, trans: true, off: s.off}, Beta: beta, C: acc, LdC: k})
	})
	if rowsA {
		for i := range k {
			for f := range p.F {
				dws[f*k+i] = dst[i*p.F+f]
			}
		}
	}
}
