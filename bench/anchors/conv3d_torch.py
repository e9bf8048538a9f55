"""PyTorch's conv3d on BenchmarkConv3d's shapes (bench/conv3d_test.go), same
threads as the Go run: forward, input gradient and weight gradient timed
apart, median of five after a warm-up, in ms per pass and GFLOP/s.

    python3 bench/anchors/conv3d_torch.py [threads]
"""
import sys
import time

import torch
import torch.nn.functional as F

threads = int(sys.argv[1]) if len(sys.argv) > 1 else torch.get_num_threads()
torch.set_num_threads(threads)
shapes = [("res64_32", 1, 64, 64, 32, 1), ("res64_32_batch4", 4, 64, 64, 32, 1), ("down64_32", 1, 64, 64, 32, 2)]
print(f"torch {torch.__version__}, {threads} threads")
for name, n, c, f, dhw, s in shapes:
    x = torch.randn(n, c, dhw, dhw, dhw)
    w = torch.randn(f, c, 3, 3, 3)
    b = torch.randn(f)
    y = F.conv3d(x, w, b, stride=s, padding=1)
    g = torch.randn_like(y)
    o = y.shape[-1]
    flops = 2.0 * n * f * o ** 3 * c * 27
    passes = {
        "forward": lambda: F.conv3d(x, w, b, stride=s, padding=1),
        "backward_input": lambda: torch.nn.grad.conv3d_input(x.shape, w, g, stride=s, padding=1),
        "backward_weight": lambda: torch.nn.grad.conv3d_weight(x, w.shape, g, stride=s, padding=1),
    }
    for pas, fn in passes.items():
        fn()
        ts = []
        for _ in range(5):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        t = sorted(ts)[2]
        print(f"shape={name}/pass={pas}: {t * 1e3:.1f} ms/pass {flops / t / 1e9:.1f} GFLOP/s")
