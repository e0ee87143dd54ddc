#!/usr/bin/env python3
"""Builds the GPU check's markdown report (issue 17) from what scripts/gpu-check.sh left in its output folder:

  steps.tsv                 name, status, exit code, seconds, log file of every step
  parity.jsonl, interop.jsonl   check rows (LongContext.GpuCheck and scripts/gpu/interop.py)
  bench/<run>/results/*-report.csv   BenchmarkDotNet tables of the published benchmarks
  torch.jsonl               PyTorch eager on the same workloads (scripts/gpu/torch_bench.py)
  VERSION                   the bundle's commit and build date (copied from the bundle)

  report.py OUT_DIR [--command TEXT] [--output FILE]   (default FILE: OUT_DIR/gpu-report.md)

Targets and anchors are those of issue 17 and ../shared/ANCHORS.md (one H200, PyTorch 2.11 eager, bf16).
"""
import argparse
import csv
import datetime
import glob
import json
import os
import platform
import re
import shutil
import subprocess
import sys

PARAMS = ["N", "KvHeads", "Pass", "Checkpointing", "Base", "DoubleQuant"]
BASELINES = {"AttentionBenchmarks": "FullSdpa", "RopeBenchmarks": "RotateHalfEager", "LoraBenchmarks": "FrozenLinear",
             "Nf4DequantizeBenchmarks": "ShiftMaskEager", "QLoraLinearBenchmarks": "DenseLinear",
             "DecoderLayerBenchmarks": "Full", "Model7bBenchmarks": "Full"}
# TorchSharp benchmark class -> torch_bench.py suite (rows with the same method and parameters are the same workload)
TORCH_SUITES = {"AttentionBenchmarks": "attention", "RopeBenchmarks": "rope", "LoraBenchmarks": "lora",
                "Nf4DequantizeBenchmarks": "quant", "QLoraLinearBenchmarks": "quant"}
# ANCHORS.md, H200, PyTorch 2.11 eager bf16: attention fwd+bwd ms (B=1, H=32, D=128, causal) by N
ATTENTION_ANCHOR_MS = {4096: (1.147, 1.538, 2.286), 8192: (3.640, 3.328, 2.788), 16384: (13.509, 7.971, 6.519), 32768: (53.565, 21.634, 18.075)}
S2_TARGET = {32768: 3.2, 16384: 2.2, 4096: 0.9}
MODEL7B_ANCHOR = {("full", 16384): (2.244, 7303, 22.8), ("full", 32768): (5.570, 5883, 32.9),
                  ("s2", 16384): (1.973, 8305, 22.8), ("s2", 32768): (4.171, 7855, 32.9)}


def read_jsonl(path):
    rows = []
    if os.path.exists(path):
        for line in open(path):
            line = line.strip()
            if line.startswith("{"):
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    return rows


