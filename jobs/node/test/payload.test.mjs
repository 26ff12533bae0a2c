// Payload validation and encoding against the shared vectors
// (jobs/testdata/payload_vectors.json), the ones the Go client is tested with.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, existsSync } from 'node:fs';
import { test } from 'node:test';
import protobuf from 'protobufjs';
import {
  encodePayload, InvalidOptionError, InvalidPayloadError, newTask, TypeImage, TypeText, decodeTaskMessage,
  encodeTaskMessage, uniqueKey, DefaultResultRetention,
} from '../src/index.js';

const vectorsURL = new URL('../../testdata/payload_vectors.json', import.meta.url);
const { vectors } = JSON.parse(readFileSync(vectorsURL, 'utf8'));

// payloadObject returns the vector's payload object with repeats expanded.
function payloadObject(v) {
  if (v.payload_raw !== undefined) return JSON.parse(v.payload_raw);
  const obj = structuredClone(v.payload);
  if (v.data_repeat) obj.data = Buffer.alloc(v.data_repeat.count, v.data_repeat.byte).toString('base64');
  if (v.param_repeat) {
    obj.params ??= {};
    obj.params[v.param_repeat.key] = String.fromCharCode(v.param_repeat.byte).repeat(v.param_repeat.count);
  }
  return obj;
}

// toJob turns a wire payload into what a Node caller passes: data as bytes.
function toJob(obj) {
  const job = { ...obj };
  if (typeof job.data === 'string') job.data = Buffer.from(job.data, 'base64');
  return job;
}

test('payload vectors', async (t) => {
  assert.ok(vectors.length > 40);
  for (const v of vectors) {
    if (v.decode_only) continue; // problems of received JSON bytes: a producer cannot make them
    await t.test(v.name, () => {
      const obj = payloadObject(v);
      const job = toJob(obj);
      let err = null;
      let task;
      try {
        task = newTask(v.type, job);
      } catch (e) {
        err = e;
      }
      if (v.valid) {
        assert.equal(err, null, `want valid, got ${err?.message}`);
        assert.equal(task.type, v.type);
        // The payload is JSON that means the same job.
        const back = JSON.parse(task.payload.toString('utf8'));
        for (const k of ['guest', 'input', 'output', 'batch']) assert.equal(back[k] ?? '', obj[k] ?? '', k);
        assert.equal(back.data, obj.data ?? undefined);
        assert.deepEqual(back.params ?? {}, obj.params ?? {});
      } else {
        assert.ok(err instanceof InvalidPayloadError, `want InvalidPayloadError containing ${JSON.stringify(v.error)}, got ${err}`);
        assert.ok(err.message.includes(v.error), `error ${JSON.stringify(err.message)} does not contain ${JSON.stringify(v.error)}`);
      }
    });
  }
});

test('payload bytes are what Go writes', () => {
  // Key order guest,input,data,output,params(sorted),batch; Go's HTML-safe escapes.
  assert.equal(
    encodePayload({ batch: 'b', params: { z: '1', a: '<&>' }, output: 's3://out/o.json', data: '', guest: 'hello' }).toString(),
    '{"guest":"hello","data":"","output":"s3://out/o.json","params":{"a":"\\u003c\\u0026\\u003e","z":"1"},"batch":"b"}');
  assert.equal(encodePayload({ guest: 'wordcount', input: 's3://data/a\u2028.txt', params: {} }).toString(),
    '{"guest":"wordcount","input":"s3://data/a\\u2028.txt"}');
  assert.equal(encodePayload({ guest: 'hello', data: Buffer.from([0, 1, 255]) }).toString(), '{"guest":"hello","data":"AAH/"}');
  assert.equal(encodePayload({ guest: 'hello', data: 'Ada', input: null, output: undefined }).toString(), '{"guest":"hello","data":"QWRh"}');
});

