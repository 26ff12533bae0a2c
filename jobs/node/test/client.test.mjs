// The client against a real Redis: what it stores, its errors, enqueueMany,
// getResult, run and wait. Byte-for-byte equality with asynq's Go client is
// proven by jobs/node_compat_test.go; here are the Node-side behaviours.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  Client, decodeTaskMessage, DuplicateTaskError, encodeTaskMessage, InvalidOptionError, JobFailedError, JobNotDoneError,
  JobNotFoundError, TaskIdConflictError, TimeoutError, TypeImage, TypeText,
} from '../src/index.js';
import { doneChannel, wakeChannel } from '../src/notify.js';
import { freshDB, needs, rawRedis } from './helpers.mjs';

const uuidV4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

// complete does to a pending task what asynq's worker does on success, and
// announces it as the wasmjobs worker does.
async function complete(raw, queue, id, result) {
  const key = `asynq:{${queue}}:t:${id}`;
  await raw.lrem(`asynq:{${queue}}:pending`, 0, id);
  await raw.hset(key, 'state', 'completed', 'result', result);
  await raw.hdel(key, 'pending_since');
  await raw.publish(doneChannel(queue, id), '');
}

// subscribed resolves once someone subscribes to channel.
async function subscribed(raw, channel) {
  for (;;) {
    const [, n] = await raw.pubsub('NUMSUB', channel);
    if (n > 0) return;
    await new Promise((r) => setTimeout(r, 1));
  }
}

// messages subscribes a fresh connection to channels and collects what is
// published on them.
async function messages(url, ...channels) {
  const sub = rawRedis(url);
  const got = [];
  sub.on('message', (channel) => got.push(channel));
  await sub.subscribe(...channels);
  return { got, close: () => sub.disconnect() };
}

