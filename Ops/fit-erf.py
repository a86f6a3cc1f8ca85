#!/usr/bin/env python3
"""Fits the erf approximation HumeEmbed's GELU uses (Sources/HumeEmbed/Bert.swift, erfLanes).

erf(x) ~= x * P(x^2) / Q(x^2) on [0, 4], P of degree 5 and Q of degree 5 in x^2 with Q(0) = 1, by
iteratively reweighted linear least squares (Sanathanan-Koerner linearisation, Lawson weights
pushing towards minimax). Beyond |x| = 4, erf is +-1 in Float. Prints the coefficients (highest
power first, as the Horner loops use them) and the error of a Float32 evaluation against math.erf.

    python3 -m pip install numpy && python3 Ops/fit-erf.py
"""
from math import erf

import numpy as np

xs = np.linspace(0, 4, 20001)
ys = np.array([erf(x) for x in xs])
t = xs ** 2
NP, NQ = 6, 5  # number of P coefficients, Q coefficients after the constant 1

weights = np.ones_like(xs)
q_previous = np.ones_like(xs)
for _ in range(60):
    a = np.hstack([np.stack([xs * t ** i for i in range(NP)], 1),
                   np.stack([-ys * t ** j for j in range(1, NQ + 1)], 1)])
    scale = np.sqrt(weights) / q_previous
    c, *_ = np.linalg.lstsq(a * scale[:, None], ys * scale, rcond=None)
    p, q = c[:NP], np.concatenate([[1.0], c[NP:]])
    P = sum(p[i] * t ** i for i in range(NP))
    Q = sum(q[j] * t ** j for j in range(NQ + 1))
    error = np.abs(xs * P / Q - ys)
    q_previous = Q
    weights = weights * (error + 1e-30)
    weights /= weights.sum()

x32 = np.linspace(-4.5, 4.5, 100001).astype(np.float32)
xc = np.clip(x32, np.float32(-4), np.float32(4))
t32 = xc * xc
P32, Q32 = np.float32(0), np.float32(0)
for c in p[::-1]:
    P32 = P32 * t32 + np.float32(c)
for c in q[::-1]:
    Q32 = Q32 * t32 + np.float32(c)
r = np.clip(xc * P32 / Q32, np.float32(-1), np.float32(1))
float_error = max(abs(float(v) - erf(float(x))) for v, x in zip(r, x32))
print("P (highest first):", [float(v) for v in p[::-1]])
print("Q (highest first):", [float(v) for v in q[::-1]])
print(f"max |error|: {error.max():.3g} in float64, {float_error:.3g} evaluated in float32")
