// End to end: jobs enqueued from Node are processed by the Go worker
// (`wasmjobs worker`, built here from ./cmd/wasmjobs) against the real Redis
// and MinIO of `make test`; outputs are checked byte for byte, and the tasks
// are checked through asynq's own Inspector (test/inspect/inspect.go).
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import * as Minio from 'minio';
import { Client, JobFailedError, JobNotDoneError, JobNotFoundError, JobRunningError, ResultNotJSONError, TimeoutError, TypeText } from '../src/index.js';
import { env, freshDB, needs, randomHex } from './helpers.mjs';

const run = promisify(execFile);
const repo = new URL('../../..', import.meta.url).pathname;
const queue = 'node-e2e';
const jobsCount = 300;
const texts = [
  'the quick brown fox jumps over the lazy dog the end',
  'to be or not to be that is the question',
  'a a a b b c',
  'Ünïcödé wörds, wörds; and punctuation! and more punctuation?',
  '',
  'one\ntwo two\nthree three three\n',
];

// runWithInput runs a command with stdin and resolves with its stdout bytes.
function runWithInput(cmd, args, input) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: repo, stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [], err = [];
    p.stdout.on('data', (d) => out.push(d));
    p.stderr.on('data', (d) => err.push(d));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${Buffer.concat(err)}`))));
    p.stdin.end(input);
  });
}

async function streamBytes(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return Buffer.concat(chunks);
}

// pool runs fn over items with at most n at once.
async function pool(items, n, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  }));
}

describe('Node producer, Go worker', { skip: needs('redis', 's3'), timeout: 600_000 }, () => {
  let tmp, bin, inspect, url, s3, dataBucket, flags, worker, workerLog = '', client;

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'wasmjobs-node-e2e-'));
    bin = join(tmp, 'wasmjobs');
    inspect = join(tmp, 'inspect');
    await Promise.all([
      run('go', ['build', '-o', bin, './cmd/wasmjobs'], { cwd: repo, timeout: 300_000 }),
      run('go', ['build', '-o', inspect, 'jobs/node/test/inspect/inspect.go'], { cwd: repo, timeout: 300_000 }),
    ]);
    ({ url } = await freshDB());
    const [host, port] = env.s3.split(':');
    s3 = new Minio.Client({ endPoint: host, port: Number(port), useSSL: false, accessKey: env.s3Access, secretKey: env.s3Secret });
    const guestBucket = `g-${randomHex(8)}`;
    dataBucket = `d-${randomHex(8)}`;
    for (let i = 0; ; i++) { // MinIO may still be starting
      try {
        await s3.makeBucket(guestBucket);
        await s3.makeBucket(dataBucket);
        break;
      } catch (err) {
        if (i >= 60) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    flags = ['--redis', url, '--s3-endpoint', env.s3, '--s3-access-key', env.s3Access, '--s3-secret-key', env.s3Secret,
      '--guest-bucket', guestBucket, '--cache-dir', join(tmp, 'cache'), '--log-level', 'warn'];
    for (const g of ['hello', 'wordcount']) {
      await run(bin, ['guest', 'push', `internal/guests/wasm/${g}.wasm`, '--name', g, ...flags], { cwd: repo });
    }
    await run(bin, ['guest', 'push', 'internal/guests/guesttest/wasm/misbehave.wasm', '--name', 'misbehave', ...flags], { cwd: repo });
    worker = spawn(bin, ['worker', ...flags, '--queues', `${queue}=2,default=1`, '--concurrency', '8', '--poll-interval', '20ms'],
      { cwd: repo, stdio: ['ignore', 'ignore', 'pipe'] });
    worker.stderr.on('data', (d) => { workerLog = (workerLog + d).slice(-20_000); });
    client = new Client({ redis: url });
  });

  after(async () => {
    await client?.close();
    if (worker && worker.exitCode === null) {
      const exited = new Promise((r) => worker.once('exit', r));
      worker.kill('SIGTERM');
      const timer = setTimeout(() => worker.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test(`${jobsCount} jobs enqueued from Node, processed by the Go worker`, async () => {
    // What the guest makes of each text, computed by the same guest locally.
    const want = await Promise.all(texts.map((t) => runWithInput(bin, ['run', 'internal/guests/wasm/wordcount.wasm', '--param', 'top=3', '--cache-dir', join(tmp, 'cache')], t)));
    const ids = new Array(jobsCount);
    await pool([...Array(jobsCount).keys()], 32, (i) => s3.putObject(dataBucket, `in/doc-${i}.txt`, Buffer.from(texts[i % texts.length])));

    const jobs = [...Array(jobsCount).keys()].map((i) => ({
      guest: 'wordcount', input: `s3://${dataBucket}/in/doc-${i}.txt`, output: `s3://${dataBucket}/out/doc-${i}.json`, params: { top: '3' },
    }));
    const res = await client.enqueueMany(jobs, { type: TypeText, queue, maxRetry: 3, timeout: 120_000, retention: 3_600_000 });
    res.forEach((r, i) => {
      assert.equal(r.status, 'fulfilled', r.reason?.message);
      ids[i] = r.value.id;
    });

    // Every job completes...
    await pool(ids, 64, async (id) => {
      try {
        await client.wait(queue, id, { timeout: 240_000 });
      } catch (err) {
        throw new Error(`${id}: ${err.message}\nworker log:\n${workerLog}`);
      }
    });
    // ...with the right output object, stamped with its task id.
    await pool([...Array(jobsCount).keys()], 32, async (i) => {
      const key = `out/doc-${i}.json`;
      const got = await streamBytes(await s3.getObject(dataBucket, key));
      assert.deepEqual(got, want[i % texts.length], `${key}: ${got} want ${want[i % texts.length]}`);
      const stat = await s3.statObject(dataBucket, key);
      const meta = Object.fromEntries(Object.entries(stat.metaData).map(([k, v]) => [k.toLowerCase().replace(/^x-amz-meta-/, ''), v]));
      assert.equal(meta['wasmjobs-task-id'], ids[i], `${key} metadata ${JSON.stringify(stat.metaData)}`);
    });

    // asynq's Inspector sees every task, completed, as enqueued.
    const { stdout } = await run(inspect, ['-redis', url, '-queue', queue, '-states', 'pending,active,retry,archived,completed'], { maxBuffer: 64 << 20 });
    const tasks = stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(tasks.length, jobsCount);
    const byId = new Map(tasks.map((t) => [t.id, t]));
    ids.forEach((id, i) => {
      const t = byId.get(id);
      assert.ok(t, `task ${id} not seen by the Inspector`);
      assert.deepEqual(
        { queue: t.queue, type: t.type, state: t.state, max_retry: t.max_retry, timeout_seconds: t.timeout_seconds, retention_seconds: t.retention_seconds },
        { queue, type: TypeText, state: 'completed', max_retry: 3, timeout_seconds: 120, retention_seconds: 3600 });
      assert.deepEqual(JSON.parse(t.payload), jobs[i]);
    });
  });

  test('startBatch: a Go worker plans and runs the batch; batchStatus follows it', async () => {
    const n = 40;
    await pool([...Array(n).keys()], 16, (i) => s3.putObject(dataBucket, `batch/in/${String(i).padStart(3, '0')}.txt`,
      Buffer.from(i % 10 === 7 ? Buffer.from([0x66, 0xff]) : Buffer.from(`batch text ${i}`))));
    const spec = { guest: 'wordcount', type: 'text', input: `s3://${dataBucket}/batch/in/`, output: `s3://${dataBucket}/batch/out/` };
    const started = await client.startBatch(spec);
    assert.match(started.id, /^b-[0-9a-f]{16}$/);
    await assert.rejects(client.waitBatch(started.id, { timeout: 1, interval: 1 }), TimeoutError);
    const seen = [];
    const st = await client.waitBatch(started.id, { timeout: 120_000, interval: 100, onProgress: (p) => seen.push(p.done + p.failed) })
      .catch((err) => { throw new Error(`${err.message}\nworker log:\n${workerLog}`); });
    assert.ok(seen.length > 0 && seen.at(-1) === n && seen.every((v, i) => i === 0 || v >= seen[i - 1]), `progress ${seen}`);
    assert.deepEqual({ total: st.total, done: st.done, failed: st.failed, listed: st.listed }, { total: n, done: 36, failed: 4, listed: true });
    // retryFailed runs the four failed items again (they fail again: the
    // bytes are still not UTF-8), and the batch finishes once more.
    assert.deepEqual(await client.retryFailed(started.id), { retried: 4, missing: [] });
    const again2 = await client.waitBatch(started.id, { timeout: 120_000, interval: 100 });
    assert.deepEqual({ done: again2.done, failed: again2.failed }, { done: 36, failed: 4 });
    assert.deepEqual(await client.retryFailed(started.id).then((r) => r.retried), 4);
    await client.waitBatch(started.id, { timeout: 120_000, interval: 100 });
    // cancelBatch asks the workers to stop it.
    assert.equal((await client.cancelBatch(started.id)).status.cancelRequested, true);
    assert.equal((await client.batchStatus(started.id)).cancelRequested, true);
    await assert.rejects(client.cancelBatch('no-such-batch'), { code: 'ERR_WASMJOBS_BATCH_NOT_FOUND' });
    // The same spec again resumes: same id, nothing new.
    const again = await client.startBatch(spec);
    assert.equal(again.id, started.id);
    await assert.rejects(client.startBatch({ ...spec, id: started.id, guest: 'hello' }), /different spec/);
    await assert.rejects(client.batchStatus('no-such-batch'), { code: 'ERR_WASMJOBS_BATCH_NOT_FOUND' });
  });

  test('startBatch with records: a JSON lines file split into shards, merged in order', async () => {
    const n = 500;
    const lines = [...Array(n).keys()].map((i) => (i % 50 === 7 ? '{"no_text":1}' : JSON.stringify({ text: `record ${i}` })));
    await s3.putObject(dataBucket, 'records/in/all.jsonl', Buffer.from(lines.join('\r\n')));
    const st = await client.startBatch({
      guest: 'misbehave', type: 'text', input: `s3://${dataBucket}/records/in/`, output: `s3://${dataBucket}/records/out/`,
      records: { format: 'jsonl', field: 'text', shardRecords: 64, merge: true },
    });
    assert.deepEqual(st.spec.records, { format: 'jsonl', field: 'text', shardBytes: 8 << 20, shardRecords: 64, merge: true });
    let fin = await client.waitBatch(st.id, { timeout: 120_000, interval: 100 })
      .catch((err) => { throw new Error(`${err.message}\nworker log:\n${workerLog}`); });
    for (let i = 0; !fin.manifestWritten && i < 300; i++) {
      await new Promise((r) => setTimeout(r, 100));
      fin = await client.batchStatus(st.id);
    }
    assert.deepEqual([fin.total, fin.done, fin.records, fin.recordsDone, fin.recordErrors, fin.manifestWritten], [8, 8, n, n, 10, true]);
    const merged = await s3.getObject(dataBucket, 'records/out/merged.jsonl');
    const out = [];
    for await (const chunk of merged) out.push(chunk);
    const got = Buffer.concat(out).toString().trimEnd().split('\n').map((l) => JSON.parse(l));
    assert.equal(got.length, n);
    got.forEach((l, i) => {
      assert.equal(l.index, i);
      if (i % 50 === 7) assert.match(l.error, /no field "text"/);
      else assert.equal(l.result, `record ${i}`);
    });
  });

  test('run: result, failure, timeout', async () => {
    const res = await client.run({ guest: 'hello', data: 'NodeJS' }, { timeout: 60_000 });
    assert.equal(res.toString(), '{"greeting":"Hello, NodeJS!"}');
    // Decoded for the caller: JSON as a value, text as a string; a result
    // that is not JSON rejects with its bytes.
    assert.deepEqual(await client.run({ guest: 'hello', data: 'JSON' }, { timeout: 60_000, decode: 'json' }), { greeting: 'Hello, JSON!' });
    const info = await client.enqueueText({ guest: 'misbehave', data: 'plain words', params: { mode: 'echo' } }, { retention: 3_600_000 });
    assert.equal(await client.wait(info.queue, info.id, { timeout: 60_000, decode: 'text' }), 'plain words');
    await assert.rejects(client.getResult(info.queue, info.id, { decode: 'json' }),
      (e) => e instanceof ResultNotJSONError && e.result.toString() === 'plain words');
    await assert.rejects(client.getResult(info.queue, info.id, { decode: 'yaml' }), /want 'buffer'/);

    await assert.rejects(client.run({ guest: 'nosuchguest', data: 'x' }, { timeout: 60_000 }),
      (e) => e instanceof JobFailedError && /nosuchguest/.test(e.reason) && /unknown guest/.test(e.message));

    await assert.rejects(client.run({ guest: 'hello', data: 'nobody' }, { options: { queue: 'nobody-listens', taskId: 'waits' }, timeout: 300 }), TimeoutError);
    await assert.rejects(client.getResult('nobody-listens', 'waits'), JobNotDoneError); // the job keeps its own fate
  });

  test('lone jobs: the enqueue wakes the worker and the worker wakes the wait, with an hour between polls', { timeout: 120_000 }, async () => {
    const lone = spawn(bin, ['worker', ...flags, '--queues', 'lone=1', '--concurrency', '2', '--poll-interval', '1h'],
      { cwd: repo, stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    lone.stderr.on('data', (d) => { log = (log + d).slice(-20_000); });
    const exited = new Promise((r) => lone.once('exit', r));
    const c = new Client({ redis: url, pollInterval: 3_600_000 });
    try {
      for (const name of ['Ada', 'Grace', 'Edsger']) {
        const res = await c.run({ guest: 'hello', data: name }, { options: { queue: 'lone' }, timeout: 60_000 })
          .catch((err) => { throw new Error(`${err.message}\nworker log:\n${log}`); });
        assert.equal(res.toString(), `{"greeting":"Hello, ${name}!"}`);
      }
      await assert.rejects(c.run({ guest: 'nosuchguest', data: 'x' }, { options: { queue: 'lone' }, timeout: 60_000 }), JobFailedError);
    } finally {
      await c.close();
      // An idle worker stops at once, not after its hour-long poll.
      lone.kill('SIGTERM');
      await exited;
    }
  });

  test('job control: getState, getJobCounts, cancel, retry, remove, as asynq\'s Inspector sees them', async () => {
    const seen = async (q, id) => {
      const { stdout } = await run(inspect, ['-redis', url, '-queue', q, '-states', 'pending,active,retry,archived,completed']);
      return stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((t) => t.id === id)?.state ?? 'gone';
    };
    // A job on a queue nobody serves.
    const idle = 'ctl-idle';
    const { id } = await client.enqueueText({ guest: 'hello', data: 'x' }, { queue: idle, maxRetry: 4 });
    let st = await client.getState(idle, id);
    assert.deepEqual([st.state, st.type, st.maxRetry, st.retried, st.lastError], ['pending', TypeText, 4, 0, '']);
    assert.deepEqual(await client.getJobCounts(idle), { pending: 1, active: 0, scheduled: 0, retry: 0, archived: 0, completed: 0 });
    await assert.rejects(client.retry(idle, id), /pending already/);
    await client.cancel(idle, id);
    assert.equal((await client.getState(idle, id)).state, 'archived');
    assert.equal(await seen(idle, id), 'archived');
    await assert.rejects(client.cancel(idle, id), /archived already/);
    await client.retry(idle, id);
    assert.equal(await seen(idle, id), 'pending');
    await client.remove(idle, id);
    assert.equal(await seen(idle, id), 'gone');
    await assert.rejects(client.getState(idle, id), JobNotFoundError);
    await assert.rejects(client.remove(idle, id), JobNotFoundError);
    assert.equal((await client.getJobCounts(idle)).pending, 0);

    // A running job (a guest that spins): remove refuses it, cancel stops
    // it through the Go worker and leaves it archived.
    const spin = await client.enqueueText({ guest: 'misbehave', data: '', params: { mode: 'loop' } }, { queue });
    for (let i = 0; (await client.getState(queue, spin.id)).state !== 'active'; i++) {
      if (i > 600) throw new Error(`the spinning job never ran:\n${workerLog}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await assert.rejects(client.remove(queue, spin.id), JobRunningError);
    await client.cancel(queue, spin.id);
    st = await client.getState(queue, spin.id);
    assert.equal(st.state, 'archived', JSON.stringify(st));
    assert.equal(await seen(queue, spin.id), 'archived');
    await client.remove(queue, spin.id);

    // A guest that succeeds and writes to stderr keeps its tail as the
    // job's log; a quiet one keeps none.
    const warnId = (await client.enqueueText({ guest: 'misbehave', data: 'logged', params: { mode: 'warn' } }, { queue })).id;
    for (let i = 0; (await client.getState(queue, warnId)).state !== 'completed'; i++) {
      if (i > 600) throw new Error(`the logging job never completed:\n${workerLog}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    st = await client.getState(queue, warnId);
    assert.ok(st.log.startsWith('…www') && st.log.endsWith('www\nmisbehave: warn marker') && st.log.length <= 2051, JSON.stringify(st.log.slice(-60)));
    const quiet = await client.enqueueText({ guest: 'hello', data: 'q' }, { queue });
    for (let i = 0; (await client.getState(queue, quiet.id)).state !== 'completed'; i++) {
      if (i > 600) throw new Error(`the quiet job never completed:\n${workerLog}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal((await client.getState(queue, quiet.id)).log, '');
  });

    test('queueEvents: completed and failed as the Go worker ends jobs', async () => {
    const events = client.queueEvents(queue);
    const seen = [];
    events.on('completed', (e) => seen.push(['completed', e.jobId]));
    events.on('failed', (e) => seen.push(['failed', e.jobId, e.failedReason]));
    try {
      await events.ready;
      const ok = await client.enqueueText({ guest: 'hello', data: 'events' }, { queue, retention: 3_600_000 });
      const bad = await client.enqueueText({ guest: 'nosuchguest', data: 'x' }, { queue });
      const has = (id) => seen.some(([, j]) => j === id);
      for (let i = 0; !has(ok.id) || !has(bad.id); i++) {
        if (i > 600) throw new Error(`events seen: ${JSON.stringify(seen)}\nworker log:\n${workerLog}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const byId = Object.fromEntries(seen.map(([ev, id, reason]) => [id, [ev, reason]]));
      assert.equal(byId[ok.id]?.[0], 'completed', JSON.stringify(seen));
      assert.equal(byId[bad.id]?.[0], 'failed', JSON.stringify(seen));
      assert.match(byId[bad.id][1], /unknown guest/);
    } finally {
      await events.close();
    }
  });

  test('examples/http-say answers through the queue', async () => {
    const server = spawn(process.execPath, ['examples/http-say/server.mjs'], {
      cwd: new URL('..', import.meta.url).pathname, env: { ...process.env, REDIS_URL: url, PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const base = await new Promise((resolve, reject) => {
        server.stdout.on('data', (d) => { const m = /http:\/\/[\d.:]+/.exec(d.toString()); if (m) resolve(m[0]); });
        server.on('exit', (code) => reject(new Error(`http-say exited: ${code}`)));
      });
      const res = await fetch(`${base}/?name=NodeJS`);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { greeting: 'Hello, NodeJS!' });
    } finally {
      server.kill('SIGTERM');
    }
  });
});
