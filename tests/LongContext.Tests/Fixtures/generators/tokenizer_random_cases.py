#!/usr/bin/python3
"""Drawn (seeded) texts and id sequences for differential tokenizer tests (run by make_tokenizer_random_cases.sh).

The hand-written cases.json of each tokenizer folder covers named situations; these files cover what nobody
thought to write down: random mixtures of words, whitespace runs, scripts, byte-fallback characters, control
characters and literal special-token text, and random id sequences (byte pieces that form invalid UTF-8, special
tokens in the middle, ...), each with the reference library's output.

  draw --out W/draws.json [--texts N] [--ids N] [--whole-ids N] [--seed S]
                                                              the texts and, per folder, the id sequences
  spm  --draws W/draws.json --out O                           O/spm_bpe/random_cases.json, random_decode.json
                                                              (sentencepiece 0.1.97, as tokenizer_fixtures_spm.py)

random_cases.json has the fields of cases.json (name, text, ids, ids_with_special, tokens, decoded,
decoded_with_special). random_decode.json is a list of {name, ids, decoded_with_special[, decoded_skip_special]}.
"""
import argparse
import json
import os
import random

import sentencepiece as spm

SPM_VERSION = "0.1.97"

WORDS = ("the and of to that in he shall unto for i his a lord they be is him not them it with all thou thy was god "
         "which my me said but ye their have will thee from as are when this out were upon man by you israel king "
         "son up there hath then people came had house into her come one we children before your also day land "
         "Jerusalem Pharaoh beginning earth heaven waters Abraham Moses").split()
