#!/usr/bin/env bash
# Smoke test of the main program (samples/LongContext.Demo).
# 1. `demo --quick`: the whole experiment at reduced sizes on the shipped base. Exit code 0: every expectation of
#    the papers' pattern held; 3: the run finished but the pattern was not reproduced (the numbers are printed);
#    1: an error; 2: bad arguments. Checks the files it writes. Exit code 3 fails the smoke test unless
#    LONGCONTEXT_DEMO_ALLOW_PATTERN_MISS=1 (a measured result, not a crash: the coordinator decides).
# 2. extend / eval / generate on the shipped base as an HF folder (the real-checkpoint code paths, tiny sizes).
# 3. Bad arguments answer exit code 2.
set -uo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
start=$(date +%s)
dotnet build -c Release samples/LongContext.Demo -v q -nologo >/dev/null || { echo "smoke-demo: build failed" >&2; exit 1; }
run() { dotnet run -c Release --no-build --project samples/LongContext.Demo -- "$@"; }

run --quick --output "$out/demo"
rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then echo "smoke-demo: demo --quick failed with exit code $rc" >&2; exit 1; fi
for f in results.csv results.md context_extension.png; do
  [ -s "$out/demo/$f" ] || { echo "smoke-demo: the demo did not write $f" >&2; exit 1; }
done
[ "$(wc -l < "$out/demo/results.csv")" -eq 25 ] || { echo "smoke-demo: results.csv should hold 8 methods x 3 lengths" >&2; exit 1; }
if [ "$rc" -eq 3 ]; then
  echo "smoke-demo: demo --quick ran but the expected pattern was NOT reproduced (exit code 3; see the table above)." >&2
  [ "${LONGCONTEXT_DEMO_ALLOW_PATTERN_MISS:-0}" = 1 ] || exit 3
fi
demo_s=$(( $(date +%s) - start ))
# The opt-in full fine-tuning pair (every weight trained, no adapter): a partial run exits 3 by design.
run --quick --methods extrapolation-full,pi-full --lr 1e-4 --output "$out/full" >/dev/null
rc=$?
[ "$rc" -eq 3 ] || { echo "smoke-demo: demo --methods extrapolation-full,pi-full should run and exit 3 (a partial run); got $rc" >&2; exit 1; }
[ "$(wc -l < "$out/full/results.csv")" -eq 7 ] || { echo "smoke-demo: the full fine-tuning run's results.csv should hold 2 methods x 3 lengths" >&2; exit 1; }
run eval --model "$out/full/runs/pi-full/model" --corpus samples/LongContext.Demo/data/kjv.txt --lengths 512 --eval-tokens 1024 \
  --passkey-trials 1 --output "$out/eval-full" >/dev/null || { echo "smoke-demo: eval of the saved pi-full model failed" >&2; exit 1; }
# A second demo into the same folder replaces the first one's files: no runs/ of methods it did not run are left.
run --quick --methods none,pi --output "$out/full" >/dev/null
[ ! -e "$out/full/runs" ] && [ "$(wc -l < "$out/full/results.csv")" -eq 7 ] \
  || { echo "smoke-demo: demo --methods none,pi into a previous demo's folder left its runs/ (or wrote no results)" >&2; exit 1; }

base=samples/LongContext.Demo/data/base
run extend --model "$base" --corpus samples/LongContext.Demo/data/kjv.txt --target-length 256 --method longlora \
  --steps 2 --batch 1 --grad-accum 2 --lr 1e-3 --no-gradient-checkpointing --output "$out/extend" || { echo "smoke-demo: extend failed" >&2; exit 1; }
[ -s "$out/extend/adapter/adapter_model.safetensors" ] || { echo "smoke-demo: extend wrote no adapter" >&2; exit 1; }
run eval --model "$base" --adapter "$out/extend/adapter" --corpus samples/LongContext.Demo/data/kjv.txt --lengths 128,256 \
  --eval-tokens 2048 --passkey-trials 1 --output "$out/eval" || { echo "smoke-demo: eval failed" >&2; exit 1; }
for f in evaluation.md perplexity.csv passkey.csv evaluation.png; do
  [ -s "$out/eval/$f" ] || { echo "smoke-demo: eval did not write $f" >&2; exit 1; }
done
# A second eval into the same folder replaces the first one's files: without a passkey test, no passkey.csv of the first is left.
run eval --model "$base" --corpus samples/LongContext.Demo/data/kjv.txt --lengths 128 --eval-tokens 1024 --passkey-trials 0 --output "$out/eval" >/dev/null \
  || { echo "smoke-demo: a second eval into the same folder failed" >&2; exit 1; }
