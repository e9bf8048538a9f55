"""Reference values for package metrics, computed independently with numpy/scipy (Debian python3-numpy,
python3-scipy):  python3 make_reference.py > reference.json

FD follows pytorch-fid's calculate_frechet_distance (scipy.linalg.sqrtm of the non-symmetric product, with its
eps offset when the result is not finite); for the singular and ill-conditioned cases the trace term is also
computed a second way, as the sum of square roots of the (real, non-negative) eigenvalues of sigma1 @ sigma2
from numpy.linalg.eigvals, and both are stored. IS, KID (one subset = all samples, so no randomness) and
precision/recall use brute-force numpy written from the papers' definitions.
For the ill-conditioned and singular cases the exact FD is computed once more with mpmath at 50 digits
("fd_exact"): there both float64 routes above are off in the 8th-9th digit.
"""
import json

import mpmath as mp
import numpy as np
from scipy import linalg

rng = np.random.default_rng(20261126)


def fd_pytorch_fid(mu1, s1, mu2, s2, eps=1e-6):
    diff = mu1 - mu2
    covmean, _ = linalg.sqrtm(s1.dot(s2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * eps
        covmean = linalg.sqrtm((s1 + offset).dot(s2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def tr_sqrt_eig(s1, s2):
    ev = np.linalg.eigvals(s1 @ s2)
    return float(np.sum(np.sqrt(np.clip(ev.real, 0, None))))


def stats(x):
    return x.mean(0), np.cov(x, rowvar=False)


def gaussian(n, d, scale_spread):
    a = rng.standard_normal((d, d)) / np.sqrt(d)
    q, _ = np.linalg.qr(a)
    ev = np.logspace(-scale_spread, 0, d)
    c = (q * ev) @ q.T
    return rng.multivariate_normal(rng.standard_normal(d) * 0.3, c, size=n, method="eigh")


def fd_mpmath(x, y):
    """The FD of the two samples' Gaussian fits at 50 significant digits."""
    mp.mp.dps = 50

    def stats50(rows):
        n, d = rows.shape
        mu = [mp.fsum(mp.mpf(v) for v in rows[:, j]) / n for j in range(d)]
        s = mp.matrix(d, d)
        for a in range(d):
            for b in range(d):
                s[a, b] = mp.fsum((mp.mpf(rows[i, a]) - mu[a]) * (mp.mpf(rows[i, b]) - mu[b]) for i in range(n)) / (n - 1)
        return mu, s

    def sqrt_sym(s):
        ev, q = mp.eigsy(s)
        d = s.rows
        r = mp.matrix(d, d)
        for k in range(d):
            root = mp.sqrt(ev[k]) if ev[k] > 0 else 0
            for a in range(d):
                for b in range(d):
                    r[a, b] += q[a, k] * root * q[b, k]
        return r

    (m1, s1), (m2, s2) = stats50(x), stats50(y)
    tr = mp.fsum(mp.svd_r(sqrt_sym(s2) * sqrt_sym(s1), compute_uv=False))
    d = len(m1)
    fd = (mp.fsum((m1[i] - m2[i]) ** 2 for i in range(d)) + mp.fsum(s1[i, i] for i in range(d))
          + mp.fsum(s2[i, i] for i in range(d)) - 2 * tr)
    return float(fd)


out = {}
# 1. well-conditioned FD
x, y = gaussian(300, 16, 1), gaussian(250, 16, 1)
(m1, s1), (m2, s2) = stats(x), stats(y)
out["fd"] = {"x": x.tolist(), "y": y.tolist(), "fd": fd_pytorch_fid(m1, s1, m2, s2),
             "fd_eig": float((m1 - m2) @ (m1 - m2) + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt_eig(s1, s2)),
             "mu_x": m1.tolist(), "sigma_x": s1.tolist()}
# 2. ill-conditioned: eigenvalues spanning 1e-10 .. 1
x, y = gaussian(400, 12, 10), gaussian(400, 12, 10)
(m1, s1), (m2, s2) = stats(x), stats(y)
out["fd_illcond"] = {"x": x.tolist(), "y": y.tolist(), "fd": fd_pytorch_fid(m1, s1, m2, s2),
                     "fd_eig": float((m1 - m2) @ (m1 - m2) + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt_eig(s1, s2)),
                     "cond_x": float(np.linalg.cond(s1)), "fd_exact": fd_mpmath(x, y)}
# 3. singular: 10 samples in 24 dimensions -> rank 9 covariances
x, y = rng.standard_normal((10, 24)), rng.standard_normal((10, 24)) * 1.5 + 0.2
(m1, s1), (m2, s2) = stats(x), stats(y)
out["fd_singular"] = {"x": x.tolist(), "y": y.tolist(), "fd": fd_pytorch_fid(m1, s1, m2, s2),
                      "fd_eig": float((m1 - m2) @ (m1 - m2) + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt_eig(s1, s2)),
                      "rank_x": int(np.linalg.matrix_rank(s1)), "fd_exact": fd_mpmath(x, y)}
# 4. inception score
logits = rng.standard_normal((103, 10)) * 2
p = np.exp(logits - logits.max(1, keepdims=True))
p /= p.sum(1, keepdims=True)
splits = 5
part = 103 // splits
scores = []
for k in range(splits):
    q = p[k * part:(k + 1) * part]
    py = q.mean(0, keepdims=True)
    scores.append(np.exp(np.mean(np.sum(q * (np.log(q) - np.log(py)), 1))))
out["is"] = {"probs": p.tolist(), "splits": splits, "mean": float(np.mean(scores)), "std": float(np.std(scores))}
# 5. KID with one subset of everything = the unbiased MMD^2 of the full sets
x, y = rng.standard_normal((60, 8)), rng.standard_normal((50, 8)) * 1.2 + 0.1
d = x.shape[1]
k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
m, n = len(x), len(y)
mmd = ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
       - 2 * kxy.sum() / (m * n))
out["kid"] = {"x": x.tolist(), "y": y.tolist(), "mmd2": float(mmd)}
# 6. precision / recall, k = 3
x, y = rng.standard_normal((80, 4)), rng.standard_normal((70, 4)) * 0.7 + 0.5
kk = 3
dist = lambda a, b: np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))  # noqa: E731
rx = np.sort(dist(x, x), 1)[:, kk]
ry = np.sort(dist(y, y), 1)[:, kk]
dxy = dist(x, y)
precision = float(np.mean((dxy <= rx[:, None]).any(0)))
recall = float(np.mean((dxy <= ry[None, :]).any(1)))
out["pr"] = {"real": x.tolist(), "fake": y.tolist(), "k": kk, "precision": precision, "recall": recall}
print(json.dumps(out))
