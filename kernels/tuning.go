package kernels

// Tuning holds the thresholds that choose among the CPU paths for a shape;
// plan.go turns them into decisions. A device owns its Tuning: NewCPU and
// NewCPULevel take DefaultTuning, and tests build devices with their own
// (NewCPUTuned) to force each path, instead of changing package state.
type Tuning struct {
	// The GEMM (gemm_packed.go). With A prepacked, B is read unpacked (the
	// rows kernels) instead of packed when M ≤ UnpackedMaxM or
	// N ≥ UnpackedMinN: packing costs about as much per value of B as the
	// micro-kernels spend on a few dozen flops with it, and B's values are
	// used M times, so packing pays only at large M; with few columns the
	// unpacked reads lose more to cache misses than packing costs (A/B over
	// the U-Net convolutions, bench/RESULTS.md 2026-11-27b). Without
	// prepacking, B is read unpacked when M ≤ PlainUnpackedMaxM, and A (not
	// transposed, α = 1) when N ≤ RowsAMaxN: then A's values are used only
	// ⌈N/16⌉ times, too few to pay for packing them (attention's P·V and
	// dS·K, whose A is the Lq×Lk score matrix and N the head size).
	UnpackedMaxM, UnpackedMinN, PlainUnpackedMaxM, RowsAMaxN int

	// ShiftMinWidth is the narrowest output that takes the shifted-rows
	// convolution (a 3×3 convolution then wastes at most 2 of 6 columns,
	// which costs less than im2col since B is read unpacked). 4 since
	// 2026-12-04: on Zen 5 with frozen weights, a batch-1 4×4 convolution
	// of 256 or 512 channels (ddpm-cifar10-32's middle) ran 1.7–1.8× faster
	// shifted than by im2col, its gradients as fast or faster; the Xeon of
	// 2026-12-03 had measured 4 wide slower (weights packed at every call).
	ShiftMinWidth int
	// FlipMinC is the fewest input channels whose input gradient takes the
	// flipped convolution: with fewer (an RGB conv_in), its M = C leaves
	// most rows of the 6-row micro-kernel empty.
	FlipMinC int
	// WinogradMinC is the fewest input and output channels that take the
	// Winograd path: its GEMMs have depth C and F rows, and below that the
	// transforms cost more than the multiplications they save.
	WinogradMinC int
	// WinogradMinTiles and WinogradMinTileChannels are the fewest 2×2 output
	// tiles over the batch, and tiles × input channels, of a 2-D convolution
	// that takes the Winograd path. Batch-1 forward passes, one thread per
	// path interleaved (bench/RESULTS.md 2026-12-03 afternoon): shifted rows
	// or im2col were 2× faster at 48 channels of 7×7 (16 tiles), 1.3× at two
	// such images (32 tiles, 1,536), 1.2× at 320 channels of 8×8 (16 tiles),
	// 2× at 256 of 4×4; Winograd stayed ahead at four 7×7 images (64 tiles,
	// 3,072), eight 4×4 at 256 channels (32 tiles, 8,192) and 28×28. On
	// Zen 5 with frozen weights (2026-12-04) Winograd was 1.15–1.2× faster
	// at 256 and 512 channels of 8×8 (16 tiles), so 16 tiles now take it
	// when tiles × channels reach 2,400 (48 channels of 7×7 still do not).
	// WinogradEnoughTiles tiles take it whatever the channels: one 14×14
	// image (49 tiles) at 48 channels ran 1.35× faster by Winograd than by
	// shifted rows, at 32 in and 48 out 1.27× (Zen 5, frozen weights,
	// 2026-12-04 afternoon), where tiles × channels fell short of 2,400.
	WinogradMinTiles, WinogradMinTileChannels, WinogradEnoughTiles int
	// WinogradTiles is the number of 2×2 output tiles a Winograd chunk aims
	// at, at least: with few channels more, so that a chunk's V and M stay
	// near 1 MiB and the GEMMs are not too short (measured: 64 tiles were
	// slower than 128 at 128 and 256 channels, and slower than 256 at 32).
	WinogradTiles int
	// Winograd4MinSide is the smallest output height and width at which a
	// 2-D Winograd convolution (forward, input or weight gradient) takes F(4×4, 3×3)
	// instead of F(2×2, 3×3) (winograd4.go), unless rounding the output up
	// to whole 4×4 tiles computes 15 % more than 2×2 tiles do (14×14:
	// 16×16). Past Winograd4WeightKiB of transformed weights (36·C·F
	// floats) it takes F(4×4, 3×3) only for at least Winograd4MinTiles 4×4
	// tiles in all. Measured on Zen 5 (2026-12-04), frozen weights: F(4×4,
	// 3×3) 1.35–1.6× as fast at 28×28 and 32 channels, 1.4× at 32×32 and 128
	// (batch 8), 1.2× at 16×16 and 256 (batch 8, 128 tiles); slower at 14×14
	// and at 8×8 and below (whole blocks of 8 tiles in the transforms, most
	// past the row), and at batch 1 with 128 channels at 32×32 (2.4 MB of
	// weights streamed for 64 tiles: ddpm-cifar10-32 1.3× slower). Weights
	// transformed at every call (training), since the transforms are
	// assembly (asm.WinoWeight4AVX2, 2026-12-06 late): 1.3× as fast at 16×16
	// and 256 channels, 1.5× at 32×32 and 128, batch 8 (it had been 0.5× and
	// 1.03× with the transforms in Go). The weight gradient by F(3×3, 4×4)
	// (2026-12-06 evening, both cores, batch 8): 1.5× as fast at 32×32 and
	// 128 channels, 1.0–1.8× at 16×16 and 256 (AVX-512 / AVX2), 1.5× at
	// 28×28 and 32 (batch 64). 0: every 2-D Winograd convolution by
	// F(4×4, 3×3) (the tests).
	Winograd4MinSide, Winograd4WeightKiB, Winograd4MinTiles int
	// WinogradAsm picks the assembly transforms where the level has them
	// (false: the plain-Go ones).
	WinogradAsm bool
	// Winograd3DMinPlane is the smallest output plane (OH·OW) of a 3×3×3
	// convolution that takes the plane Winograd. With the depth taps summed
	// in the Winograd domain (each plane transformed once) it beats shifted
	// rows from 4×4 planes up: 8³ at 64 channels 42 against 95 ms for the
	// three passes, 4³ at 128 channels 28 against 66 (vol2col there, the
	// planes being too narrow to shift), 8³ at 32 channels 37 against 40
	// (BenchmarkConv3DPaths, bench/RESULTS.md 2026-12-03 morning).
	Winograd3DMinPlane int

	// MinParallelMACs is the fewest multiply-adds of a forward convolution
	// of one image (Winograd and the direct kernel: of the batch; for
	// Winograd those of its GEMMs) that runs on more than one thread
	// (Device.oneThread): below, the sections' waits and one core reading what the
	// other wrote (10–15 ns a cache line here) cost more than the halved
	// products save. 128 Ki since 2026-12-06 (evening): tiny-mnist's
	// batch-1 forward then splits its 7×7 convolutions of 48 channels (1 M)
	// and its 1×1 convolutions at 14×14 (0.45 M), and ran 1.06× as fast as
	// at 1.5 M over 100 rounds alternated with four other settings on Zen 5
	// (15 of 15 rounds faster in a spell where the second core gave 1.6×,
	// 1.04× where it gave little: bench/RESULTS.md). It had been 3 M while
	// every GEMM call took a shared lock, then 1.5 M (2026-12-04 evening).
	// 0: every convolution that can split does (the tests of the split paths).
	MinParallelMACs int

	// DirectMaxPixels is the most output pixels of an image (and half the
	// most of the batch) of a 3×3 "same" convolution that takes the direct
	// kernel at AVX-512 (direct.go), where one exists for its width; 0:
	// never.
	DirectMaxPixels int

	// TapsMaxF is the most output channels of a stride-1 convolution that
	// takes convTaps (output pixels in the lanes) above the generic level;
	// 0: never.
	TapsMaxF int

	// WeightCacheMiB bounds the memory of the prepared (Winograd-transformed)
	// weights a device keeps across calls while their contents do not
	// change, as in sampling (weightcache.go); 0 turns the cache off.
	WeightCacheMiB int

	// AttentionTileBytes bounds the score block of the tiled attention:
	// blocks of query rows whose Lk scores fit in a quarter of L2 stay there
	// between the two GEMMs and the softmax.
	AttentionTileBytes int

	// RecycleMinLen is the shortest float32 buffer that tensor.Release hands
	// back for reuse (recycle.go); shorter ones are left to the collector.
	// 1,024 rather than 16 Ki: a batch-1 forward's activations (14×14×48 =
	// 9,408 values in tiny-mnist) then come back warm in the cache instead of
	// as fresh, cleared memory (tiny-mnist batch 1 +6 % in three A/B rounds
	// on Zen 5, other cases unchanged; bench/RESULTS.md, 2026-12-04). 32
	// since 2026-12-06: a resnet's time-embedding projection (32–96 values)
	// too, so that a batch-1 forward leaves less to the collector, whose
	// fresh pages cost a fault each (bench/RESULTS.md, 2026-12-06).
	// PoisonRecycled fills every reused array with
	// NaN before it is handed out (tests: an op that read an uncleared
	// output, or a stale view, shows).
	RecycleMinLen  int
	PoisonRecycled bool
}

// DefaultTuning is the tuning the benchmarks chose.
func DefaultTuning() Tuning {
	return Tuning{UnpackedMaxM: 128, UnpackedMinN: 256, PlainUnpackedMaxM: 64, RowsAMaxN: 64,
		ShiftMinWidth: 4, FlipMinC: 16, WinogradMinC: 16, WinogradMinTiles: 16, WinogradMinTileChannels: 2400, WinogradEnoughTiles: 48,
		WinogradTiles: 128, WinogradAsm: true, Winograd4MinSide: 16, Winograd4WeightKiB: 512, Winograd4MinTiles: 128,
		Winograd3DMinPlane: 16, MinParallelMACs: 1 << 17, DirectMaxPixels: 49, TapsMaxF: 4, WeightCacheMiB: 1024, AttentionTileBytes: 256 << 10, RecycleMinLen: 32}
}

// Tuning returns the device's thresholds.
func (d *Device) Tuning() Tuning { return d.tune }
