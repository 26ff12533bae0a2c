// startBatch claims the batch's output prefix under the same key as Go's
// CreateBatch (jobs/batchoutput_test.go pins the same key literal).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BatchNotFoundError, Client, InvalidPayloadError, OutputInUseError } from '../src/index.js';
import { freshDB, needs, randomHex, rawRedis } from './helpers.mjs';

describe('batch output claim', { skip: needs('redis') }, () => {
  let url, raw, client;
  before(async () => {
    ({ url } = await freshDB());
    raw = rawRedis(url);
    client = new Client({ redis: url });
  });
  after(async () => {
    await client?.close();
    raw?.disconnect();
  });

  test('a second batch on an owned output prefix is refused; the owner resumes', async () => {
    const b = `s3://t-${randomHex(6)}`;
    const owner = { id: `own-${randomHex(4)}`, guest: 'wordcount', type: 'text', input: `${b}/in/`, output: `${b}/out/` };
    await client.startBatch(owner);
    assert.equal(await raw.get(`wasmjobs:batch-output:${b.slice(5)}/out`), owner.id);
    for (const output of [`${b}/out/`, `${b}/out`, `${b}/out//`]) {
      const id = `thief-${randomHex(4)}`;
      await assert.rejects(client.startBatch({ ...owner, id, input: `${b}/elsewhere/`, output }),
        (err) => err instanceof OutputInUseError && err instanceof InvalidPayloadError && err.owner === owner.id &&
          /belongs to batch/.test(err.message), output);
      await assert.rejects(client.batchStatus(id), BatchNotFoundError);
    }
    const again = await client.startBatch(owner);
    assert.equal(again.id, owner.id);
    // Nested prefixes are prefixes of their own (see jobs.Client.CreateBatch).
    await client.startBatch({ ...owner, id: `nest-${randomHex(4)}`, output: `${b}/out/sub/` });
  });

  test('a Go-claimed prefix refuses a Node batch', async () => {
    const b = `t-${randomHex(6)}`;
    const goID = `go-${randomHex(4)}`;
    await raw.hset(`wasmjobs:batch:{${goID}}`, 'spec', '{}');
    await raw.set(`wasmjobs:batch-output:${b}/res`, goID);
    await assert.rejects(client.startBatch({ id: `n-${randomHex(4)}`, guest: 'wordcount', type: 'text', input: `s3://${b}/in/`, output: `s3://${b}/res/` }),
      (err) => err instanceof OutputInUseError && err.owner === goID);
  });

  test('a prefix whose owner expired or was deleted is taken over', async () => {
    const b = `t-${randomHex(6)}`;
    await raw.set(`wasmjobs:batch-output:${b}/res`, 'gone-batch');
    const id = `n-${randomHex(4)}`;
    const st = await client.startBatch({ id, guest: 'wordcount', type: 'text', input: `s3://${b}/in/`, output: `s3://${b}/res/`, retentionSeconds: 3600 });
    assert.equal(st.id, id);
    assert.equal(st.spec.retentionSeconds, 3600);
    assert.equal(st.spec.retention_seconds, undefined);
    assert.equal(await raw.get(`wasmjobs:batch-output:${b}/res`), id);
    assert.ok(await raw.zscore('wasmjobs:batches', id), 'the new batch is listed');
  });
});