[ ! -e "$out/eval/passkey.csv" ] || { echo "smoke-demo: eval --passkey-trials 0 left the previous eval's passkey.csv beside its results" >&2; exit 1; }
# The Llama 3.1 rope scaling travels in the adapter's config.json and is applied again by eval.
run extend --model "$base" --corpus samples/LongContext.Demo/data/kjv.txt --target-length 256 --method llama3-lora \
  --steps 1 --batch 1 --grad-accum 1 --lr 1e-3 --no-gradient-checkpointing --output "$out/extend-llama3" || { echo "smoke-demo: extend --method llama3-lora failed" >&2; exit 1; }
grep -q '"llama3"' "$out/extend-llama3/adapter/config.json" || { echo "smoke-demo: the llama3-lora adapter's config.json has no llama3 rope" >&2; exit 1; }
run eval --model "$base" --adapter "$out/extend-llama3/adapter" --corpus samples/LongContext.Demo/data/kjv.txt --lengths 256 \
  --eval-tokens 1024 --passkey-trials 1 --output "$out/eval-llama3" || { echo "smoke-demo: eval of the llama3-lora adapter failed" >&2; exit 1; }
# Every weight trained: extend saves the whole model (an HF folder with the tokenizer) instead of an adapter.
run extend --model "$base" --corpus samples/LongContext.Demo/data/kjv.txt --target-length 256 --method pi-full \
  --steps 1 --batch 1 --grad-accum 1 --lr 1e-4 --no-gradient-checkpointing --output "$out/extend-full" >/dev/null || { echo "smoke-demo: extend --method pi-full failed" >&2; exit 1; }
[ -s "$out/extend-full/model/model.safetensors" ] && [ -s "$out/extend-full/model/tokenizer.model" ] || { echo "smoke-demo: extend --method pi-full saved no model folder" >&2; exit 1; }
run generate --model "$base" --adapter "$out/extend/adapter" --prompt "In the beginning" --max-new-tokens 8 || { echo "smoke-demo: generate failed" >&2; exit 1; }

# --help of every command renders (option descriptions are Spectre markup: a stray '[' used to crash demo --help).
for c in "" demo pretrain extend eval generate; do
  msg=$(run $c --help 2>&1) && grep -q "OPTIONS:" <<<"$msg" || { echo "smoke-demo: '$c --help' failed: $msg" >&2; exit 1; }
done
# The examples of --help can be pasted into a shell: a prompt of several words is quoted.
run generate --help 2>&1 | grep -qF -- '--prompt "In the beginning"' || { echo "smoke-demo: generate --help's example should quote its prompt" >&2; exit 1; }
run demo --steps 0 >/dev/null 2>&1; [ $? -eq 2 ] || { echo "smoke-demo: a bad value should exit with 2" >&2; exit 1; }
run pretrain --rope-theta 0.5 >/dev/null 2>&1; [ $? -eq 2 ] || { echo "smoke-demo: pretrain --rope-theta 0.5 should exit with 2" >&2; exit 1; }
run pretrain --heads 3 >/dev/null 2>&1; [ $? -eq 2 ] || { echo "smoke-demo: pretrain --heads 3 (not a divisor of 128) should exit with 2" >&2; exit 1; }
run demo --passkey-fraction 1 >/dev/null 2>&1; [ $? -eq 2 ] || { echo "smoke-demo: demo --passkey-fraction 1 should exit with 2" >&2; exit 1; }
msg=$(run demo --methods pi,no-such-method 2>&1); [ $? -eq 2 ] && grep -qF -- "--methods must be a comma-separated list of one or more of none, pi," <<<"$msg" \
  || { echo "smoke-demo: demo --methods with an unknown method should exit with 2 naming --methods and the methods: $msg" >&2; exit 1; }
run demo --no-such-option >/dev/null 2>&1; [ $? -eq 2 ] || { echo "smoke-demo: an unknown option should exit with 2" >&2; exit 1; }
run eval --model /no/such/folder --corpus x >/dev/null 2>&1; [ $? -eq 2 ] || { echo "smoke-demo: a missing folder should exit with 2" >&2; exit 1; }
# bad TEXT ARGS...: exit code 2 and a message holding TEXT (the option, what it must be, the value); one line each.
bad() {
  local want=$1 msg rc; shift
  msg=$(run "$@" 2>&1); rc=$?
  [ "$rc" -eq 2 ] && grep -qF -- "$want" <<<"$msg" || { echo "smoke-demo: '$*' should exit with 2 saying '$want'; got $rc: $msg" >&2; exit 1; }
}
# fails TEXT ARGS...: exit code 1 and a message holding TEXT, without a stack trace (a file or the data is at fault).
fails() {
  local want=$1 msg rc; shift
  msg=$(run "$@" 2>&1); rc=$?
  [ "$rc" -eq 1 ] && grep -qF -- "$want" <<<"$msg" && ! grep -q "^ *at " <<<"$msg" \
    || { echo "smoke-demo: '$*' should exit with 1 saying '$want' without a stack trace; got $rc: $msg" >&2; exit 1; }
}
bad "--steps must be an integer (at most 2147483647); got '1.5'" demo --steps=1.5
for m in pi,pi none,,pi pi,; do   # a method twice or an empty item: refused, not run once or skipped
  bad "--methods must be a comma-separated list of one or more of none, pi," demo --methods "$m"
  bad "each once; got '$m'" demo --methods "$m"
