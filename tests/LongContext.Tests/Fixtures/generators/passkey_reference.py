"""Reference draws of LongLoRA's passkey_retrivial.py (generate_prompt_landmark), numpy's legacy RandomState.

Run with Debian's numpy: /usr/bin/python3 generators/passkey_reference.py > passkey/longlora_passkey.json
For each (n_garbage, seed): the prefix length random.randint(0, n_garbage) and the key random.randint(1, 50000)
drawn after random.seed(seed), as the script does; for the smallest n_garbage also the whole prompt text.
n_garbage values: LongLoRA's int(3.75 * (i + 1) * interval // 1024 * 1024) for interval 1000, i = 0..31, plus
small values.
"""
import json
import numpy
from numpy import random

TASK = "There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. I will quiz you about the important information there."
GARBAGE = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."


def prompt(n_garbage, seed):
    state = random.get_state()
    random.seed(seed)
    prefix = random.randint(0, n_garbage)
    suffix = n_garbage - prefix
    inf = " ".join([GARBAGE] * 5000)
    key = random.randint(1, 50000)
    info = f"The pass key is {key}. Remember it. {key} is the pass key."
    question = "What is the pass key? The pass key is"
    random.set_state(state)
    return "\n".join([TASK, inf[:prefix], info, inf[:suffix], question]), int(prefix), int(key)


sizes = [1, 2, 3, 7, 200, 1000] + [int(3.75 * (i + 1) * 1000 // 1024 * 1024) for i in range(32)]
cases = []
for n in sizes:
    for seed in range(10):
        text, prefix, key = prompt(n, seed)
        case = {"n_garbage": n, "seed": seed, "prefix": prefix, "key": key}
        if n == 200:
            case["prompt"] = text
        cases.append(case)
lines = ",\n  ".join(json.dumps(c) for c in cases)
print('{\n "generator": "passkey_reference.py, numpy %s legacy RandomState",\n "cases": [\n  %s\n ]\n}' % (numpy.__version__, lines))
