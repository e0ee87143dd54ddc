#!/usr/bin/env python3
"""Probe A of issue 16: does the demo's base show the PI paper's attention-score explosion past its trained context?

An independent re-implementation of the Llama forward (HF modeling_llama's math, written here in plain PyTorch; it
shares no code with the C# library) reads a base folder written by `LongContext.Demo pretrain` (config.json,
model.safetensors), runs held-out KJV windows (Acts..Revelation, tokenized by sentencepiece with the demo's
tokenizer.model) and reports, per layer, the pre-softmax attention logits q.k/sqrt(d) by distance band
[0, L), [L, 2L), [2L, 4L), with the positions as trained (extrapolation) and divided by 4 (PI), and the softmax mass
that queries past L put on keys at distance >= L.

A sanity check comes first: perplexity on L-token windows every 256 tokens (LongLoRA's protocol, as the demo scores
it) must be within 3 % of the demo's value for the base (32.73 for the shipped one), else nothing else is printed.

Usage (PyTorch 1.13 from Debian's python3-torch, python3-sentencepiece):
  /usr/bin/python3 scripts/attention-logits.py [--base samples/LongContext.Demo/data/base]
      [--kjv samples/LongContext.Demo/data/kjv.txt] [--windows 16] [--expected-ppl 32.73] [--out FILE.md]
"""
import argparse
import csv
import json
import math
import os
import re
import struct
import sys

import torch
import sentencepiece as spm

DTYPES = {"BF16": torch.bfloat16, "F32": torch.float32, "F16": torch.float16}


def load_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        begin, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=DTYPES[e["dtype"]]).reshape(e["shape"])
        out[name] = t.to(torch.float32)
    return out


