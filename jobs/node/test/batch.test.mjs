// Batch specs: the same defaults, derived id and JSON as the Go client;
// cancelBatch and retryFailed on a real Redis (jobs/node_batch_compat_test.go
// compares them with Go's CancelBatch and RetryFailed state for state).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { batchSpecWithDefaults, Client, decodeTaskMessage, encodeBatchSpec, InvalidPayloadError, TypeText } from '../src/index.js';
import { itemJob } from '../src/batch.js';
import { batchFixture } from './batch-fixture.mjs';
import { freshDB, needs, rawRedis } from './helpers.mjs';

test("derived id and JSON equal the Go client's", () => {
  // Computed with Go: jobs.BatchSpec{...}.WithDefaults() and json.Marshal.
  const s = batchSpecWithDefaults({ guest: 'wordcount', type: 'text', input: 's3://data/books/', params: { top: '5' } });
  assert.equal(s.id, 'b-a0cfc075b08fcfbb');
  assert.equal(encodeBatchSpec(s),
    '{"id":"b-a0cfc075b08fcfbb","guest":"wordcount","type":"wasm:text","input":"s3://data/books/",' +
    '"output":"s3://data/wasmjobs-results/b-a0cfc075b08fcfbb/","queue":"default","params":{"top":"5"},"retention_seconds":604800}');
});