done
bad "--lr must be a number (e.g. 0.5 or 1e-3); got 'inf'" extend --lr inf
bad "--device must be cpu on this machine: " eval --device cuda --model "$base" --corpus samples/LongContext.Demo/data/kjv.txt
mkdir -p "$out/no-tokenizer" "$out/bad-config" && cp "$base/config.json" "$base/model.safetensors" "$out/no-tokenizer/" && cp "$base"/* "$out/bad-config/" && echo '{' > "$out/bad-config/config.json"
bad "--model must be an HF Llama folder" generate --model "$out/no-tokenizer" --prompt hi
fails "is not valid JSON" generate --model "$out/bad-config" --prompt hi
cp -r "$out/extend/adapter" "$out/other-shape" && sed -i 's/"num_hidden_layers": 3/"num_hidden_layers": 2/' "$out/other-shape/config.json"
bad "--adapter must be an adapter of the --model's shape; '$out/other-shape' was trained on another model: NumHiddenLayers 2 (model: 3)" generate --model "$base" --adapter "$out/other-shape" --prompt hi
kjv=samples/LongContext.Demo/data/kjv.txt
mkdir -p "$out/no-text" && : > "$out/empty.txt" && echo "short text" > "$out/short.txt"
bad "--target-length must be a multiple of 8 for --method longlora" extend --model "$base" --corpus $kjv --target-length 260
bad "--target-length must be at least the model's context of 128 tokens" extend --model "$base" --corpus $kjv --target-length 64
bad "--grad-accum must be at least 1; got 0" extend --model "$base" --corpus $kjv --target-length 256 --grad-accum 0
bad "--seed must be left out with --method pi-full on this model: nothing is drawn" extend --model "$base" --corpus $kjv --target-length 256 --method pi-full --seed 3 \
  --steps 1 --batch 1 --grad-accum 1 --output "$out/x"
bad "--corpus must hold text; '$out/empty.txt' is empty" extend --model "$base" --corpus "$out/empty.txt" --target-length 256
bad "the folder '$out/no-text' holds no .txt file" eval --model "$base" --corpus "$out/no-text"
bad "--adapter must be a folder extend wrote; got the file '$out/empty.txt'." generate --model "$base" --adapter "$out/empty.txt" --prompt hi
bad "--tokens must be a uint16 token file; got the folder '$out/no-text'." eval --model "$base" --tokens "$out/no-text"
fails "--corpus gives 6 tokens, not one full row of --target-length 256" extend --model "$base" --corpus "$out/short.txt" --target-length 256 --output "$out/x"
head -c 6000 $kjv > "$out/small.txt"   # 7 rows of 256 tokens
fails "--corpus gives 7 rows of --target-length 256, fewer than --batch 8" extend --model "$base" --corpus "$out/small.txt" --target-length 256 --steps 1 --batch 8 --grad-accum 1 --output "$out/x"
fails "--corpus gives 7 tokens; --lengths 128 needs at least 385" eval --model "$base" --corpus "$out/short.txt" --lengths 128 --eval-tokens 1024 --output "$out/x"
bad "--lengths must be a comma-separated list of distinct integers of at least 16; got '128,128'" eval --model "$base" --corpus $kjv --lengths 128,128
for l in 128,,256 ,128 128,; do   # an empty item is a typo, not a length to skip
  bad "--lengths must be a comma-separated list of distinct integers of at least 16; got '$l'" eval --model "$base" --corpus $kjv --lengths $l \
    --eval-tokens 1024 --passkey-trials 0 --output "$out/x"
done
bad "with --passkey-trials above 0 (the passkey prompt's fixed sentences take" eval --model "$base" --corpus $kjv --lengths 64 --eval-tokens 1024
bad "--eval-tokens must be at least 4353 for --lengths 4096" eval --model "$base" --corpus $kjv --lengths 4096 --eval-tokens 1024
bad "--prompt must be text to continue; got ''" generate --model "$base" --prompt ""
bad "--seed must be left out with greedy decoding (--temperature 0, the default)" generate --model "$base" --prompt hi --seed 5 --max-new-tokens 1
bad "--max-new-tokens must be at most 125 (the model's context of 128 tokens less the prompt's 3); got 100000" generate --model "$base" --prompt hi --max-new-tokens 100000
bad "Unknown option 'seed'" eval --seed 3 --model "$base" --corpus $kjv
# A value missing (the parser took its default command's name, '__default_command', as the value) or an empty number (read as "not given").
bad "--prompt needs a value; got none" generate --model "$base" --max-new-tokens 1 --prompt
bad "--steps needs a value, an integer (at most 2147483647); got none." demo --steps --quick
bad "--steps must be an integer (at most 2147483647); got ''." demo --quick --methods none --output "$out/d" --steps ""
# A whole number is plain decimal: the parser's converter read 0x10, #10 and &h10 as hexadecimal 16 (and ' 16' as 16).
for v in 0x10 '#10' '&h10' ' 16'; do
  bad "--steps must be an integer (at most 2147483647); got '$v'." demo --quick --methods none --output "$out/d" --steps "$v"
done
bad "--max-new-tokens must be an integer (at most 2147483647); got '0x1'." generate --model "$base" --prompt hi --max-new-tokens=0x1
# An option of one value given twice: the parser would keep the last silently (--corpus is a list and may repeat).
bad "--lengths must be given once; got '128', '256'." eval --model "$base" --corpus $kjv --lengths 128 --lengths=256 --eval-tokens 1024 --passkey-trials 0 --output "$out/x"
mkdir -p "$out/user" && echo keep > "$out/user/notes.txt"
bad "--output must be a new or empty folder, or one this command wrote before (with train_log.csv); '$out/user' holds notes.txt" extend --model "$base" --corpus $kjv --target-length 256 --output "$out/user"
[ -s "$out/user/notes.txt" ] || { echo "smoke-demo: extend --output removed a file it did not write" >&2; exit 1; }
bad "--base must be a base made by pretrain (a folder with manifest.json), or a new or empty folder" demo --base "$out/no-tokenizer"
bad "--output must be a new or empty folder, or one this command wrote before (with manifest.json)" pretrain --output "$out/no-tokenizer"
bad "--output: '$out/empty.txt/sub' cannot be created: '$out/empty.txt' is a file" eval --model "$base" --corpus $kjv --output "$out/empty.txt/sub"
bad "--output must be a new or empty folder, or one this command wrote before; got ''." demo --output ""
bad "--base must be a base made by pretrain (a folder with manifest.json), or a new or empty folder to pretrain one into; got ''." demo --base ""
head -c 8000 /dev/zero > "$out/zeros.bin"   # 4000 uint16 tokens; --eval-tokens 1024 leaves 3 windows of 128
run eval --model "$base" --tokens "$out/zeros.bin" --lengths 128 --eval-tokens 1024 --passkey-trials 0 --output "$out/eval-tokens" >/dev/null \
  && grep -q '^longlora,128,3,' "$out/eval-tokens/perplexity.csv" || { echo "smoke-demo: eval --tokens should take at most --eval-tokens tokens" >&2; exit 1; }
bad "--threads must be in [0, " generate --model "$base" --prompt hi --threads 100000
# More memory than the machine has (a 1 TB MLP weight): libtorch's allocation failure is said without its native backtrace.
fails "out of memory: " pretrain --intermediate 2000000000 --steps 1 --batch 1 --output "$out/p-oom"
bad "--steps must be at most 167 with Batch 100000 at Context 128" pretrain --steps 100000 --batch 100000 --output "$out/p"
bad "--steps must be at most 41943 with Batch 100 at 4 x L = 512 tokens" demo --steps 100000000 --batch 100 --output "$out/d"
# A fine-tuning option that no method of --methods uses would be ignored silently.
bad "--steps must be left out with --methods none,pi: no method there fine-tunes, so it would have no effect; got 5." demo --methods none,pi --steps 5 --quick --output "$out/d"
bad "--lora-rank must be left out with --methods pi-full: no method there trains LoRA, so it would have no effect; got 4." demo --methods pi-full --lora-rank 4 --quick --steps 1 --output "$out/d"
bad "--eval-tokens must be at most 159233 (the held-out text, Acts..Revelation); got 100000000" demo --eval-tokens 100000000 --output "$out/d"
bad "--lora-rank must be at most 128, the narrowest layer the adapters wrap (hidden 128, MLP 384): a higher rank adds nothing; got 129." demo --lora-rank 129 --output "$out/d"
cp -r "$base" "$out/bad-manifest" && echo '{' > "$out/bad-manifest/manifest.json"
fails "manifest.json' is not valid JSON" demo --quick --methods none --base "$out/bad-manifest" --output "$out/d"
cp -r "$base" "$out/base-1024" && sed -i 's/"Context": 128,/"Context": 1024,/' "$out/base-1024/manifest.json"   # only the settings are read before the run
bad "--eval-tokens must be at least 4353 for windows of 4 x L = 4096 tokens" demo --quick --base "$out/base-1024" --output "$out/d"
echo "smoke-demo: passed in $(( $(date +%s) - start ))s (demo --quick ${demo_s}s)"