PUNCT = list(".,;:!?'\"()[]{}-_/\\@#$%^&*+=<>|~`")
SCRIPTS = [
    "àéèêëïîôùûüÿçœæ", "ÀÉÈÊËÏÎÔÙÛÜŸÇŒÆ", "äöüßÄÖÜ", "ñáíóúÑ¿¡",
    "αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔΩ", "абвгдежзийклмнопрстуфхцчшщъыьэюяАБВ",
    "日本語のテキストです漢字", "中文文本测试汉字", "한국어텍스트", "עברית", "العربية", "हिन्दी", "ไทย",
]
EMOJI = ["😀", "🎉", "👍🏽", "👨‍👩‍👧", "🏳️‍🌈", "❤️", "🇫🇷", "🧪", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𐍈"]
ODD = ["\u00a0", "\u3000", "\u200b", "\u200d", "\ufeff", "\u2028", "\u0301", "\u0308", "e\u0301", "\ufffd",
       "\u2581", "\u2581\u2581", "\x01", "\x07", "\x1b", "\x7f", "\u0085", "\x00"]
LITERALS = ["<s>", "</s>", "<unk>", "<0x41>", "<0xE6>", "<|begin_of_text|>", "<|end_of_text|>", "<pad>", "<s", "s>"]
SPACES = [" ", "  ", "   ", "    ", "     ", "\t", "\t\t", "\n", "\n\n", "\r\n", " \n", "\n ", "\t ", " \t "]


def draw_text(rng):
    parts = []
    for _ in range(rng.randint(1, 24)):
        r = rng.random()
        if r < 0.35:
            w = rng.choice(WORDS)
            parts.append(w.capitalize() if rng.random() < 0.15 else w.upper() if rng.random() < 0.03 else w)
        elif r < 0.50:
            parts.append(rng.choice(SPACES))
        elif r < 0.58:
            parts.append("".join(rng.choice(PUNCT) for _ in range(rng.randint(1, 3))))
        elif r < 0.65:
            parts.append("".join(rng.choice("0123456789") for _ in range(rng.randint(1, 9))))
        elif r < 0.75:
            s = rng.choice(SCRIPTS)
            parts.append("".join(rng.choice(s) for _ in range(rng.randint(1, 6))))
        elif r < 0.80:
            parts.append(rng.choice(EMOJI))
        elif r < 0.87:
            parts.append(rng.choice(ODD))
        elif r < 0.92:
            parts.append(rng.choice(LITERALS))
        else:
            parts.append("".join(chr(rng.randint(0x21, 0x7e)) for _ in range(rng.randint(1, 8))))
        if rng.random() < 0.5:
            parts.append(" ")
    return "".join(parts)


def draw_ids(rng, vocab, byte_range, special):
    """Mostly byte pieces and normal pieces, now and then a special token."""
    out = []
    lo, hi = byte_range
    for _ in range(rng.randint(1, 40)):
        r = rng.random()
        if r < 0.35 and hi > lo:
            # runs of bytes: often the lead and continuation bytes of a UTF-8 character, sometimes broken ones
            if rng.random() < 0.6:
                ch = rng.choice("éß€日😀ж" + "".join(EMOJI))
                bs = list(ch.encode("utf-8"))
                if rng.random() < 0.3:
                    bs = bs[:rng.randint(1, len(bs))]
                out.extend(lo + b for b in bs)
            else:
                out.append(rng.randint(lo, hi - 1))
        elif r < 0.45 and special:
            out.append(rng.choice(special))
        else:
            out.append(rng.randint(0, vocab - 1))
    return out


def draw_whole_ids(rng, vocab, byte_range, special):
    """Like draw_ids, but every run of byte pieces spells whole UTF-8 characters and no normal piece is a byte piece,
    so the byte runs stay valid UTF-8 (skipped special tokens between runs included): the sequences on which a
    tokenizer.json's ByteFallback decode and an incremental stream can be compared."""
    out = []
    lo, hi = byte_range
    for _ in range(rng.randint(1, 40)):
        r = rng.random()
        if r < 0.35 and hi > lo:
            for ch in rng.sample("éß€日😀жऄ𐍈" + "".join(EMOJI), rng.randint(1, 3)):
                out.extend(lo + b for b in ch.encode("utf-8"))
        elif r < 0.45 and special:
            out.append(rng.choice(special))
        else:
            out.append(rng.randint(hi, vocab - 1) if hi > lo else rng.randint(0, vocab - 1))
    return out


def cmd_draw(a):
    rng = random.Random(a.seed)
    texts = [draw_text(rng) for _ in range(a.texts)]
    # Per folder: vocabulary size (with added tokens), the ids of the byte pieces <0x00>..<0xFF> (none in a
    # byte-level vocabulary) and the special ids.
    folders = {
        "spm_bpe": dict(vocab=2000, bytes=[3, 259], special=[0, 1, 2]),
        "hf_metaspace_bpe": dict(vocab=2000, bytes=[3, 259], special=[0, 1, 2]),
        "hf_bytelevel_bpe": dict(vocab=2002, bytes=[0, 0], special=[2000, 2001]),
    }
    # Per folder, a list of {name, ids}: the ids_NNN draws, then the whole_NNN draws (a stream of their own, so adding
    # them left the ids_NNN draws as they were).
    ids = {}
    for name, f in folders.items():
        r = random.Random("%s/%s" % (a.seed, name))
        ids[name] = [{"name": "ids_%03d" % k, "ids": draw_ids(r, f["vocab"], f["bytes"], f["special"])}
                     for k in range(a.ids)]
        r = random.Random("%s/%s/whole" % (a.seed, name))
        ids[name] += [{"name": "whole_%03d" % k, "ids": draw_whole_ids(r, f["vocab"], f["bytes"], f["special"])}
                      for k in range(a.whole_ids)]
    with open(a.out, "w", encoding="utf-8") as fh:
        json.dump({"seed": a.seed, "texts": texts, "ids": ids}, fh, ensure_ascii=False)
    print("drew %d texts and %d + %d id sequences per folder (seed %d)" % (len(texts), a.ids, a.whole_ids, a.seed))


def write_list(path, items):
    with open(path, "w", encoding="utf-8") as f:
        f.write("[\n")
        f.write(",\n".join(json.dumps(c, ensure_ascii=False) for c in items))
        f.write("\n]\n")


def cmd_spm(a):
    if spm.__version__ != SPM_VERSION:
        print("warning: sentencepiece %s, the fixtures were made with %s" % (spm.__version__, SPM_VERSION))
    with open(a.draws, encoding="utf-8") as f:
        draws = json.load(f)
    d = os.path.join(a.out, "spm_bpe")
    sp = spm.SentencePieceProcessor(model_file=os.path.join(d, "tokenizer.model"))
    cases = []
    for k, text in enumerate(draws["texts"]):
        ids = sp.encode(text)
        with_bos = sp.encode(text, add_bos=True)
        cases.append({"name": "random_%03d" % k, "text": text, "ids": ids, "ids_with_special": with_bos,
                      "tokens": [sp.id_to_piece(i) for i in ids], "decoded": sp.decode(ids),
                      "decoded_with_special": sp.decode(with_bos)})
    write_list(os.path.join(d, "random_cases.json"), cases)
    # sentencepiece has no "skip special" switch: control tokens always decode to nothing.
    dec = [{"name": d["name"], "ids": d["ids"], "decoded_with_special": sp.decode(d["ids"])}
           for d in draws["ids"]["spm_bpe"]]
    write_list(os.path.join(d, "random_decode.json"), dec)
    print("spm_bpe: %d random cases, %d random id sequences" % (len(cases), len(dec)))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["draw", "spm"])
    p.add_argument("--out")
    p.add_argument("--draws")
    p.add_argument("--texts", type=int, default=200)
    p.add_argument("--ids", type=int, default=300)
    p.add_argument("--whole-ids", type=int, default=150)
    p.add_argument("--seed", type=int, default=20261203)
    a = p.parse_args()
    {"draw": cmd_draw, "spm": cmd_spm}[a.cmd](a)


if __name__ == "__main__":
    main()
