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
// (C × D × H × W), for output planes z0 ≤ oz < z1, the channels split over
// threads goroutines.
func vol2col(threads int, col, x []float32, p tensor.Conv3DParams, z0, z1 int) {
	volTapsThreads(threads, col, x, p, z0, z1, false)
}

// col2vol adds col, laid out as vol2col writes it, into one volume dx.
func col2vol(threads int, dx, col []float32, p tensor.Conv3DParams, z0, z1 int) {
	volTapsThreads(threads, col, dx, p, z0, z1, true)
}

// volTapsThreads runs volTaps on channel ranges in parallel: channels touch
// disjoint rows of col and disjoint voxels of x.
func volTapsThreads(threads int, col, x []float32, p tensor.Conv3DParams, z0, z1 int, add bool) {
	inParts(threads, p.C, 1, func(c0, c1 int) { volTaps(col, x, p, z0, z1, add, c0, c1) })
}

// volTaps walks every (row, column) of the column matrix with the voxel it
// names: it copies the voxel into col, or, when add, adds col into the voxel.
// Per kernel column kx the outputs whose input column lies inside the
// volume are one range (oxRange), so the inner loops run without tests.
// It covers the channels c0 ≤ c < c1.
func volTaps(col, x []float32, p tensor.Conv3DParams, z0, z1 int, add bool, c0, c1 int) {
	ohw := p.OH * p.OW
	cols := (z1 - z0) * ohw
	plane := tensor.ConvParams{W: p.W, KW: p.KW, StrideW: p.StrideW, PadLeft: p.PadW, OW: p.OW}
	sw := p.StrideW
	r := c0 * p.KD * p.KH * p.KW
	for c := c0; c < c1; c++ {
		xc := x[c*p.D*p.H*p.W:][:p.D*p.H*p.W]
		for kz := range p.KD {
			for ky := range p.KH {
				for kx := range p.KW {
					row := col[r*cols:][:cols]
					r++
					lo, hi := oxRange(plane, kx)
					for oz := z0; oz < z1; oz++ {
						iz := oz*p.StrideD + kz - p.PadD
						for oy := range p.OH {
							dst := row[(oz-z0)*ohw+oy*p.OW:][:p.OW]
							iy := oy*p.StrideH + ky - p.PadH
							if iz < 0 || iz >= p.D || iy < 0 || iy >= p.H || lo >= hi {
								if !add {
									clear(dst)
								}
								continue
							}
							// Input column of output column lo, and the inputs read.
							ix0 := lo*sw + kx - p.PadW
							src := xc[(iz*p.H+iy)*p.W+ix0:][:(hi-lo-1)*sw+1]
							in := dst[lo:hi]
							switch {
							case add && sw == 1:
								for i, v := range in {
									src[i] += v
								}
							case add:
								for i, v := range in {
									src[i*sw] += v
								}
							default:
								clear(dst[:lo])
								clear(dst[hi:])
								if sw == 1 {
									copy(in, src)
								} else {
									for i := range in {
										in[i] = src[i*sw]
									}
								}
							}
						}
					}
				}
			}
		}
	}
}

// volShift is the geometry and row offsets of a convolution on the
// shifted-rows path. With stride s > 1 along an axis, the padded volume is
// stored as s phases along it (the even and the odd planes, rows, columns
// for s = 2), each ⌈Dp/s⌉ long: the voxel z of the padded volume is z mod s's
// phase at z div s. Tap kz of output oz reads padded voxel oz·s + kz, i.e.
// phase kz mod s at oz + kz div s: a stride-1 read within one phase, so
// that row (c, kz, ky, kx) of the column matrix is again the phase volume
// read from one offset, and the GEMM takes B straight from it. Outputs are
// numbered j = oz·Hq·Wq + oy·Wq + ox over the phase grid; those past OH or
// OW are computed and dropped. With stride 1 there is one phase and this is
// the plain padded volume.
type volShift struct {
	sd, sh, sw int   // strides: phases per axis
	dq, hq, wq int   // a phase's extent: ⌈Dp/sd⌉, ⌈Hp/sh⌉, ⌈Wp/sw⌉
	n          int   // output positions j: (OD-1)·Hq·Wq + (OH-1)·Wq + OW
	off        []int // per row of the column matrix
	offs       *[]int
}

