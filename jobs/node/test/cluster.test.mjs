// The Node client on a real three-master Redis Cluster (started by `make
// test`), given the same redis-cluster:// URL as the wasmjobs command: jobs
// enqueued one by one and many at a time over several queues, a batch
// started, canceled and retried, and a job run from Node by the Go worker on the cluster, its
// completion seen through the cluster's pub/sub. The cluster is shared by
// the tests that use it, so everything here runs on queues of its own.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import Redis from 'ioredis';
import * as Minio from 'minio';
import { Client, JobNotFoundError, TypeText } from '../src/index.js';
import { batchFixture } from './batch-fixture.mjs';
import { env, needs, randomHex } from './helpers.mjs';

const run = promisify(execFile);
const repo = new URL('../../..', import.meta.url).pathname;

describe('Redis Cluster', { skip: needs('redisCluster', 's3'), timeout: 300_000 }, () => {
  let url, raw, client;
  const q = (name) => `node-cluster-${name}-${suffix}`;
  const suffix = randomHex(4);

  before(async () => {
    url = 'redis-cluster://' + env.redisCluster;
    raw = new Redis.Cluster(env.redisCluster.split(',').map((a) => ({ host: a.split(':')[0], port: Number(a.split(':')[1]) })));
    client = new Client({ redis: url });
  });
  after(async () => {
    await client?.close();
    raw?.disconnect();
  });

  test('enqueue and enqueueMany write asynq tasks on the cluster', async () => {
    const one = await client.enqueueText({ guest: 'hello', data: Buffer.from('Ada') }, { queue: q('a') });
    assert.equal(await raw.hget(`asynq:{${q('a')}}:t:${one.id}`, 'state'), 'pending');
    const jobs = [...Array(60).keys()].map((i) => ({ guest: 'hello', data: Buffer.from(`n${i}`), options: { queue: q(['a', 'b', 'c'][i % 3]) } }));
    const res = await client.enqueueMany(jobs, { type: TypeText });
    for (const r of res) assert.equal(r.status, 'fulfilled', r.reason?.message);
    for (const name of ['a', 'b', 'c']) {
      assert.equal(await raw.llen(`asynq:{${q(name)}}:pending`), name === 'a' ? 21 : 20, name);
      assert.equal(await raw.sismember('asynq:queues', q(name)), 1, name);
    }
    await assert.rejects(client.getResult(q('a'), 'no-such-job'), JobNotFoundError);
  });

  test('a batch starts on the cluster', async () => {
    const id = `nc-${suffix}`;
    const st = await client.startBatch({ id, guest: 'wordcount', type: 'text', input: `s3://in-${suffix}/x/`, queue: q('batch') });
    assert.equal(st.id, id);
    assert.ok(await raw.zscore('wasmjobs:batches', id));
    assert.equal((await client.batchStatus(id)).spec.queue, q('batch'));
  });

  test('cancelBatch and retryFailed on the cluster: queue and batch keys on their own nodes', async () => {
    const fx = batchFixture(client, raw, () => q('cb'));
    const a = await fx.plant(`ncc-${suffix}`, { 'in/p1': 'pending', 'in/s1': 'scheduled', 'in/a1': 'active' });
    const st = await client.cancelBatch(a.id);
    assert.deepEqual([st.canceled, st.finished], [2, false]);
    assert.equal(await raw.exists(`asynq:{${a.queue}}:t:${a.tasks['in/p1']}`), 0);
    assert.equal(await raw.exists(`asynq:{${a.queue}}:t:${a.tasks['in/s1']}`), 0);
    assert.equal(await raw.hget(`wasmjobs:batch:{${a.id}}:status`, 'in/s1'), 'canceled');
    assert.equal(await raw.hget(`asynq:{${a.queue}}:t:${a.tasks['in/a1']}`, 'state'), 'active');

    const b = await fx.plant(`ncr-${suffix}`, { 'in/gone': 'deleted-failed', 'in/arch': 'archived-failed' });
    assert.deepEqual(await client.retryFailed(b.id), { retried: 2, missing: [] });
    for (const key of ['in/gone', 'in/arch']) {
      assert.equal(await raw.hget(`asynq:{${b.queue}}:t:${b.tasks[key]}`, 'state'), 'pending', key);
      assert.equal(await raw.hget(`wasmjobs:batch:{${b.id}}:status`, key), 'pending', key);
    }
  });

  test('run: a Node job done by the Go worker on the cluster', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'wasmjobs-node-cluster-'));
    let worker, log = '';
    try {
      const bin = join(tmp, 'wasmjobs');
      await run('go', ['build', '-o', bin, './cmd/wasmjobs'], { cwd: repo, timeout: 300_000 });
      const [host, port] = env.s3.split(':');
      const s3 = new Minio.Client({ endPoint: host, port: Number(port), useSSL: false, accessKey: env.s3Access, secretKey: env.s3Secret });
      const guestBucket = `g-${randomHex(8)}`;
      await s3.makeBucket(guestBucket);
      const flags = ['--redis', url, '--s3-endpoint', env.s3, '--s3-access-key', env.s3Access, '--s3-secret-key', env.s3Secret,
        '--guest-bucket', guestBucket, '--cache-dir', join(tmp, 'cache'), '--log-level', 'warn'];
      await run(bin, ['guest', 'push', 'internal/guests/wasm/hello.wasm', '--name', 'hello', ...flags], { cwd: repo });
      worker = spawn(bin, ['worker', ...flags, '--queues', `${q('run')}=1`], { cwd: repo, stdio: ['ignore', 'ignore', 'pipe'] });
      worker.stderr.on('data', (d) => { log = (log + d).slice(-10_000); });
      const out = await client.run({ guest: 'hello', data: Buffer.from('Cluster') }, { timeout: 60_000, options: { queue: q('run') } }).catch((err) => {
        throw new Error(`${err.message}\nworker log:\n${log}`);
      });
      assert.match(out.toString(), /Cluster/);
    } finally {
      if (worker && worker.exitCode === null) {
        const exited = new Promise((r) => worker.once('exit', r));
        worker.kill('SIGTERM');
        await exited;
      }
      await rm(tmp, { recursive: true, force: true });
    }
  });
});
