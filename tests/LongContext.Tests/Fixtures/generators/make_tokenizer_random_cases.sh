#!/usr/bin/env bash
# Draws the random tokenizer cases (random_cases.json, random_decode.json) for the three tokenizer folders, with
# the reference libraries, over the tokenizer files make_tokenizer_fixtures.sh wrote:
#
#   bash make_tokenizer_random_cases.sh [OUT] [SEED]     (OUT default: ../tokenizers beside this script)
#
# Same pinned versions as make_tokenizer_fixtures.sh: python3-sentencepiece 0.1.97 (Debian 12), npm tokenizers@0.23.2
# (installed into a scratch folder unless TOKENIZERS_NODE_MODULES names a node_modules that has it).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$(realpath "${1:-$here/../tokenizers}")"
seed="${2:-20261203}"
py=/usr/bin/python3
"$py" -c 'import sentencepiece' 2>/dev/null || { echo "needs apt-get install -y python3-sentencepiece" >&2; exit 1; }
command -v node >/dev/null || { echo "needs node and npm: apt-get install -y nodejs npm" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [ -z "${TOKENIZERS_NODE_MODULES:-}" ]; then
  (cd "$work" && npm install --no-save --no-package-lock --no-audit --no-fund --silent tokenizers@0.23.2 >/dev/null)
  TOKENIZERS_NODE_MODULES="$work/node_modules"
fi
"$py" "$here/tokenizer_random_cases.py" draw --out "$work/draws.json" --seed "$seed"
"$py" "$here/tokenizer_random_cases.py" spm --draws "$work/draws.json" --out "$out"
NODE_PATH="$TOKENIZERS_NODE_MODULES" node "$here/tokenizer_random_cases_hf.cjs" --draws "$work/draws.json" --out "$out"