// newVolShift plans p's phases; release hands its offsets back to the pool.
func newVolShift(p tensor.Conv3DParams) volShift {
	s := volShift{sd: p.StrideD, sh: p.StrideH, sw: p.StrideW}
	s.dq = (p.D + 2*p.PadD + s.sd - 1) / s.sd
	s.hq = (p.H + 2*p.PadH + s.sh - 1) / s.sh
	s.wq = (p.W + 2*p.PadW + s.sw - 1) / s.sw
	s.n = (p.OD-1)*s.hq*s.wq + (p.OH-1)*s.wq + p.OW
	s.offs = getOffsets(p.C * p.KD * p.KH * p.KW)
	s.off = (*s.offs)[:0]
	for c := range p.C {
		for kz := range p.KD {
			for ky := range p.KH {
				for kx := range p.KW {
					s.off = append(s.off, s.at(c, kz, ky, kx))
				}
			}
		}
	}
	return s
}

func (s volShift) release() { offsetPool.Put(s.offs) }

// at is where padded voxel (z, y, x) of channel c lies in the phase layout.
func (s volShift) at(c, z, y, x int) int {
	phase := ((c*s.sd+z%s.sd)*s.sh+y%s.sh)*s.sw + x%s.sw
	return ((phase*s.dq+z/s.sd)*s.hq+y/s.sh)*s.wq + x/s.sw
}

func (s volShift) padLen(c int) int { return c * s.sd * s.sh * s.sw * s.dq * s.hq * s.wq }

// pad writes volume x (C × D × H × W) into xp in the phase layout, with
// zero borders, the channels split over threads goroutines.
func (s volShift) pad(threads int, xp, x []float32, p tensor.Conv3DParams) {
	s.copyChannels(threads, xp, x, p, false)
}

// unpad copies the inside of the phase volume xp out to x (C × D × H × W).
func (s volShift) unpad(threads int, x, xp []float32, p tensor.Conv3DParams) {
	s.copyChannels(threads, xp, x, p, true)
}

// copyChannels copies between x and the phase volume xp (out: xp → x, else
// x → xp, every cell of xp written once, the borders with zeros), the
// channels split over threads.
func (s volShift) copyChannels(threads int, xp, x []float32, p tensor.Conv3DParams, out bool) {
	one := s.padChannels
	if out {
		one = s.unpadChannels
	}
	inParts(threads, p.C, 1, func(c0, c1 int) { one(xp, x, p, c0, c1) })
}

// padChannels writes the phase rows of channels c0 ≤ c < c1 of xp from x.
func (s volShift) padChannels(xp, x []float32, p tensor.Conv3DParams, c0, c1 int) {
	plane := s.dq * s.hq * s.wq
	for c := c0; c < c1; c++ {
		for ph := range s.sd * s.sh * s.sw {
			rz, ry, rx := ph/(s.sh*s.sw), ph/s.sw%s.sh, ph%s.sw
			// The columns ix of a phase row whose source column ix·sw + rx - PadW is inside.
			lo := max(0, (p.PadW-rx+s.sw-1)/s.sw)
			hi := min(s.wq, (p.W+p.PadW-rx+s.sw-1)/s.sw)
			base := xp[(c*s.sd*s.sh*s.sw+ph)*plane:][:plane]
			for iz := range s.dq {
				z := iz*s.sd + rz - p.PadD
				for iy := range s.hq {
					dst := base[(iz*s.hq+iy)*s.wq:][:s.wq]
					y := iy*s.sh + ry - p.PadH
					if z < 0 || z >= p.D || y < 0 || y >= p.H || lo >= hi {
						clear(dst)
						continue
					}
					src := x[((c*p.D+z)*p.H+y)*p.W:][:p.W]
					clear(dst[:lo])
					clear(dst[hi:])
					x0 := lo*s.sw + rx - p.PadW
					if s.sw == 1 {
						copy(dst[lo:hi], src[x0:])
						continue
					}
					in := src[x0:][:(hi-lo-1)*s.sw+1]
					for i := range dst[lo:hi] {
						dst[lo+i] = in[i*s.sw]
					}
				}
			}
		}
	}
}