test("a record batch's derived id and JSON equal the Go client's", () => {
  // Computed with Go: jobs.BatchSpec{..., Records: &jobs.RecordsSpec{...}}.WithDefaults() and json.Marshal.
  const s = batchSpecWithDefaults({ guest: 'langid', type: 'text', input: 's3://data/reviews/', records: { format: 'csv', column: 'text', merge: true } });
  assert.equal(s.id, 'b-bcd0088f07a6de20');
  assert.equal(encodeBatchSpec(s),
    '{"id":"b-bcd0088f07a6de20","guest":"langid","type":"wasm:text","input":"s3://data/reviews/","output":"s3://data/wasmjobs-results/b-bcd0088f07a6de20/",' +
    '"queue":"default","records":{"format":"csv","column":"text","header":true,"shard_bytes":8388608,"shard_records":10000,"merge":true},"retention_seconds":604800}');
  for (const [records, msg] of [
    [{ format: 'xml' }, /format "xml"/],
    [{ format: 'jsonl', shardBytes: -1 }, /shard bytes/],
    [{ format: 'jsonl', shardRecords: 1.5 }, /shard records/],
    [{ format: 'tar', members: 'jpg' }, /unknown field "members"/],
  ]) {
    assert.throws(() => batchSpecWithDefaults({ guest: 'langid', type: 'text', input: 's3://data/in/', records }), (err) => err instanceof InvalidPayloadError && msg.test(err.message), JSON.stringify(records));
  }
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

test("itemJob builds Go's Spec.ItemJob payload", () => {
  // Computed with Go: batch.Spec{...}.WithDefaults().ItemJob(key).Payload.Encode().
  const s = batchSpecWithDefaults({ guest: 'wordcount', type: 'text', input: 's3://data/books' });
  const { type, job, options } = itemJob({ ...s, params: {} }, 'books/a.txt');
  assert.deepEqual([type, options], [TypeText, { queue: 'default' }]);
  assert.equal(s.id, 'b-de5c90616497efe3');
  assert.deepEqual(job, { guest: 'wordcount', input: 's3://data/books/a.txt', output: 's3://data/wasmjobs-results/b-de5c90616497efe3//a.txt.wordcount.json', params: {}, batch: s.id });
});

describe('cancelBatch and retryFailed', { skip: needs('redis') }, () => {
  let url, raw, client, fx;
  before(async () => {
    ({ url } = await freshDB());
    raw = rawRedis(url);
    client = new Client({ redis: url });
    fx = batchFixture(client, raw);
  });
  after(async () => {
    await client?.close();
    raw?.disconnect();
  });

  test('cancelBatch deletes the waiting jobs at once and leaves a running one', async () => {
    const { id, queue, tasks } = await fx.plant('cancel-a', { 'in/p1': 'pending', 'in/p2': 'pending', 'in/s1': 'scheduled', 'in/r1': 'retry', 'in/a1': 'active' });
    const st = await client.cancelBatch(id);
    assert.deepEqual([st.status.cancelRequested, st.canceled, st.finished, st.status.total, st.status.canceled], [true, 4, false, 5, 4]);
    for (const key of ['in/p1', 'in/p2', 'in/s1', 'in/r1']) {
      assert.equal(await raw.exists(`asynq:{${queue}}:t:${tasks[key]}`), 0, key);
      assert.equal(await raw.hget(`wasmjobs:batch:{${id}}:status`, key), 'canceled', key);
      assert.deepEqual(JSON.parse(await raw.hget(`wasmjobs:batch:{${id}}:items`, key)),
        { key, status: 'canceled', task_id: tasks[key], error: 'batch canceled' }, key);
    }
    assert.deepEqual([await raw.llen(`asynq:{${queue}}:pending`), await raw.zcard(`asynq:{${queue}}:scheduled`), await raw.zcard(`asynq:{${queue}}:retry`)],
      [1, 0, 0]); // the batch's plan task stays
    assert.equal(await raw.hget(`asynq:{${queue}}:t:${tasks['in/a1']}`, 'state'), 'active');
    assert.equal(await raw.hget(`wasmjobs:batch:{${id}}:status`, 'in/a1'), 'pending');
    const after = await client.batchStatus(id);
    assert.deepEqual([after.canceled, after.finished, after.cancelRequested], [4, null, true]);
    // Again: nothing left to cancel but the running job.
    assert.deepEqual(await client.cancelBatch(id).then((r) => [r.canceled, r.finished]), [0, false]);
  });

  test('cancelBatch finishes a batch with nothing running', async () => {
    const { id } = await fx.plant('cancel-b', { 'in/p1': 'pending', 'in/s1': 'scheduled', 'in/d1': 'done' });
    const st = await client.cancelBatch(id);
    assert.deepEqual([st.canceled, st.finished, st.status.finished instanceof Date], [2, true, true]);
    const after = await client.batchStatus(id);
    assert.ok(after.finished instanceof Date && !after.manifestWritten);
    assert.deepEqual([after.done, after.canceled], [1, 2]);
    assert.ok(await raw.ttl(`wasmjobs:batch:{${id}}`) > 0, 'a finished batch expires');
  });

  test('retryFailed enqueues a job that is gone anew, as Go does', async () => {
    const spec = { id: 'vec-1', guest: 'sha256:' + '0f'.repeat(32), input: 's3://data/in/', output: 's3://out/res/', params: { top: '5', a: '<&>' }, maxRetry: 2 };
    const { id, queue, tasks } = await fx.plant(spec, { 'in/sub/é x.txt': 'deleted-failed', 'in/arch.txt': 'archived-failed', 'in/ok.txt': 'done' });
    assert.equal(tasks['in/sub/é x.txt'], 'vec-1-ad050460fabfd31e943b3dbe'); // Go's ItemTaskID(id, key, "etag1")
    assert.deepEqual(await client.retryFailed(id), { retried: 2, missing: [] });
    const t = tasks['in/sub/é x.txt'];
    const [msg, state] = await raw.hmgetBuffer(`asynq:{${queue}}:t:${t}`, 'msg', 'state');
    assert.equal(state.toString(), 'pending');
    const m = decodeTaskMessage(msg);
    assert.deepEqual([m.id, m.queue, m.type, Number(m.retry)], [t, queue, TypeText, 2]);
    // Computed with Go: Spec.ItemJob("in/sub/é x.txt").Payload.Encode().
    assert.equal(Buffer.from(m.payload).toString(), '{"guest":"sha256:' + '0f'.repeat(32) + '","input":"s3://data/in/sub/é x.txt",' +
      '"output":"s3://out/res/sub/é x.txt.0f0f0f0f0f0f.json","params":{"a":"\\u003c\\u0026\\u003e","top":"5"},"batch":"vec-1"}');
    assert.equal(await raw.hget(`asynq:{${queue}}:t:${tasks['in/arch.txt']}`, 'state'), 'pending');
    const st = await client.batchStatus(id);
    assert.deepEqual([st.failed, st.done, st.finished], [0, 1, null]);
    assert.equal(await raw.hget(`wasmjobs:batch:{${id}}:status`, 'in/sub/é x.txt'), 'pending');
    // Nothing failed any more: nothing to retry.
    assert.deepEqual(await client.retryFailed(id), { retried: 0, missing: [] });
  });

  test('retryFailed reports an item whose task id was taken meanwhile', async () => {
    const { id, queue, tasks } = await fx.plant('retry-taken', { 'in/x': 'deleted-failed' });
    // The enqueue script finds the id taken (a concurrent retry's job)
    // after runTask found none: as if it came in between.
    await raw.hset(`asynq:{${queue}}:t:${tasks['in/x']}`, 'msg', 'x', 'state', 'completed');
    await raw.srem('asynq:queues', queue);
    assert.deepEqual(await client.retryFailed(id), { retried: 0, missing: ['in/x'] });
  });
});