def held_out_chapters(kjv_path, first_book="Acts"):
    verse = re.compile(r"^(\d?[A-Za-z]+)(\d+):(\d+) (.*)$")
    chapters, verses, key, held = [], [], None, False
    with open(kjv_path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            m = verse.match(line)
            if not m:
                raise SystemExit(f"{kjv_path}: not a verse line: {line[:60]!r}")
            k = m.group(1) + m.group(2)
            if k != key:
                if verses and held:
                    chapters.append(" ".join(verses))
                verses = []
                key = k
                if m.group(1) == first_book:
                    held = True
            verses.append(m.group(4).strip())
    if verses and held:
        chapters.append(" ".join(verses))
    return chapters


def from_results(folder, adapter, length):
    """(expected ppl, eval tokens) of a demo run: the method's row at the length in results.csv, the header of results.md."""
    method = os.path.basename(os.path.dirname(os.path.normpath(adapter))) if adapter else "none"
    with open(os.path.join(folder, "results.csv"), newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["method"] == method and int(r["context_length"]) == length]
    if len(rows) != 1:
        raise SystemExit(f"{folder}/results.csv has no row for method {method} at {length} tokens")
    header = open(os.path.join(folder, "results.md"), encoding="utf-8").readline()
    m = re.search(r"(\d+) eval tokens", header)
    if not m:
        raise SystemExit(f"{folder}/results.md: its first line names no 'N eval tokens'")
    return float(rows[0]["perplexity"]), int(m.group(1))


class Llama:
    def __init__(self, folder):
        self.cfg = json.load(open(f"{folder}/config.json"))
        self.w = load_safetensors(f"{folder}/model.safetensors")
        c = self.cfg
        self.layers = c["num_hidden_layers"]
        self.heads = c["num_attention_heads"]
        self.kv = c.get("num_key_value_heads", self.heads)
        self.hd = c.get("head_dim") or c["hidden_size"] // self.heads
        self.eps = c["rms_norm_eps"]
        rope = c.get("rope_parameters") or {"rope_type": "default", "rope_theta": c.get("rope_theta", 10000.0)}
        if rope.get("rope_type", "default") != "default":
            raise SystemExit(f"this probe reads the unscaled base; rope_type is {rope['rope_type']}")
        self.theta = float(rope["rope_theta"])
        self.context = c["max_position_embeddings"]
        self.device = torch.device("cpu")

    def to(self, device):
        """Moves the weights (after any adapter is merged) to a device."""
        self.device = torch.device(device)
        self.w = {k: v.to(self.device) for k, v in self.w.items()}

    def merge_adapter(self, folder):
        """Adds a peft LoRA adapter's deltas (alpha / r) B A to the base weights; returns the adapter's PI factor."""
        conf = json.load(open(f"{folder}/adapter_config.json"))
        if conf.get("use_rslora") or conf.get("use_dora") or conf.get("modules_to_save"):
            raise SystemExit(f"{folder}: only plain LoRA adapters (no rsLoRA, DoRA, modules_to_save) are read here")
        scale = conf["lora_alpha"] / conf["r"]
        tensors = load_safetensors(f"{folder}/adapter_model.safetensors")
        merged = 0
        for name, a in tensors.items():
            if not name.endswith(".lora_A.weight"):
                continue
            b = tensors[name.replace(".lora_A.", ".lora_B.")]
            target = name.removeprefix("base_model.model.").replace(".lora_A.weight", ".weight")
            self.w[target] = self.w[target] + scale * (b @ a)
            merged += 1
        if merged == 0:
            raise SystemExit(f"{folder}: no lora_A weights")
        rope = json.load(open(f"{folder}/config.json")).get("rope_parameters") or {}
        return float(rope.get("factor", 1.0)) if rope.get("rope_type") == "linear" else 1.0

    def norm(self, x, weight):
        x64 = x.to(torch.float32)
        return weight * (x64 * torch.rsqrt(x64.pow(2).mean(-1, keepdim=True) + self.eps))

    def rope(self, positions):
        inv = 1.0 / (self.theta ** (torch.arange(0, self.hd, 2, dtype=torch.float64) / self.hd))
        angles = positions.to(torch.float64)[:, None] * inv[None, :]
        emb = torch.cat([angles, angles], dim=-1)
        return emb.cos().to(torch.float32).to(self.device), emb.sin().to(torch.float32).to(self.device)

    @staticmethod
    def rotate(x, cos, sin):
        half = x.shape[-1] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rotated * sin

    def forward(self, ids, position_scale=1.0, record=None):
        """ids (N,) int64 -> logits (N, vocab); record(layer, logits (H, N, N) pre-softmax with -inf above the diagonal)."""
        n = ids.shape[0]
        x = self.w["model.embed_tokens.weight"][ids]
        cos, sin = self.rope(torch.arange(n, dtype=torch.float64) / position_scale)
        causal = torch.ones(n, n, dtype=torch.bool, device=self.device).tril()
        for i in range(self.layers):
            p = f"model.layers.{i}."
            h = self.norm(x, self.w[p + "input_layernorm.weight"])
            q = (h @ self.w[p + "self_attn.q_proj.weight"].T).view(n, self.heads, self.hd).transpose(0, 1)
            k = (h @ self.w[p + "self_attn.k_proj.weight"].T).view(n, self.kv, self.hd).transpose(0, 1)
            v = (h @ self.w[p + "self_attn.v_proj.weight"].T).view(n, self.kv, self.hd).transpose(0, 1)
            q, k = self.rotate(q, cos, sin), self.rotate(k, cos, sin)
            rep = self.heads // self.kv
            k, v = k.repeat_interleave(rep, 0), v.repeat_interleave(rep, 0)
            scores = (q @ k.transpose(1, 2)) / math.sqrt(self.hd)
            scores = scores.masked_fill(~causal, float("-inf"))
            if record is not None:
                record(i, scores)
            attn = torch.softmax(scores, dim=-1) @ v
            x = x + attn.transpose(0, 1).reshape(n, self.heads * self.hd) @ self.w[p + "self_attn.o_proj.weight"].T
            h = self.norm(x, self.w[p + "post_attention_layernorm.weight"])
            gate = h @ self.w[p + "mlp.gate_proj.weight"].T
            up = h @ self.w[p + "mlp.up_proj.weight"].T
            x = x + (torch.nn.functional.silu(gate) * up) @ self.w[p + "mlp.down_proj.weight"].T
        x = self.norm(x, self.w["model.norm.weight"])
        return x @ self.w.get("lm_head.weight", self.w["model.embed_tokens.weight"]).T


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="samples/LongContext.Demo/data/base")
    ap.add_argument("--kjv", default="samples/LongContext.Demo/data/kjv.txt")
    ap.add_argument("--windows", type=int, default=16, help="4L windows for the logit statistics")
    ap.add_argument("--tokens", type=int, default=32768, help="held-out tokens for the perplexity check")
    ap.add_argument("--step", type=int, default=256, help="distance between perplexity windows (LongLoRA: 256)")
    ap.add_argument("--expected-ppl", type=float, default=32.73, help="the demo's ppl@L for this base (ppl@4L with --adapter)")
    ap.add_argument("--results", help="a demo output folder: --expected-ppl and --tokens are read from its results.csv "
                    "(method none at L, or the adapter's method, runs/<method>/adapter, at 4L) and results.md")
    ap.add_argument("--adapter", help="a peft LoRA adapter folder of the demo (runs/<method>/adapter): merged into the base, "
                    "its PI factor used; the sanity check is then ppl@4L against --expected-ppl")
    ap.add_argument("--device", help="cpu or cuda (default: cuda when available); float32 either way")
    ap.add_argument("--out", help="also write the report to this Markdown file")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_grad_enabled(False)

    model = Llama(args.base)
    L = model.context
    factor = model.merge_adapter(args.adapter) if args.adapter else None
    check_length = 4 * L if args.adapter else L
    if args.results:
        args.expected_ppl, args.tokens = from_results(args.results, args.adapter, check_length)
    sp = spm.SentencePieceProcessor(model_file=f"{args.base}/tokenizer.model")
    stream = [sp.bos_id()]
    for chapter in held_out_chapters(args.kjv):
        stream += sp.encode(chapter) + [sp.eos_id()]
        if len(stream) >= max(args.tokens, args.windows * 4 * L):
            break
    model.to(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    ids = torch.tensor(stream, dtype=torch.int64, device=model.device)
    lines = []

    def say(s=""):
        print(s)
        lines.append(s)

    # Sanity: LongLoRA's protocol as the library's PerplexityWindows.LongLora: starts 0, step, ... below tokens - length,
    # the last start dropped; each window scored whole (length - 1 predictions).
    nll, count, m = 0.0, 0, check_length
    starts = list(range(0, args.tokens - m, args.step))[:-1]
    if not starts:
        raise SystemExit(f"{args.tokens} tokens give no window of {m} every {args.step}")
    for start in starts:
        w = ids[start:start + m]
        logits = model.forward(w, position_scale=factor or 1.0)
        nll += torch.nn.functional.cross_entropy(logits[:-1], w[1:], reduction="sum").item()
        count += m - 1
    ppl = math.exp(nll / count)
    say(f"# Probe A: attention logits by distance, base `{args.base}` (L = {L})"
        + (f", adapter `{args.adapter}` merged (PI factor {factor:g})" if args.adapter else ""))
    say()
    say(f"Sanity: ppl@{m} on {len(starts)} windows of the first {args.tokens} held-out tokens = {ppl:.4f} "
        f"(the demo's: {args.expected_ppl}; {100 * (ppl / args.expected_ppl - 1):+.1f} %)")
    if abs(ppl / args.expected_ppl - 1) > 0.03:
        say("The re-implementation does not reproduce the demo's perplexity within 3 %: nothing below is valid.")
        sys.exit(1)

    n = 4 * L
    bands = [(0, L), (L, 2 * L), (2 * L, 4 * L)]
    dist = (torch.arange(n)[:, None] - torch.arange(n)[None, :]).to(model.device)
    stats = {}
    scales = ((factor, "no PI" if factor == 1 else f"PI x{factor:g}"),) if args.adapter else ((1.0, "no PI"), (4.0, "PI x4"))
    for scale, label in scales:
        for wi in range(args.windows):
            w = ids[wi * n:(wi + 1) * n]

            def record(layer, scores, label=label):
                s = stats.setdefault((label, layer), {"max": [0.0] * 3, "mass": [0.0, 0]})
                for b, (lo, hi) in enumerate(bands):
                    band = (dist >= lo) & (dist < hi)
                    s["max"][b] = max(s["max"][b], scores[:, band].abs().max().item())
                probs = torch.softmax(scores, dim=-1)[:, L:, :]        # queries at positions >= L
                far = (dist[L:, :] >= L).to(probs.dtype)
                s["mass"][0] += (probs * far).sum().item()
                s["mass"][1] += probs.shape[0] * probs.shape[1]

            model.forward(w, position_scale=scale, record=record)
    say()
    say(f"{args.windows} held-out windows of {n} tokens; largest |q.k|/sqrt(d) over all heads by distance band; softmax mass "
        f"of queries at positions >= {L} on keys at distance >= {L}.")
    say()
    # The share uniform attention would give (keys at distance >= L among the p + 1 a query at p sees), for reading the mass.
    uniform = sum((p - L + 1) / (p + 1) for p in range(L, n)) / (n - L)
    say(f"| positions | layer | max [0, {L}) | max [{L}, {2 * L}) | max [{2 * L}, {4 * L}) | ratio past L / within L | mass at distance >= {L} (uniform: {100 * uniform:.1f} %) |")
    say("|---|---:|---:|---:|---:|---:|---:|")
    verdict_a, verdict_b = True, True
    for (label, layer), s in sorted(stats.items()):
        within, past = s["max"][0], max(s["max"][1], s["max"][2])
        mass = s["mass"][0] / s["mass"][1]
        say(f"| {label} | {layer} | {s['max'][0]:.2f} | {s['max'][1]:.2f} | {s['max'][2]:.2f} | {past / within:.3f} | {100 * mass:.2f} % |")
        if label == "no PI":
            verdict_a &= past <= 1.5 * within
            verdict_b &= mass < 0.10
    say()
    if args.adapter:      # the hypotheses were registered for the base; a merged adapter's table is exploratory
        if args.out:
            open(args.out, "w", encoding="utf-8").write("\n".join(lines) + "\n")
        return
    say(f"HA (no explosion: past-L max <= 1.5x within-L max in every layer, no PI): {'held' if verdict_a else 'NOT held'}")
    say(f"HB (little context past L: mass at distance >= L below 10 % in every layer, no PI): {'held' if verdict_b else 'NOT held'}")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
