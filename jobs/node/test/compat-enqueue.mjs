#!/usr/bin/env node
// compat-enqueue.mjs REDIS_URL SPEC_JSON: enqueues the jobs of SPEC_JSON with
// the Node client and prints what happened as JSON on stdout. Driven by the
// Go test jobs/node_compat_test.go, which enqueues the same jobs with the Go
// client into another database and compares the two.
//
// SPEC_JSON is an array of {type, job, options}: job is a wasmjobs job with
// data as base64 (data_b64); options are the client's, with instants as epoch
// milliseconds. Output: {"results": [{id, queue, state} | {error, name}],
// "scripts": {goVariableName: sha1}}.
import { Client, scripts } from '../src/index.js';

const [url, specText] = process.argv.slice(2);
if (!url || !specText) {
  console.error('usage: compat-enqueue.mjs REDIS_URL SPEC_JSON');
  process.exit(2);
}
const client = new Client({ redis: url });
const results = [];
try {
  for (const { type, job, options } of JSON.parse(specText)) {
    const { data_b64: b64, ...rest } = job;
    const j = b64 === undefined ? rest : { ...rest, data: Buffer.from(b64, 'base64') };
    try {
      const { id, queue, state } = await client.enqueue(type, j, options);
      results.push({ id, queue, state });
    } catch (err) {
      results.push({ error: err.message, name: err.name });
    }
  }
} finally {
  await client.close();
}
const shas = Object.fromEntries(Object.entries(scripts).map(([k, v]) => [k, v.sha]));
process.stdout.write(JSON.stringify({ results, scripts: shas }) + '\n');