test('jobs and options are checked before Redis', () => {
  assert.throws(() => newTask(TypeText, { guest: 'hello', data: 'x', ouput: 's3://a/b' }), /unknown field "ouput"/);
  assert.throws(() => newTask(TypeText, { guest: 'hello', data: 7 }), InvalidPayloadError);
  assert.throws(() => newTask(TypeText, { guest: 'hello', data: 'x', params: { k: 3 } }), InvalidPayloadError);
  assert.throws(() => newTask(TypeText, { guest: 'hello', data: 'x', batch: '\ud800' }), /batch id is not valid UTF-8/);
  assert.throws(() => newTask('wasm:bogus', { guest: 'hello', data: 'x' }), /task type "wasm:bogus"/);
  const bad = [
    [{ queue: ' ' }, /queue name must contain one or more characters/],
    [{ queue: '\u0085' }, /queue name/], // Go's TrimSpace trims U+0085
    [{ taskId: '\t' }, /task ID cannot be empty/],
    [{ group: 'g' }, /group option is not supported/],
    [{ group: '' }, /group option is not supported/],
    [{ unique: 999 }, /Unique TTL cannot be less than 1s/],
    [{ unique: 0 }, /Unique TTL cannot be less than 1s/],
    [{ maxRetry: 1.5 }, /maxRetry/],
    [{ timeout: '10s' }, /timeout/],
    [{ processAt: new Date(), processIn: 1000 }, /not both/],
    [{ deadline: 'tomorrow' }, /deadline/],
    [{ qeueu: 'x' }, /unknown option "qeueu"/],
  ];
  for (const [opts, re] of bad) {
    assert.throws(() => newTask(TypeText, { guest: 'hello', data: 'x' }, opts), (e) => e instanceof InvalidOptionError && re.test(e.message), JSON.stringify(opts));
  }
  assert.doesNotThrow(() => newTask(TypeText, { guest: 'hello', data: 'x' }, { queue: '\ufeff' })); // not space for Go
});

test('inline jobs without output keep their result 24 h', () => {
  assert.equal(newTask(TypeText, { guest: 'hello', data: 'x' }).options.retentionMs, DefaultResultRetention);
  assert.equal(newTask(TypeText, { guest: 'hello', data: 'x' }, { retention: 0 }).options.retentionMs, 0);
  assert.equal(newTask(TypeText, { guest: 'hello', data: 'x', output: 's3://out/x' }).options.retentionMs, 0);
  assert.equal(newTask(TypeImage, { guest: 'ocr', input: 's3://inputs/x.png' }).options.retentionMs, 0);
});

test('unique key is base.UniqueKey', () => {
  const payload = Buffer.from('{"guest":"hello","data":"eA=="}');
  // md5 of the payload, as asynq's base.UniqueKey computes it.
  const md5 = createHash('md5').update(payload).digest('hex');
  assert.equal(uniqueKey('default', TypeText, payload), `asynq:{default}:unique:wasm:text:${md5}`);
});

test('TaskMessage round trip leaves zero fields out', () => {
  const b = encodeTaskMessage({ type: TypeText, payload: Buffer.from('{}'), id: 'x', queue: 'q', retry: 0, timeout: 0, deadline: 0, uniqueKey: '', groupKey: '', retention: 0 });
  assert.equal(Buffer.from(b).toString('hex'), '0a097761736d3a74657874' + '12027b7d' + '1a0178' + '220171');
  const m = decodeTaskMessage(b);
  assert.equal(m.retry, 0);
  assert.equal(m.id, 'x');
});

test('the shipped descriptor is asynq.proto', () => {
  const shipped = JSON.parse(readFileSync(new URL('../proto/task_message.json', import.meta.url), 'utf8'));
  const root = protobuf.loadSync(new URL('../proto/asynq.proto', import.meta.url).pathname);
  assert.deepEqual(shipped.nested.asynq.nested.TaskMessage, root.lookupType('asynq.TaskMessage').toJSON());
  // And asynq.proto is asynq v0.26.0's, where Go's module cache has it.
  let dir = null;
  try {
    dir = execFileSync('go', ['list', '-m', '-f', '{{.Dir}}', 'github.com/hibiken/asynq'], { cwd: new URL('../../..', import.meta.url).pathname }).toString().trim();
  } catch { /* no Go toolchain: the Go compatibility test covers it */ }
  if (dir && existsSync(`${dir}/internal/proto/asynq.proto`)) {
    assert.equal(readFileSync(new URL('../proto/asynq.proto', import.meta.url), 'utf8'), readFileSync(`${dir}/internal/proto/asynq.proto`, 'utf8'));
  }
});
