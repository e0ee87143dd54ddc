#!/usr/bin/env python3
"""PyTorch eager on the benchmark suites' workloads, in the same run as the TorchSharp benchmarks (issue 17's
TorchSharp-vs-PyTorch rows). The recipes repeat benchmarks/LongContext.Benchmarks/Baselines operation for operation
(SDPA full causal with HF repeat_kv, LongLoRA's S2 roll recipe, S2 without wrap on views, HF rotate_half RoPE, peft-style
LoRA, shift/mask NF4 dequantization, eager QLoRA), with the suites' shapes and seed. Timing as ANCHORS.md: CUDA events
after warm-up, the median of the iterations (wall clock with perf_counter on CPU).

  torch_bench.py [--device cuda|cpu] [--dtype bfloat16|float32] [--quick] [--suites attention,rope,lora,quant]
                 [--budget SECONDS] [--out FILE.jsonl]
One JSON object a line: suite, method, params, median_ms, iterations, device, dtype, torch, quick, note.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

SEED = 20240917
NF4 = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
       -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
       0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0]


def sdpa(q, k, v):
    """Causal SDPA; on PyTorch < 2.0 (no SDPA) the explicit masked softmax (noted in the rows)."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    n = q.shape[-2]
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    mask = torch.ones(n, n, dtype=torch.bool, device=q.device).tril()
    return scores.masked_fill(~mask, float("-inf")).softmax(-1) @ v


def repeat_kv(x, rep):
    if rep == 1:
        return x
    b, kv, n, d = x.shape
    return x[:, :, None].expand(b, kv, rep, n, d).reshape(b, kv * rep, n, d)


def full_causal(q, k, v):
    rep = q.shape[1] // k.shape[1]
    return sdpa(q, repeat_kv(k, rep), repeat_kv(v, rep))