describe('client', { skip: needs('redis') }, () => {
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

  test('enqueue stores what asynq stores', async () => {
    const t0 = BigInt(Date.now()) * 1000000n;
    const info = await client.enqueueText({ guest: 'hello', data: 'Ada' });
    assert.match(info.id, uuidV4);
    assert.deepEqual({ ...info, id: '' }, { id: '', queue: 'default', state: 'pending', type: TypeText });
    const h = await raw.hgetallBuffer(`asynq:{default}:t:${info.id}`);
    assert.deepEqual(Object.keys(h).sort(), ['msg', 'pending_since', 'state']);
    assert.equal(h.state.toString(), 'pending');
    const since = BigInt(h.pending_since.toString());
    assert.ok(since >= t0 - 1000000n && since < t0 + 5_000_000_000n, `pending_since ${since} is not unix ns near ${t0}`);
    const m = decodeTaskMessage(h.msg);
    assert.equal(m.type, TypeText);
    assert.equal(m.payload.toString(), '{"guest":"hello","data":"QWRh"}');
    assert.equal(m.id, info.id);
    assert.equal(m.queue, 'default');
    assert.equal(m.retry, 25);
    assert.equal(m.timeout, 1800);
    assert.equal(m.deadline, 0);
    assert.equal(m.retention, 86400); // inline without output
    assert.deepEqual(await raw.lrange('asynq:{default}:pending', 0, -1), [info.id]);
    assert.equal(await raw.sismember('asynq:queues', 'default'), 1);

    // pending_since is fresh per call and never repeats.
    const a = await client.enqueueText({ guest: 'hello', data: 'a' });
    const b = await client.enqueueText({ guest: 'hello', data: 'b' });
    const sa = BigInt(await raw.hget(`asynq:{default}:t:${a.id}`, 'pending_since'));
    const sb = BigInt(await raw.hget(`asynq:{default}:t:${b.id}`, 'pending_since'));
    assert.ok(sb > sa);
  });

  test('typed errors for a taken task id and a held unique lock', async () => {
    const job = { guest: 'wordcount', input: 's3://data/u.txt' };
    await client.enqueueText(job, { taskId: 'fixed', queue: 'errs' });
    await assert.rejects(client.enqueueText({ ...job, batch: 'x' }, { taskId: 'fixed', queue: 'errs' }), TaskIdConflictError);
    await client.enqueueText(job, { unique: 60_000, queue: 'errs' });
    await assert.rejects(client.enqueueText(job, { unique: 60_000, queue: 'errs' }), DuplicateTaskError);
    await assert.rejects(client.enqueueText(job, { unique: 60_000, queue: 'errs', processIn: 60_000 }), DuplicateTaskError);
    // The same job as an image job is another task.
    await client.enqueueImage(job, { unique: 60_000, queue: 'errs' });
  });

  test('scheduled; groups refused', async () => {
    const s = await client.enqueueImage({ guest: 'ocr', input: 's3://scans/1.png' }, { processIn: 3_600_000 });
    assert.equal(s.state, 'scheduled');
    const score = Number(await raw.zscore('asynq:{default}:scheduled', s.id));
    assert.ok(Math.abs(score - (Date.now() / 1000 + 3600)) < 3);
    // No worker aggregates groups: a grouped job would never run.
    await assert.rejects(client.enqueueText({ guest: 'hello', data: 'g' }, { group: 'grp', queue: 'gq' }), InvalidOptionError);
    assert.equal(await raw.exists('asynq:{gq}:groups'), 0);
  });

  test('enqueueMany: per-job results, in order, pipelined', async () => {
    const jobs = [];
    for (let i = 0; i < 2500; i++) jobs.push({ guest: 'wordcount', input: `s3://data/many/${i}.txt` });
    jobs[7] = { guest: 'BAD', input: 's3://data/x.txt' };
    jobs[8] = { guest: 'hello', data: 'x', options: { taskId: 'many-dup' } };
    jobs[9] = { guest: 'hello', data: 'y', options: { taskId: 'many-dup' } };
    jobs[10] = { type: TypeImage, guest: 'ocr', input: 's3://scans/2.png', options: { queue: 'many-img', unique: 10_000 } };
    jobs[11] = { type: TypeImage, guest: 'ocr', input: 's3://scans/2.png', options: { queue: 'many-img', unique: 10_000 } };
    jobs[12] = { guest: 'hello', data: 'z', options: { processIn: 60_000 } };
    const res = await client.enqueueMany(jobs, { queue: 'many', maxRetry: 2 });
    assert.equal(res.length, jobs.length);
    assert.equal(res[7].status, 'rejected');
    assert.match(res[7].reason.message, /guest name "BAD"/);
    assert.equal(res[8].value.id, 'many-dup');
    assert.ok(res[9].reason instanceof TaskIdConflictError);
    assert.equal(res[10].value.queue, 'many-img');
    assert.equal(res[10].value.type, TypeImage);
    assert.ok(res[11].reason instanceof DuplicateTaskError);
    assert.equal(res[12].value.state, 'scheduled');
    const ok = res.filter((r) => r.status === 'fulfilled');
    assert.equal(ok.length, 2500 - 3);
    assert.equal(await raw.llen('asynq:{many}:pending'), 2500 - 3 - 2); // less one on many-img, one scheduled
    const m = decodeTaskMessage(await raw.hgetBuffer(`asynq:{many}:t:${res[100].value.id}`, 'msg'));
    assert.equal(m.retry, 2);
    assert.equal(m.payload.toString(), '{"guest":"wordcount","input":"s3://data/many/100.txt"}');
    assert.ok(await raw.sismember('asynq:queues', 'many-img'));
  });

  test('enqueueMany: a pipeline that times out rejects its own jobs only, and the results stay as returned', async () => {
    const quick = new Client({ redis: url, callTimeout: 1 });
    try {
      await quick.ping().catch(() => {}); // connect first
      const jobs = [...Array(5000).keys()].map((i) => ({ guest: 'hello', data: `t${i}`, options: { taskId: `slow-${i}` } }));
      const res = await quick.enqueueMany(jobs, { queue: 'many-slow' });
      assert.equal(res.length, jobs.length);
      const timedOut = res.filter((r) => r.status === 'rejected');
      assert.ok(timedOut.length >= 1000, `${timedOut.length} jobs rejected; a 1 ms call timeout should fail pipelines`);
      assert.ok(timedOut.every((r) => r.reason instanceof TimeoutError), timedOut.map((r) => r.reason?.message).slice(0, 3));
      assert.ok(res.every((r) => r.status === 'fulfilled' || r.status === 'rejected'));
      const before = JSON.stringify(res.map((r) => r.status));
      await new Promise((r) => setTimeout(r, 500)); // the timed-out pipelines answer meanwhile
      assert.equal(JSON.stringify(res.map((r) => r.status)), before);
      // Enqueued again with the same ids: the ones that made it conflict.
      const again = await client.enqueueMany(jobs, { queue: 'many-slow' });
      const written = await raw.llen('asynq:{many-slow}:pending');
      assert.equal(written, 5000);
      assert.equal(again.filter((r) => r.reason instanceof TaskIdConflictError).length + again.filter((r) => r.status === 'fulfilled').length, 5000);
    } finally {
      await quick.close();
    }
  });

  test('scripts flushed from Redis are loaded again', async () => {
    await raw.script('FLUSH');
    await client.enqueueText({ guest: 'hello', data: 'after flush' });
    await raw.script('FLUSH');
    const res = await client.enqueueMany([{ guest: 'hello', data: '1' }, { guest: 'hello', data: '2' }, { guest: 'hello', data: '3', options: { unique: 5000 } }]);
    assert.deepEqual(res.map((r) => r.status), ['fulfilled', 'fulfilled', 'fulfilled']);
  });

  test('getResult', async () => {
    await assert.rejects(client.getResult('no-such-queue', 'x'), JobNotFoundError);
    await assert.rejects(client.getResult('default', 'no-such-id'), JobNotFoundError);
    const info = await client.enqueueText({ guest: 'hello', data: 'r' }, { queue: 'res' });
    await assert.rejects(client.getResult('res', info.id), (e) => e instanceof JobNotDoneError && e.state === 'pending');
    await complete(raw, 'res', info.id, Buffer.from([0, 1, 2, 255]));
    assert.deepEqual(await client.getResult('res', info.id), Buffer.from([0, 1, 2, 255]));

    // An archived task carries asynq's error message.
    const f = await client.enqueueText({ guest: 'hello', data: 'f' }, { queue: 'res' });
    const key = `asynq:{res}:t:${f.id}`;
    const m = decodeTaskMessage(await raw.hgetBuffer(key, 'msg'));
    m.errorMsg = 'guest hello exited with code 3: boom';
    await raw.hset(key, 'state', 'archived', 'msg', Buffer.from(encodeTaskMessage(m)));
    await assert.rejects(client.getResult('res', f.id), (e) => e instanceof JobFailedError && e.reason === m.errorMsg);
  });

  test('run resolves with the result; gives up in time; the job keeps its fate', async () => {
    // A stand-in worker: completes any pending task of queue "runq" with "done:" + payload.
    let stop = false;
    const worker = (async () => {
      const w = rawRedis(url);
      while (!stop) {
        const id = await w.rpop('asynq:{runq}:pending');
        if (id) {
          const msg = decodeTaskMessage(await w.hgetBuffer(`asynq:{runq}:t:${id}`, 'msg'));
          await complete(w, 'runq', id, Buffer.concat([Buffer.from('done:'), msg.payload]));
        } else await new Promise((r) => setTimeout(r, 5));
      }
      w.disconnect();
    })();
    try {
      const res = await client.run({ guest: 'hello', data: 'Ada' }, { options: { queue: 'runq' }, timeout: 5000 });
      assert.equal(res.toString(), 'done:{"guest":"hello","data":"QWRh"}');
      // Run keeps even an S3-input job's result 24 h.
      const res2 = await client.run({ guest: 'wordcount', input: 's3://data/r.txt' }, { options: { queue: 'runq' } });
      assert.match(res2.toString(), /^done:/);
    } finally {
      stop = true;
      await worker;
    }
    const t0 = Date.now();
    await assert.rejects(client.run({ guest: 'hello', data: 'late' }, { options: { queue: 'nobody', taskId: 'late' }, timeout: 300 }),
      (e) => e instanceof TimeoutError && e.id === 'late' && /not done within 300 ms/.test(e.message));
    assert.ok(Date.now() - t0 < 2000);
    await assert.rejects(client.getResult('nobody', 'late'), JobNotDoneError); // still queued
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    await assert.rejects(client.run({ guest: 'hello', data: 'aborted' }, { options: { queue: 'nobody' }, signal: ac.signal }), { name: 'AbortError' });
  });

  test('enqueues of pending jobs wake the queue\'s workers, once per pipeline and queue', async () => {
    const m = await messages(url, wakeChannel('wa'), wakeChannel('wb'));
    try {
      await client.enqueueText({ guest: 'hello', data: 'a' }, { queue: 'wa' });
      await client.enqueueText({ guest: 'hello', data: 'later' }, { queue: 'wb', processIn: 60_000 }); // scheduled: no wake-up
      await client.enqueueMany([{ guest: 'hello', data: 'b' }, { guest: 'hello', data: 'c' }, { guest: 'hello', data: 'd', options: { queue: 'wb' } }], { queue: 'wa' });
      await client.enqueueText({ guest: 'hello', data: 'e' }, { queue: 'wb', unique: 60_000 });
      for (const deadline = Date.now() + 5000; m.got.length < 4 && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 5));
      assert.deepEqual(m.got.sort(), [wakeChannel('wa'), wakeChannel('wa'), wakeChannel('wb'), wakeChannel('wb')]);
    } finally {
      m.close();
    }
  });

  test('wait returns on the worker\'s notification, with an hour between polls', { timeout: 30_000 }, async () => {
    const c = new Client({ redis: url, pollInterval: 3_600_000 });
    try {
      const info = await c.enqueueText({ guest: 'hello', data: 'n' }, { queue: 'notified' });
      const waiting = c.wait('notified', info.id, { timeout: Infinity });
      // Complete once the wait subscribed, as a worker could at any time.
      await subscribed(raw, doneChannel('notified', info.id));
      await complete(raw, 'notified', info.id, Buffer.from('ok'));
      assert.equal((await waiting).toString(), 'ok');
      // Done before the wait began: its first read finds it.
      const done = await c.enqueueText({ guest: 'hello', data: 'm' }, { queue: 'notified' });
      await complete(raw, 'notified', done.id, Buffer.from('already'));
      assert.equal((await c.wait('notified', done.id)).toString(), 'already');
      // Failed, and announced: rejects at once.
      const f = await c.enqueueText({ guest: 'hello', data: 'f' }, { queue: 'notified' });
      const failing = assert.rejects(c.wait('notified', f.id, { timeout: Infinity }), JobFailedError);
      await subscribed(raw, doneChannel('notified', f.id));
      const key = `asynq:{notified}:t:${f.id}`;
      const msg = decodeTaskMessage(await raw.hgetBuffer(key, 'msg'));
      msg.errorMsg = 'boom';
      await raw.hset(key, 'state', 'archived', 'msg', Buffer.from(encodeTaskMessage(msg)));
      await raw.publish(doneChannel('notified', f.id), '');
      await failing;
      // Every wait unsubscribed when it ended.
      const [, left] = await raw.pubsub('NUMSUB', doneChannel('notified', info.id));
      assert.equal(left, 0);
    } finally {
      await c.close();
    }
  });

  test('a given ioredis instance is used and left open', async () => {
    const r = rawRedis(url);
    const c = new Client({ redis: r });
    const info = await c.enqueueText({ guest: 'hello', data: 'mine' }, { queue: 'own' });
    await c.close();
    await c.close(); // twice is fine
    assert.equal(await r.exists(`asynq:{own}:t:${info.id}`), 1);
    r.disconnect();
    await assert.rejects(c.enqueueText({ guest: 'hello', data: 'x' }), /client is closed/);
  });
});