// unpadChannels copies the inside of channels c0 ≤ c < c1 of xp out to x.
func (s volShift) unpadChannels(xp, x []float32, p tensor.Conv3DParams, c0, c1 int) {
	for c := c0; c < c1; c++ {
		for z := range p.D {
			for y := range p.H {
				row := x[((c*p.D+z)*p.H+y)*p.W:][:p.W]
				for x0 := range min(s.sw, p.W) { // the columns x0, x0 + sw, …: one phase
					ph := xp[s.at(c, z+p.PadD, y+p.PadH, x0+p.PadW):]
					if s.sw == 1 {
						copy(row, ph[:p.W])
						continue
					}
					for i, k := 0, x0; k < p.W; i, k = i+1, k+s.sw {
						row[k] = ph[i]
					}
				}
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
				fn(f, ((f*p.OD+oz)*p.OH+oy)*p.OW, f*s.n+oz*s.hq*s.wq+oy*s.wq)
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
	wA, releaseW := d.packedWeightsOf(w, ws, p.F, k) // packed once for all volumes, or kept from the last call
	defer releaseW()
	if path == ConvShifted {
		s := newVolShift(p)
		defer s.release()
		padLen := s.padLen(p.C)
		d.forImages(p.N, padLen+p.F*s.n, func(n int, scratch []float32, threads int) {
			xp, out := scratch[:padLen], scratch[padLen:]
			s.pad(threads, xp, xs[n*p.C*vol:][:p.C*vol], p)
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
			vol2col(threads, col, xn, p, z0, z1)
			d.sgemmA(threads, wA, cols, operandB{b: col, ld: cols}, 0, yn[z0*ohw:], odhw)
		}
		if bs != nil {
			simd := d.simd()
			for f := range p.F {
				row := yn[f*odhw:][:odhw]
				binaryRowScalar(simd, tensor.OpAdd, row, row, bs[f])
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
	case ConvShifted:
		d.conv3DShiftedBackwardInput(dxs, dys, ws, p)
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
			col2vol(threads, dxn, col, p, z0, z1)
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
					vol2col(threads, col, xn, p, z0, z1)
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

// conv3DShiftedBackwardInput computes dx on the shifted rows, the transpose
// of the forward's reads: dy spread to the shifted-rows layout (F × n, zeros
// at the dropped positions), dcol = wᵀ·dy for a block of channels at a time
// (their rows (c, kz, ky, kx)), each row of dcol added where the forward
// read it, at its offset into the phase volume, and the phase volume's
// inside copied out to dx. It serves strides the flipped convolution cannot.
func (d *Device) conv3DShiftedBackwardInput(dxs, dys, ws []float32, p tensor.Conv3DParams) {
	s := newVolShift(p)
	defer s.release()
	taps := p.KD * p.KH * p.KW
	k, odhw, vol, padLen := p.C*taps, p.OD*p.OH*p.OW, p.D*p.H*p.W, s.padLen(p.C)
	block := max(1, min(p.C, (1<<20)/(taps*s.n))) // channels per dcol block: ~4 MB
	simd := d.simd()
	d.forImages(p.N, padLen+p.F*s.n+block*taps*s.n, func(n int, scratch []float32, threads int) {
		xp, dyp, col := scratch[:padLen], scratch[padLen:][:p.F*s.n], scratch[padLen+p.F*s.n:]
		clear(dyp)
		dyn := dys[n*p.F*odhw:][:p.F*odhw]
		s.rows(p, func(_, yAt, jAt int) { copy(dyp[jAt:][:p.OW], dyn[yAt:][:p.OW]) })
		clear(xp)
		for c0 := 0; c0 < p.C; c0 += block {
			c1 := min(p.C, c0+block)
			rows := (c1 - c0) * taps
			d.sgemm(threads, gemm{M: rows, N: s.n, K: p.F, Alpha: 1, TransA: true, A: ws[c0*taps:], LdA: k,
				B: operandB{b: dyp, ld: s.n}, C: col, LdC: s.n})
			inParts(threads, c1-c0, 1, func(lo, hi int) { // channels add into disjoint phase volumes
				for r := lo * taps; r < hi*taps; r++ {
					dst := xp[s.off[c0*taps+r]:][:s.n]
					binaryRow(simd, tensor.OpAdd, dst, dst, col[r*s.n:][:s.n])
				}
			})
		}
		s.unpad(threads, dxs[n*p.C*vol:][:p.C*vol], xp, p)
	})
}

// conv3DShiftedBackwardWeight computes dw = Σ_n dy_n·col_nᵀ with col_n read
// from the padded volume and dy_n spread to the shifted-rows layout (zeros
// at the dropped positions); as dwᵀ = col_n·dy_nᵀ where the level has the
// unpacked-A kernels (see convShiftedBackwardWeight).
func (d *Device) conv3DShiftedBackwardWeight(dws, xs, dys []float32, p tensor.Conv3DParams) {
	s := newVolShift(p)
	defer s.release()
	k, odhw, vol, padLen := p.C*p.KD*p.KH*p.KW, p.OD*p.OH*p.OW, p.D*p.H*p.W, s.padLen(p.C)
	mk, _ := d.microKernel()
	rowsA := mk.rowsAAdd != nil
	dst := dws
	if rowsA {
		dst = make([]float32, k*p.F) // dwᵀ
	}
	d.sumOverImages(dst, p.F*k, padLen+p.F*s.n, p.N, odhw, func(n int, acc, scratch []float32, threads int, beta float32) {
		xp, dyp := scratch[:padLen], scratch[padLen:]
		s.pad(threads, xp, xs[n*p.C*vol:][:p.C*vol], p)
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
