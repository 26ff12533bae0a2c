// Include globs against the shared vectors (jobs/testdata/include_vectors.json),
// the ones the Go client is tested with.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { batchSpecWithDefaults, InvalidPayloadError } from '../src/index.js';

const { vectors } = JSON.parse(readFileSync(new URL('../../testdata/include_vectors.json', import.meta.url), 'utf8'));

test('include vectors', () => {
  assert.ok(vectors.length >= 20);
  for (const v of vectors) {
    const spec = { guest: 'wordcount', type: 'text', input: 's3://data/in/', include: v.pattern };
    if (v.valid) {
      assert.equal(batchSpecWithDefaults(spec).include, v.pattern, v.pattern);
    } else {
      assert.throws(() => batchSpecWithDefaults(spec), (err) => err instanceof InvalidPayloadError && /include glob/.test(err.message), JSON.stringify(v.pattern));
    }
  }
});

test('include: lone surrogates are not UTF-8', () => {
  assert.throws(() => batchSpecWithDefaults({ guest: 'wordcount', type: 'text', input: 's3://data/in/', include: 'a\ud800' }), /not valid UTF-8/);
});
