// The fp32 FMA ceiling of one core with AVX2 (256-bit) FMAs: twelve
// independent chains, so the loop is bound by FMA throughput, not latency.
// The shared fma_peak.c uses AVX-512, which this project's VM does not
// expose. Build: gcc -O2 -mavx2 -mfma -o fma_peak_avx2 fma_peak_avx2.c
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

int main(void) {
	__m256 a = _mm256_set1_ps(1.0000001f), b = _mm256_set1_ps(0.9999999f);
	__m256 c[12];
	for (int i = 0; i < 12; i++) c[i] = _mm256_set1_ps((float)i);
	long iters = 400000000L;
	struct timespec s, e;
	clock_gettime(CLOCK_MONOTONIC, &s);
	for (long k = 0; k < iters; k++) {
#define F(i) c[i] = _mm256_fmadd_ps(c[i], a, b);
		F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7) F(8) F(9) F(10) F(11)
	}
	clock_gettime(CLOCK_MONOTONIC, &e);
	double t = (e.tv_sec - s.tv_sec) + (e.tv_nsec - s.tv_nsec) * 1e-9;
	float sum = 0;
	for (int i = 0; i < 12; i++) {
		float v[8];
		_mm256_storeu_ps(v, c[i]);
		sum += v[0];
	}
	printf("AVX2 FMA ceiling, 1 core: %.1f GFLOP/s (checksum %g)\n", iters * 12.0 * 8 * 2 / t / 1e9, sum);
	return 0;
}