def s2_roll(q, k, v, divisor=4):
    rep = q.shape[1] // k.shape[1]
    k, v = repeat_kv(k, rep), repeat_kv(v, rep)
    b, h, n, d = q.shape
    g = n // divisor
    groups = n // g

    def shift(x):
        return torch.cat([x[:, : h // 2], x[:, h // 2:].roll(-g // 2, 2)], 1).view(b, h * groups, g, d)

    o = sdpa(shift(q), shift(k), shift(v)).view(b, h, n, d)
    return torch.cat([o[:, : h // 2], o[:, h // 2:].roll(g // 2, 2)], 1)


def s2_nowrap(q, k, v, divisor=4):
    rep = q.shape[1] // k.shape[1]
    k, v = repeat_kv(k, rep), repeat_kv(v, rep)
    b, h, n, d = q.shape
    h1, h2 = h // 2, h - h // 2
    g = n // divisor
    groups, half = n // g, g // 2

    def plain(x):
        return x[:, :h1].reshape(b, h1 * groups, g, d)

    o1 = sdpa(plain(q), plain(k), plain(v)).view(b, h1, n, d)

    def middle(x):
        m = x[:, h1:, half:n - half].reshape(b, h2, groups - 1, g, d)
        return m.squeeze(0).transpose(0, 1) if b == 1 else m.transpose(1, 2).reshape(b * (groups - 1), h2, g, d)

    om = sdpa(middle(q), middle(k), middle(v))
    om = (om.transpose(0, 1).unsqueeze(0) if b == 1 else om.view(b, groups - 1, h2, g, d).transpose(1, 2)).reshape(b, h2, n - g, d)

    def edges(x):
        return torch.cat([x[:, h1:, :half], x[:, h1:, n - half:]], 1)

    oe = sdpa(edges(q), edges(k), edges(v))
    o2 = torch.cat([oe[:, :h2], om, oe[:, h2:]], 2)
    return torch.cat([o1, o2], 1)


def rope_caches(head_dim, max_pos, theta, factor, device):
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim))
    t = torch.arange(max_pos, dtype=torch.float32, device=device) / factor
    emb = torch.cat([torch.outer(t, inv_freq)] * 2, -1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], -1)


def rope_apply(q, k, positions, cos_cache, sin_cache):
    cos = cos_cache[positions].to(q.dtype).unsqueeze(1)
    sin = sin_cache[positions].to(q.dtype).unsqueeze(1)
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


def nf4_state(rows, cols, block, double_quant, device):
    n = rows * cols
    blocks = n // block
    state = dict(packed=torch.randint(0, 256, (n // 2,), dtype=torch.int32, device=device).to(torch.uint8),
                 code=torch.tensor(NF4, dtype=torch.float32, device=device), rows=rows, cols=cols, block=block)
    if double_quant:
        state.update(codes=torch.randint(0, 256, (blocks,), dtype=torch.int32, device=device).to(torch.uint8),
                     map=torch.linspace(-1, 1, 256, dtype=torch.float32, device=device),
                     scales=torch.rand(blocks // 256, dtype=torch.float32, device=device) + 0.5, offset=0.75)
    else:
        state.update(absmax=torch.rand(blocks, dtype=torch.float32, device=device) + 0.5)
    return state


def nf4_dequantize(s, dtype):
    if "absmax" in s:
        absmax = s["absmax"]
    else:
        absmax = (s["map"][s["codes"].long()].view(-1, 256) * s["scales"][:, None] + s["offset"]).view(-1)
    hi, lo = s["packed"] >> 4, s["packed"] & 15
    idx = torch.stack([hi, lo], -1).view(-1).long()
    return (s["code"][idx].view(-1, s["block"]) * absmax[:, None]).view(s["rows"], s["cols"]).to(dtype)


def allowed_mask(heads, n, g, kind):
    """(H, N, N) bool of the fixture README's definitions: causal; S2 groups of g, the second half of the heads rolled
    by -g/2 ("roll") or in segments [0, g/2), [g/2 + ig, ...), [n - g/2, n) ("nowrap")."""
    i = torch.arange(n)[:, None]
    j = torch.arange(n)[None, :]
    causal = j <= i
    plain = causal & (i // g == j // g)
    if kind == "roll":
        ri, rj = (i - g // 2) % n, (j - g // 2) % n
        shifted = (ri // g == rj // g) & (rj <= ri)
    else:
        def seg(p):
            return torch.where(p < g // 2, torch.zeros_like(p), (p - g // 2) // g + 1)
        shifted = causal & (seg(i) == seg(j))
    return torch.stack([plain] * (heads // 2) + [shifted] * (heads - heads // 2))


def self_check():
    """The S2 recipes against explicit masked attention in float64 (both policies, MHA and GQA): the Python rows must time
    the same computation as the TorchSharp rows. Raises on a mismatch."""
    gen = torch.Generator().manual_seed(1)
    for heads, kv in ((4, 4), (4, 2)):
        n, d = 64, 8
        q = torch.randn(1, heads, n, d, dtype=torch.float64, generator=gen)
        k = torch.randn(1, kv, n, d, dtype=torch.float64, generator=gen)
        v = torch.randn(1, kv, n, d, dtype=torch.float64, generator=gen)
        kk, vv = repeat_kv(k, heads // kv), repeat_kv(v, heads // kv)
        for kind, fn in (("roll", s2_roll), ("nowrap", s2_nowrap)):
            mask = allowed_mask(heads, n, n // 4, kind)
            scores = (q @ kk.transpose(-1, -2)) / math.sqrt(d)
            ref = scores.masked_fill(~mask[None], float("-inf")).softmax(-1) @ vv
            err = (fn(q, k, v) - ref).abs().max().item()
            if err > 1e-10:
                raise AssertionError(f"S2 {kind} recipe (H={heads}, KV={kv}) differs from the masked reference by {err:.2e}")


class Timer:
    """Median milliseconds of fn() after warm-up: CUDA events on CUDA, perf_counter on CPU."""

    def __init__(self, device, min_seconds, max_iterations, warmup):
        self.device, self.min_seconds, self.max_iterations, self.warmup = device, min_seconds, max_iterations, warmup

    def measure(self, fn):
        for _ in range(self.warmup):
            fn()
        self.sync()
        times, started = [], time.perf_counter()
        while len(times) < self.max_iterations and (len(times) < 3 or time.perf_counter() - started < self.min_seconds):
            if self.device == "cuda":
                begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                begin.record()
                fn()
                end.record()
                end.synchronize()
                times.append(begin.elapsed_time(end))
            else:
                t0 = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times), len(times)

    def sync(self):
        if self.device == "cuda":
            torch.cuda.synchronize()


def fwd_bwd(forward, grad_out, inputs):
    def run():
        out = forward()
        torch.autograd.grad([out], inputs, [grad_out])
    return run


def forward_only(forward):
    def run():
        with torch.no_grad():
            forward()
    return run


def workloads(suite, device, dtype, quick):
    """(method, params, callable) of a suite; shapes as the TorchSharp suites on CUDA (tiny with --quick)."""
    def randn(*shape, grad=False):
        t = torch.randn(*shape, dtype=torch.float32, device=device).to(dtype)
        return t.requires_grad_() if grad else t

    torch.manual_seed(SEED)
    if suite == "attention":
        heads, d = (4, 32) if quick else (32, 128)
        for n in ([256] if quick else [4096, 16384, 32768]):
            q, k, v = randn(1, heads, n, d, grad=True), randn(1, heads, n, d, grad=True), randn(1, heads, n, d, grad=True)
            g = randn(1, heads, n, d)
            params = dict(N=n, KvHeads=heads, Pass="ForwardBackward")
            for method, fn in (("FullSdpa", full_causal), ("S2RollRecipe", s2_roll), ("S2NoWrapRecipe", s2_nowrap)):
                yield method, params, fwd_bwd(lambda fn=fn: fn(q, k, v), g, [q, k, v])
    elif suite == "rope":
        heads, d, n = (4, 16, 32) if quick else (32, 128, 16384)
        q, k = randn(1, heads, n, d), randn(1, heads, n, d)
        positions = torch.arange(n, device=device)[None]
        cos, sin = rope_caches(d, n, 10000.0, 4.0, device)
        yield "RotateHalfEager", dict(N=n), forward_only(lambda: rope_apply(q, k, positions, cos, sin))
    elif suite == "lora":
        t, f, r = (16, 128, 16) if quick else (8192, 4096, 16)
        base = torch.nn.Linear(f, f, bias=False, device=device, dtype=dtype).requires_grad_(False)
        a = torch.nn.Linear(f, r, bias=False, device=device, dtype=dtype)
        b = torch.nn.Linear(r, f, bias=False, device=device, dtype=dtype)
        for pass_ in ("Forward", "ForwardBackward"):
            x, g = randn(t, f, grad=pass_ == "ForwardBackward"), randn(t, f)
            for method, fn, inputs in (("FrozenLinear", lambda: base(x), [x]),
                                       ("PeftStyle", lambda: base(x) + b(a(x)) * (32 / r), [x, a.weight, b.weight])):
                yield method, dict(Pass=pass_), fwd_bwd(fn, g, inputs) if pass_ == "ForwardBackward" else forward_only(fn)
    elif suite == "quant":
        size = 128 if quick else 4096
        for dq in (False, True):
            state = nf4_state(size, size, 64, dq, device)
            yield "ShiftMaskEager", dict(DoubleQuant=dq), forward_only(lambda state=state: nf4_dequantize(state, dtype))
        t, f, r = (16, 128, 16) if quick else (8192, 4096, 16)
        dense = torch.nn.Linear(f, f, bias=False, device=device, dtype=dtype).requires_grad_(False)
        a = torch.nn.Linear(f, r, bias=False, device=device, dtype=dtype)
        b = torch.nn.Linear(r, f, bias=False, device=device, dtype=dtype)
        state = nf4_state(f, f, 64, True, device)
        for pass_ in ("Forward", "ForwardBackward"):
            x, g = randn(t, f, grad=pass_ == "ForwardBackward"), randn(t, f)
            for method, fn, inputs in (("DenseLinear", lambda: dense(x), [x]),
                                       ("QLoraEager", lambda: F.linear(x, nf4_dequantize(state, dtype)) + b(a(x)) * (32 / r), [x, a.weight, b.weight])):
                yield method, dict(Pass=pass_), fwd_bwd(fn, g, inputs) if pass_ == "ForwardBackward" else forward_only(fn)
    else:
        raise ValueError(f"unknown suite {suite!r}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default=None, choices=["bfloat16", "float32"])
    parser.add_argument("--quick", action="store_true", help="tiny shapes (CPU dry run)")
    parser.add_argument("--suites", default="attention,rope,lora,quant")
    parser.add_argument("--budget", type=float, default=120.0, help="seconds; stops starting new workloads after it")
    parser.add_argument("--out")
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype or ("bfloat16" if args.device == "cuda" else "float32"))
    note = "" if hasattr(F, "scaled_dot_product_attention") else "no SDPA in this PyTorch: explicit masked softmax"
    timer = Timer(args.device, min_seconds=0.05 if args.quick else 0.3, max_iterations=30, warmup=2 if args.quick else 5)
    self_check()
    print("ok   the S2 recipes match explicit masked attention in float64", flush=True)
    started = time.time()
    out = open(args.out, "a") if args.out else None
    for suite in args.suites.split(","):
        for method, params, fn in workloads(suite, args.device, dtype, args.quick):
            if time.time() - started > args.budget:
                print(f"budget of {args.budget:.0f} s spent; stopping before {suite}.{method}", flush=True)
                return 0
            median, n = timer.measure(fn)
            row = dict(suite=suite, method=method, params=params, median_ms=round(median, 4), iterations=n,
                       device=args.device, dtype=str(dtype).replace("torch.", ""), torch=torch.__version__, quick=args.quick,
                       note=note if suite == "attention" else "")
            print(json.dumps(row), flush=True)
            if out:
                out.write(json.dumps(row) + "\n")
                out.flush()
        if args.device == "cuda":
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
