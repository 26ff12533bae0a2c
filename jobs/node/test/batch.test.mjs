// Batch specs: the same defaults, derived id and JSON as the Go client.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { batchSpecWithDefaults, encodeBatchSpec, InvalidPayloadError } from '../src/index.js';

test("derived id and JSON equal the Go client's", () => {
  // Computed with Go: jobs.BatchSpec{...}.WithDefaults() and json.Marshal.
  const s = batchSpecWithDefaults({ guest: 'wordcount', type: 'text', input: 's3://data/books/', params: { top: '5' } });
  assert.equal(s.id, 'b-a0cfc075b08fcfbb');
  assert.equal(encodeBatchSpec(s),
    '{"id":"b-a0cfc075b08fcfbb","guest":"wordcount","type":"wasm:text","input":"s3://data/books/",' +
    '"output":"s3://data/wasmjobs-results/b-a0cfc075b08fcfbb/","queue":"default","params":{"top":"5"},"retention_seconds":604800}');
});

test('invalid specs are refused before Redis', () => {
  const ok = { guest: 'wordcount', type: 'text', input: 's3://data/in/' };
  for (const [spec, msg] of [
    [{ ...ok, type: 'sound' }, /batch type/],
    [{ ...ok, guest: '' }, /guest is empty/],
    [{ ...ok, input: 'http://x/y' }, /not an s3:\/\/bucket\/prefix URL/],
    [{ ...ok, input: 's3://X/y/' }, /bucket/],
    [{ ...ok, output: 's3://data/in/results/' }, /lies under its input/],
    [{ ...ok, id: 'bad id!' }, /batch id/],
    [{ ...ok, maxSize: -1 }, /max size/],
    [{ ...ok, retentionSeconds: -5 }, /batch retention/],
    [{ ...ok, retentionSeconds: 1.5 }, /batch retention/],
    [{ ...ok, include: '[a' }, /include glob/],
    [{ ...ok, ouput: 's3://x/y/' }, /unknown field "ouput"/],
  ]) {
    assert.throws(() => batchSpecWithDefaults(spec), (err) => err instanceof InvalidPayloadError && msg.test(err.message), JSON.stringify(spec));
  }
});
