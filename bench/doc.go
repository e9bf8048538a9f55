// Package bench holds the project's cross-package benchmarks and the record
// of what they measured (RESULTS.md).
//
//	go test ./bench -run XXX -bench 'UNet/config=tiny-mnist' -benchtime 3x
//
// BenchmarkUNet mirrors shared/anchors/torch_bench.py: a train step is one
// forward pass, the eps-MSE loss against a random target, the backward pass
// and an Adam step (lr 2e-4); a forward step is one no-grad forward pass.
// Each reports img/s and, for the train step, the process's peak RSS in MiB
// (VmHWM, meaningful when the benchmark runs on its own: -bench with one name).
package bench
