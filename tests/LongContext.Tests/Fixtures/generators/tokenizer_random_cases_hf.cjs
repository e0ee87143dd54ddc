// HF tokenizers half of the drawn tokenizer cases (run by make_tokenizer_random_cases.sh).
// Needs the npm package tokenizers@0.23.2 on NODE_PATH.
//
//   node tokenizer_random_cases_hf.cjs --draws W/draws.json --out O
//
// For hf_metaspace_bpe and hf_bytelevel_bpe: O/<folder>/random_cases.json (the fields of cases.json) from the
// drawn texts, and O/<folder>/random_decode.json ({name, ids, decoded_with_special, decoded_skip_special}) from
// the folder's drawn id sequences.
'use strict';
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require('tokenizers');

const TOKENIZERS_VERSION = '0.23.2';
const installed = require('tokenizers/package.json').version;
if (installed !== TOKENIZERS_VERSION) {
  console.warn(`warning: tokenizers ${installed}, the fixtures were made with ${TOKENIZERS_VERSION}`);
}

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const draws = JSON.parse(fs.readFileSync(args.draws, 'utf8'));

function writeList(file, items) {
  fs.writeFileSync(file, '[\n' + items.map((c) => JSON.stringify(c)).join(',\n') + '\n]\n');
}

const pad = (k) => String(k).padStart(3, '0');

async function folder(name) {
  const dir = path.join(args.out, name);
  const tok = Tokenizer.fromFile(path.join(dir, 'tokenizer.json'));
  const cases = [];
  for (const [k, text] of draws.texts.entries()) {
    const plain = await tok.encode(text, null, { addSpecialTokens: false });
    const special = await tok.encode(text, null, { addSpecialTokens: true });
    cases.push({
      name: `random_${pad(k)}`,
      text,
      ids: plain.getIds(),
      ids_with_special: special.getIds(),
      tokens: plain.getTokens(),
      decoded: await tok.decode(plain.getIds(), false),
      decoded_with_special: await tok.decode(special.getIds(), false),
      decoded_skip_special: await tok.decode(special.getIds(), true),
    });
  }
  writeList(path.join(dir, 'random_cases.json'), cases);
  const dec = [];
  for (const { name: caseName, ids } of draws.ids[name]) {
    dec.push({
      name: caseName,
      ids,
      decoded_with_special: await tok.decode(ids, false),
      decoded_skip_special: await tok.decode(ids, true),
    });
  }
  writeList(path.join(dir, 'random_decode.json'), dec);
  console.log(`${name}: ${cases.length} random cases, ${dec.length} random id sequences`);
}

(async () => {
  await folder('hf_metaspace_bpe');
  await folder('hf_bytelevel_bpe');
})().catch((e) => { console.error(e); process.exit(1); });