def parse_time_ms(text):
    """BenchmarkDotNet's '1,234.5 ms' / '12.3 μs' / '2.244 s' to milliseconds; None for NA or empty."""
    m = re.match(r"^\s*([0-9][0-9,]*\.?[0-9]*)\s*(ns|μs|us|ms|s)\s*$", text or "")
    if not m:
        return None
    value = float(m.group(1).replace(",", ""))
    return value * {"ns": 1e-6, "μs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]


def parse_number(text):
    try:
        return float((text or "").replace(",", ""))
    except ValueError:
        return None


def read_bench(out):
    """Every BenchmarkDotNet row: dict(run, cls, method, params, median_ms, mean_ms, tflops, gbs, toks, dev_mib)."""
    rows = []
    for path in sorted(glob.glob(os.path.join(out, "bench", "*", "**", "*-report.csv"), recursive=True)):
        run = os.path.relpath(path, os.path.join(out, "bench")).split(os.sep)[0]
        cls = os.path.basename(path).replace("-report.csv", "").split(".")[-1]
        with open(path, newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                params = {k: r[k] for k in PARAMS if k in r and r[k] != ""}
                rows.append(dict(run=run, cls=cls, method=r.get("Method", "?"), params=params,
                                 median_ms=parse_time_ms(r.get("Median")), mean_ms=parse_time_ms(r.get("Mean")),
                                 tflops=parse_number(r.get("TFLOP/s")), gbs=parse_number(r.get("GB/s")),
                                 toks=parse_number(r.get("tok/s")), dev_mib=parse_number(r.get("Dev MiB"))))
    return rows


def comparable(torch_rows):
    """PyTorch rows at the suites' CUDA shapes (--quick rows use tiny shapes, unlike any TorchSharp row)."""
    return [r for r in torch_rows if not r.get("quick") and r.get("device") == "cuda"]


def key(params):
    return tuple(sorted((k, str(v)) for k, v in params.items()))


def find(rows, cls, method, **params):
    for r in rows:
        if r["cls"] == cls and r["method"] == method and all(str(r["params"].get(k)) == str(v) for k, v in params.items()):
            return r
    return None


def fmt(x, digits=3, unit=""):
    if x is None:
        return "—"
    if unit:
        return fmt(x, digits) + unit
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}" if abs(x) < 1 else f"{x:.{digits}f}".rstrip("0").rstrip(".")


def machine(out):
    lines = []
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            q = subprocess.run([smi, "--query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit", "--format=csv,noheader"],
                               capture_output=True, text=True, timeout=20)
            lines.append(f"- GPU: {q.stdout.strip() or q.stderr.strip()}")
        except Exception as e:  # noqa: BLE001
            lines.append(f"- GPU: nvidia-smi failed ({e})")
    else:
        lines.append("- GPU: none (nvidia-smi not found)")
    try:
        import torch
        cuda = f"CUDA {torch.version.cuda}, device {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "no CUDA device"
        lines.append(f"- PyTorch {torch.__version__} ({cuda}); libtorch for TorchSharp: {os.environ.get('LIBTORCH_DIR', '?')}")
    except Exception as e:  # noqa: BLE001
        lines.append(f"- PyTorch: not importable ({e})")
    for name in ("transformers", "peft", "bitsandbytes", "safetensors"):
        try:
            mod = __import__(name)
            lines.append(f"- {name} {mod.__version__}")
        except Exception as e:  # noqa: BLE001
            lines.append(f"- {name}: not available ({type(e).__name__})")
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    lines.append(f"- host: {platform.node()}, {cpu}, {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}")
    version = os.path.join(out, "VERSION")
    if os.path.exists(version):
        lines.append(f"- bundle: {open(version).read().strip()}")
    return lines


def checks_section(title, rows, lines):
    lines += ["", f"## {title}", ""]
    if not rows:
        lines.append("No rows (the step did not run or wrote nothing; see the steps table).")
        return
    groups = {}
    for r in rows:
        groups.setdefault(r["group"], []).append(r)
    lines += ["| group | pass | fail | error | skip | worst error / tolerance |", "|---|---|---|---|---|---|"]
    for g, rs in groups.items():
        counts = {s: sum(1 for r in rs if r["status"] == s) for s in ("pass", "fail", "error", "skip")}
        ratios = [r["value"] / r["tolerance"] for r in rs if r.get("value") is not None and r.get("tolerance")]
        lines.append(f"| {g} | {counts['pass']} | {counts['fail']} | {counts['error']} | {counts['skip']} | "
                     f"{fmt(max(ratios)) if ratios else '—'} |")
    bad = [r for r in rows if r["status"] in ("fail", "error")]
    if bad:
        lines += ["", "Failures and errors:", "", "| group | check | device | dtype | value | tolerance | detail |", "|---|---|---|---|---|---|---|"]
        for r in bad:
            lines.append(f"| {r['group']} | {r['name']} | {r['device']} | {r['dtype']} | {fmt(r.get('value'))} | {fmt(r.get('tolerance'))} | {r['status']}: {r.get('detail', '')} |")
    skipped = [r for r in rows if r["status"] == "skip"]
    if skipped:
        lines += ["", "Skipped:", ""] + [f"- {r['group']} / {r['name']}: {r.get('detail', '')}" for r in skipped]
    lines += ["", "<details><summary>Every row</summary>", "", "| status | group | check | device | dtype | metric | value | tolerance | detail |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['status']} | {r['group']} | {r['name']} | {r['device']} | {r['dtype']} | {r.get('metric', '')} | "
                     f"{fmt(r.get('value'))} | {fmt(r.get('tolerance'))} | {r.get('detail', '')} |")
    lines += ["", "</details>"]


def bench_tables(bench, torch_rows, lines):
    lines += ["", "## Benchmark tables", ""]
    if not bench:
        lines.append("No BenchmarkDotNet results (the benchmark steps did not run or failed; see the steps table).")
        return
    lines.append("Ratios are medians against the class's baseline row with the same parameters, from one run. "
                 "'PyTorch ms' is scripts/gpu/torch_bench.py on the same workload (CUDA events, median); "
                 "'TS / PT' is TorchSharp's median over PyTorch's (target <= 1.03x). Throughputs are BenchmarkDotNet's (from the mean).")
    torch_index = {(r["suite"], r["method"], key(r["params"])): r for r in comparable(torch_rows)}
    order = []
    for r in bench:
        if (r["run"], r["cls"]) not in order:
            order.append((r["run"], r["cls"]))
    for run, cls in order:
        rows = [r for r in bench if r["run"] == run and r["cls"] == cls]
        params = [p for p in PARAMS if any(p in r["params"] for r in rows)]
        lines += ["", f"### {cls} ({run})", "",
                  "| method | " + " | ".join(params) + " | median ms | vs baseline | TFLOP/s | GB/s | tok/s | Dev MiB | PyTorch ms | TS / PT |",
                  "|---|" + "---|" * len(params) + "---|---|---|---|---|---|---|---|"]
        for r in rows:
            base = find(rows, cls, BASELINES.get(cls, ""), **r["params"])
            ratio = base["median_ms"] / r["median_ms"] if base and base["median_ms"] and r["median_ms"] else None
            vs = "baseline" if base is r else (f"{ratio:.2f}x faster" if ratio and ratio >= 1 else f"{1 / ratio:.2f}x slower" if ratio else "—")
            pt = torch_index.get((TORCH_SUITES.get(cls), r["method"], key(r["params"])))
            ts_pt = f"{r['median_ms'] / pt['median_ms']:.3f}x" if pt and r["median_ms"] else "—"
            lines.append(f"| {r['method']} | " + " | ".join(str(r['params'].get(p, '')) for p in params) +
                         f" | {fmt(r['median_ms'], 4)} | {vs} | {fmt(r['tflops'])} | {fmt(r['gbs'])} | {fmt(r['toks'])} | {fmt(r['dev_mib'])} | "
                         f"{fmt(pt['median_ms'], 4) if pt else '—'} | {ts_pt} |")
    if torch_rows:
        lines += ["", "<details><summary>PyTorch eager rows</summary>", "", "| suite | method | params | median ms | iterations | note |", "|---|---|---|---|---|---|"]
        for r in torch_rows:
            lines.append(f"| {r['suite']} | {r['method']} | {json.dumps(r['params'])} | {fmt(r['median_ms'], 4)} | {r['iterations']} | {r.get('note', '')} |")
        lines += ["", "</details>"]


def verdict(value, target, higher_is_better):
    if value is None:
        return "not measured"
    ok = value >= target if higher_is_better else value <= target
    return "**met**" if ok else f"**missed** by {abs(value / target - 1) * 100:.0f}%"


def targets(bench, torch_rows, lines):
    lines += ["", "## Targets (issue 17) and anchors (../shared/ANCHORS.md)", "",
              "| what | anchor | target | measured | verdict |", "|---|---|---|---|---|"]
    attention = [r for r in bench if r["cls"] == "AttentionBenchmarks"]
    for n, target in S2_TARGET.items():
        full = find(attention, "AttentionBenchmarks", "FullSdpa", N=n, Pass="ForwardBackward", KvHeads=32)
        anchor_full, anchor_roll, anchor_nowrap = ATTENTION_ANCHOR_MS[n]
        for method in ("S2NoWrap", "S2Roll"):
            s2 = find(attention, "AttentionBenchmarks", method, N=n, Pass="ForwardBackward", KvHeads=32)
            ratio = full["median_ms"] / s2["median_ms"] if full and s2 and full["median_ms"] and s2["median_ms"] else None
            lines.append(f"| S2 ({method}, library) vs full SDPA fwd+bwd, N={n}, H=32 | {anchor_full / anchor_roll:.2f}x roll, "
                         f"{anchor_full / anchor_nowrap:.2f}x no-wrap | >= {target}x | {fmt(ratio, unit='x')} | {verdict(ratio, target, True)} |")
    ts_pt = []
    for r in bench:
        suite = TORCH_SUITES.get(r["cls"])
        pt = next((p for p in comparable(torch_rows) if p["suite"] == suite and p["method"] == r["method"] and key(p["params"]) == key(r["params"])), None)
        if pt and r["median_ms"]:
            ts_pt.append((r["median_ms"] / pt["median_ms"], f"{r['cls']}.{r['method']} {r['params']}"))
    worst = max(ts_pt) if ts_pt else None
    lines.append(f"| TorchSharp vs PyTorch eager, same recipe (worst of {len(ts_pt)} rows) | 1.00x | <= 1.03x | "
                 f"{fmt(worst[0], unit='x') + ' (' + worst[1] + ')' if worst else '—'} | {verdict(worst[0] if worst else None, 1.03, False)} |")

    def rel(cls, method, baseline, **params):
        a, b = find(bench, cls, method, **params), find(bench, cls, baseline, **params)
        return a["median_ms"] / b["median_ms"] if a and b and a["median_ms"] and b["median_ms"] else None

    lora = rel("LoraBenchmarks", "Library", "FrozenLinear", Pass="ForwardBackward")
    lines.append(f"| LoRA linear fwd+bwd vs frozen linear, x (8192,4096), r=16 | 1.43x (peft style) | <= 1.20x | {fmt(lora, unit='x')} | {verdict(lora, 1.20, False)} |")
    qlora = rel("QLoraLinearBenchmarks", "Library", "DenseLinear", Pass="ForwardBackward")
    lines.append(f"| QLoRA linear fwd+bwd vs bf16 linear | 1.27x | <= 1.15x | {fmt(qlora, unit='x')} | {verdict(qlora, 1.15, False)} |")
    for dq in ("False", "True"):
        r = find(bench, "Nf4DequantizeBenchmarks", "Library", DoubleQuant=dq)
        gbs = r["gbs"] if r else None
        lines.append(f"| NF4 dequantize 4096x4096{' (double quant)' if dq == 'True' else ''} | 0.21 TB/s | >= 1 TB/s | "
                     f"{fmt(gbs / 1000 if gbs else None, unit=' TB/s')} | {verdict(gbs / 1000 if gbs else None, 1.0, True)} |")
    r = find(bench, "RopeBenchmarks", "Library")
    gbs = r["gbs"] if r else None
    lines.append(f"| RoPE apply (1,32,16384,128) bf16 | 0.36 TB/s | >= 1 TB/s | {fmt(gbs / 1000 if gbs else None, unit=' TB/s')} | {verdict(gbs / 1000 if gbs else None, 1.0, True)} |")
    model = [r for r in bench if r["cls"] == "Model7bBenchmarks"]
    for n in (16384, 32768):
        for base in ("Dense", "Nf4"):
            for method in ("S2NoWrap", "S2Roll"):
                r = find(model, "Model7bBenchmarks", method, N=n, Base=base)
                if r is None and method == "S2Roll":
                    continue
                toks = n / (r["median_ms"] / 1e3) if r and r["median_ms"] else None
                anchor = MODEL7B_ANCHOR[("s2", n)]
                lines.append(f"| 7B step, {method}, {base} base, N={n}: tok/s | {anchor[1]:,} tok/s (S2 roll, bf16 base) | >= 9,000 tok/s | "
                             f"{fmt(toks)} | {verdict(toks, 9000, True)} |")
            if base == "Nf4":
                mib = [x["dev_mib"] for x in model if x["params"].get("N") == str(n) and x["params"].get("Base") == "Nf4" and x["dev_mib"]]
                gib = max(mib) / 1024 if mib else None
                lines.append(f"| 7B step, 4-bit base, N={n}: peak device memory (NVML high-water, upper bound) | 32.9 GiB (bf16 base, 32k) | <= 24 GiB | "
                             f"{fmt(gib, unit=' GiB')} | {verdict(gib, 24, False)} |")
    lines += ["", "Anchor 7B rows (H200, HF transformers 5.17 + peft 0.21): " +
              "; ".join(f"{a} N={n}: {v[0]} s/step, {v[1]:,} tok/s, {v[2]} GiB" for (a, n), v in MODEL7B_ANCHOR.items()) + "."]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--command", default="scripts/gpu-check.sh")
    parser.add_argument("--output")
    args = parser.parse_args()
    out = args.out
    steps = []
    if os.path.exists(os.path.join(out, "steps.tsv")):
        for line in open(os.path.join(out, "steps.tsv")):
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 5:
                steps.append(parts)
    parity, interop = read_jsonl(os.path.join(out, "parity.jsonl")), read_jsonl(os.path.join(out, "interop.jsonl"))
    bench, torch_rows = read_bench(out), read_jsonl(os.path.join(out, "torch.jsonl"))
    checks = parity + interop
    n_fail = sum(1 for r in checks if r["status"] in ("fail", "error"))
    n_pass = sum(1 for r in checks if r["status"] == "pass")
    n_skip = sum(1 for r in checks if r["status"] == "skip")
    bad_steps = [s for s in steps if s[1] != "ok"]
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# GPU check report ({now})", "", f"Command: `{args.command}`", ""] + machine(out)
    lines += ["", f"**Summary: {n_pass} checks passed, {n_fail} failed or errored, {n_skip} skipped; "
                  f"{len(steps) - len(bad_steps)} of {len(steps)} steps ok"
                  + (f" (not ok: {', '.join(s[0] + ' ' + s[1] for s in bad_steps)})" if bad_steps else "") + ".**",
              "", "## Steps", "", "| step | status | exit code | seconds | log |", "|---|---|---|---|---|"]
    lines += [f"| {s[0]} | {s[1]} | {s[2]} | {s[3]} | {s[4]} |" for s in steps]
    targets(bench, torch_rows, lines)
    checks_section("Parity on the device against CPU float64 references", parity, lines)
    checks_section("Interop with HF transformers and peft", interop, lines)
    bench_tables(bench, torch_rows, lines)
    path = args.output or os.path.join(out, "gpu-report.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"report: {path} ({n_pass} passed, {n_fail} failed, {n_skip} skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