// URLs are read as the wasmjobs command reads them (asynq.ParseRedisURI);
// nothing here connects. The Sentinel and cluster modes themselves run
// against real servers: the reliability scenarios' Sentinel failover, and
// cluster.test.mjs.
test('redis-sentinel:// and redis-cluster:// URLs', async () => {
  const s = new Client({ redis: 'redis-sentinel://:s%40cret@127.0.0.1:26379,[::1]:26380?master=jobs' });
  assert.deepEqual(s.redis.options.sentinels, [{ host: '127.0.0.1', port: 26379 }, { host: '::1', port: 26380 }]);
  assert.equal(s.redis.options.name, 'jobs');
  assert.equal(s.redis.options.sentinelPassword, 's@cret');
  assert.equal(s.redis.options.password ?? undefined, undefined, 'the URL\'s password is the Sentinels\', as asynq reads it');
  await s.close();
  const c = new Client({ redis: 'redis-cluster://u:p@10.0.0.1:7000,10.0.0.2:7001' });
  assert.deepEqual(c.redis.startupNodes, [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 7001 }]);
  assert.equal(c.redis.options.redisOptions.password, 'p');
  await c.close();
  assert.throws(() => new Client({ redis: 'redis-sentinel://127.0.0.1:26379' }), /without \?master=NAME/);
  assert.throws(() => new Client({ redis: 'redis-sentinel://127.0.0.1?master=x' }), /node "127.0.0.1": want host:port/);
  // asynq uses database 0 there: another is refused, not ignored.
  assert.throws(() => new Client({ redis: 'redis-sentinel://127.0.0.1:26379/2?master=x' }), /name no database .*drop \/2/);
  assert.throws(() => new Client({ redis: 'redis-cluster://127.0.0.1:7000/1' }), /name no database/);
  await new Client({ redis: 'redis-cluster://127.0.0.1:7000/0' }).close();
  // A node-redis client (its shape: sendCommand, isOpen, evalSha) is refused, not read as options.
  const nodeRedis = { isOpen: false, sendCommand() {}, evalSha() {}, connect() {} };
  assert.throws(() => new Client({ redis: nodeRedis }), /node-redis client; pass an ioredis instance/);
  assert.throws(() => new Client({ redis: 'http://127.0.0.1:6379' }), /want redis:\/\/, rediss:\/\/, redis-sentinel:\/\/ or redis-cluster:\/\//);
});
