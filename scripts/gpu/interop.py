#!/usr/bin/env python3
"""The Python half of the interop checks (issue 17): HF transformers + peft against LongContext's files.

  interop.py check-dotnet DIR [--results FILE] [--device cpu|cuda]
      DIR from `LongContext.GpuCheck interop-export`: for every case, transformers `LlamaForCausalLM.from_pretrained`
      on the merged folder and peft `PeftModel.from_pretrained` on the adapter folder must give .NET's logits within
      1e-4 (float32). QLoRA cases load the adapter over the dequantized NF4 base .NET wrote, and also over a
      bitsandbytes 4-bit base of the original weights when bitsandbytes and CUDA are available (detected, reported).
  interop.py export-peft --dotnet DIR --out DIR2 [--results FILE] [--device cpu|cuda]
      peft writes adapters (init_lora_weights=False, r 8) over the same base for `LongContext.GpuCheck interop-import`:
      all-linear, rsLoRA, embed_tokens + lm_head targets, modules_to_save, and QLoRA (over the dequantized base; over a
      bitsandbytes base too when available), with their logits (adapter on and after merge_and_unload).

Without transformers/peft (the CPU dry run on Debian's PyTorch 1.13) every case is reported as skipped ("not
available") and export-peft writes an empty manifest, so the run still produces a report.
"""
import argparse
import copy
import json
import os
import sys
import time
import traceback

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
from results import Results  # noqa: E402

TOLERANCE = 1e-4
GROUP = "interop"


def stack():
    """(transformers, peft, bitsandbytes-or-None, message); transformers/peft None when not importable."""
    versions = []
    try:
        import transformers
        versions.append(f"transformers {transformers.__version__}")
    except Exception as e:  # noqa: BLE001 - any import failure means "not available"
        return None, None, None, f"transformers not available ({type(e).__name__}: {e})"
    try:
        import peft
        versions.append(f"peft {peft.__version__}")
    except Exception as e:  # noqa: BLE001
        return transformers, None, None, f"peft not available ({type(e).__name__}: {e})"
    try:
        import bitsandbytes
        versions.append(f"bitsandbytes {bitsandbytes.__version__}")
    except Exception as e:  # noqa: BLE001
        bitsandbytes = None
        versions.append(f"bitsandbytes not available ({type(e).__name__})")
    return transformers, peft, bitsandbytes, ", ".join(versions)


def load_llama(transformers, folder, device, config_folder=None, quantization_config=None):
    """LlamaForCausalLM from a checkpoint folder in float32, eager attention, evaluation mode."""
    kwargs = dict(attn_implementation="eager")
    if config_folder is not None:
        kwargs["config"] = transformers.LlamaConfig.from_pretrained(config_folder)
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
        kwargs["device_map"] = {"": 0}
    try:
        model = transformers.LlamaForCausalLM.from_pretrained(folder, dtype=torch.float32, **kwargs)
    except TypeError:  # transformers before `dtype` (4.56): the older name
        model = transformers.LlamaForCausalLM.from_pretrained(folder, torch_dtype=torch.float32, **kwargs)
    if quantization_config is None:
        model = model.float().to(device)
    return model.eval()


def bnb_config(transformers):
    """bitsandbytes NF4 as the .NET side quantizes: block 64 (bnb's fixed 4-bit block), double quant, float32 compute."""
    return transformers.BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                           bnb_4bit_compute_dtype=torch.float32)


def logits_of(model, ids):
    with torch.no_grad():
        return model(input_ids=ids.to(next(model.parameters()).device)).logits.float().cpu()


def bnb_usable(bnb):
    return bnb is not None and torch.cuda.is_available()


def check_dotnet(args):
    res = Results(args.results, "interop", args.device)
    transformers, peft, bnb, versions = stack()
    manifest = json.load(open(os.path.join(args.folder, "manifest.json")))
    if peft is None:
        for v in manifest["variants"]:
            res.add(GROUP, f"dotnet -> python {v['name']}", "skip", versions)
        return 0
    print(versions, flush=True)
    ids = st.load(os.path.join(args.folder, manifest["inputs"]))["input_ids"]
    for v in manifest["variants"]:
        name = f"dotnet -> python {v['name']}"
        expected = st.load(os.path.join(args.folder, v["expected"]))["logits"]
        adapter = os.path.join(args.folder, v["adapter"])
        started = time.time()
        try:
            base = load_llama(transformers, os.path.join(args.folder, v["base"]), args.device, config_folder=adapter)
            model = peft.PeftModel.from_pretrained(base, adapter).eval()
            res.close(GROUP, f"{name}: peft PeftModel.from_pretrained", logits_of(model, ids), expected, TOLERANCE,
                      v.get("description", ""), started)
        except Exception as e:  # noqa: BLE001 - one case's failure must not end the others
            res.add(GROUP, f"{name}: peft PeftModel.from_pretrained", "error", f"{type(e).__name__}: {e}", seconds=time.time() - started)
            traceback.print_exc()
        if v.get("merged"):
            started = time.time()
            try:
                merged = load_llama(transformers, os.path.join(args.folder, v["merged"]), args.device)
                res.close(GROUP, f"{name}: transformers from_pretrained(merged)", logits_of(merged, ids), expected, TOLERANCE,
                          "LongLora.SaveMerged", started)
            except Exception as e:  # noqa: BLE001
                res.add(GROUP, f"{name}: transformers from_pretrained(merged)", "error", f"{type(e).__name__}: {e}", seconds=time.time() - started)
                traceback.print_exc()
        if v.get("base_kind") == "nf4":
            label = f"{name}: peft over a bitsandbytes NF4 base"
            if not bnb_usable(bnb):
                res.add(GROUP, label, "skip", "bitsandbytes with CUDA not available; compared over the dequantized NF4 base above")
                continue
            started = time.time()
            try:
                base4 = load_llama(transformers, os.path.join(args.folder, "base"), args.device, config_folder=adapter,
                                   quantization_config=bnb_config(transformers))
                model = peft.PeftModel.from_pretrained(base4, adapter).eval()
                res.close(GROUP, label, logits_of(model, ids), expected, TOLERANCE, f"bitsandbytes {bnb.__version__}", started)
            except Exception as e:  # noqa: BLE001
                res.add(GROUP, label, "error", f"{type(e).__name__}: {e}", seconds=time.time() - started)
                traceback.print_exc()
    return 0


# name, base ("base" = the float fixture model, "qlora_base" = its dequantized NF4 weights, "bnb" = bitsandbytes over the
# float weights), LoraConfig arguments, whether to perturb modules_to_save copies, description
PEFT_CASES = [
    ("peft-all-linear", "base", dict(target_modules="all-linear"), "LoRA r8/16 all-linear"),
    ("peft-rslora", "base", dict(target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                                 use_rslora=True), "rsLoRA r8/16 on the 7 linear projections"),
    ("peft-lm-head", "base", dict(target_modules=["lm_head", "q_proj", "v_proj"]),
     "LoRA on lm_head, q_proj, v_proj (peft saves lm_head's base layer)"),
    ("peft-embed-tokens", "base", dict(target_modules=["embed_tokens", "q_proj", "v_proj"]),
     "LoRA on embed_tokens, q_proj, v_proj (peft saves the embedding base layers)"),
    ("peft-modules-to-save", "base", dict(target_modules=["q_proj", "v_proj"], modules_to_save=["embed_tokens", "norm"]),
     "LoRA on q,v + modules_to_save embed_tokens, norm (LongLoRA's extras), trained copies perturbed"),
    ("peft-qlora-dequantized", "qlora_base", dict(target_modules="all-linear"), "QLoRA all-linear over the dequantized NF4 base"),
    ("peft-qlora-bnb", "bnb", dict(target_modules="all-linear"), "QLoRA all-linear over a bitsandbytes NF4 base"),
]


def export_peft(args):
    res = Results(args.results, "interop", args.device)
    transformers, peft, bnb, versions = stack()
    os.makedirs(args.out, exist_ok=True)
    manifest = dict(writer="peft", inputs="inputs.safetensors", variants=[])
    dotnet = json.load(open(os.path.join(args.dotnet, "manifest.json")))
    ids = st.load(os.path.join(args.dotnet, dotnet["inputs"]))["input_ids"]
    st.save(os.path.join(args.out, "inputs.safetensors"), {"input_ids": ids})
    if peft is None:
        for case in PEFT_CASES:
            res.add(GROUP, f"python export {case[0]}", "skip", versions)
        json.dump(manifest, open(os.path.join(args.out, "manifest.json"), "w"), indent=1)
        return 0
    print(versions, flush=True)
    for i, (name, base, lora_args, description) in enumerate(PEFT_CASES):
        started = time.time()
        if base == "bnb" and not bnb_usable(bnb):
            res.add(GROUP, f"python export {name}", "skip", "bitsandbytes with CUDA not available")
            continue
        if base == "qlora_base" and not os.path.isdir(os.path.join(args.dotnet, "qlora_base")):
            res.add(GROUP, f"python export {name}", "skip", "the .NET export wrote no qlora_base")
            continue
        try:
            torch.manual_seed(9000 + i)
            folder = os.path.join(args.dotnet, "base" if base == "bnb" else base)
            model = load_llama(transformers, folder, args.device,
                               quantization_config=bnb_config(transformers) if base == "bnb" else None)
            config = peft.LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, init_lora_weights=False, **lora_args)
            pm = peft.get_peft_model(model, config)
            with torch.no_grad():
                for pname, p in pm.named_parameters():
                    if "modules_to_save" in pname:
                        p.add_(torch.randn_like(p) * 0.02)
            pm.eval()
            out = os.path.join(args.out, name)
            pm.save_pretrained(os.path.join(out, "adapter"))
            tensors = {"logits": logits_of(pm, ids)}
            if base != "bnb":  # merging into a 4-bit base requantizes (lossy); the .NET side checks dense merges only
                tensors["logits_merged"] = logits_of(pm.merge_and_unload(), ids)
            st.save(os.path.join(out, "expected.safetensors"), tensors)
            manifest["variants"].append(dict(name=name, base_kind="dense" if base == "base" else "nf4", base=base,
                                             adapter=f"{name}/adapter", expected=f"{name}/expected.safetensors",
                                             description=description))
            res.add(GROUP, f"python export {name}", "pass", description, seconds=time.time() - started)
        except Exception as e:  # noqa: BLE001
            res.add(GROUP, f"python export {name}", "error", f"{type(e).__name__}: {e}", seconds=time.time() - started)
            traceback.print_exc()
    json.dump(manifest, open(os.path.join(args.out, "manifest.json"), "w"), indent=1)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check-dotnet")
    check.add_argument("folder")
    export = sub.add_parser("export-peft")
    export.add_argument("--dotnet", required=True, help="the interop-export folder (its base/ and qlora_base/)")
    export.add_argument("--out", required=True)
    for p in (check, export):
        p.add_argument("--results")
        p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    return check_dotnet(args) if args.command == "check-dotnet" else export_peft(args)


if __name__ == "__main__":
    sys.exit(main())
