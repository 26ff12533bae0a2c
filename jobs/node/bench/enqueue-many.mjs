#!/usr/bin/env node
// Enqueue rate of the Node client against the Go client's, on the same Redis.
//
//   node bench/enqueue-many.mjs [redis://host:port]   (default $WASMJOBS_TEST_REDIS)
//
// Node: enqueueMany of 10,000 jobs (pipelined; after two warm-up rounds, so
// the steady rate), and 2,000 jobs enqueued one await at a time. Go: jobs' BenchmarkEnqueueOneByOne (Client.Enqueue, one
// round trip per job, as asynq's client) and BenchmarkEnqueueMany (pipelined), 10,000 jobs each,
// run with `go test` from the repository when Go is installed. Each run uses a
// fresh Redis database, allocated as the tests allocate them.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import { Client } from '../src/index.js';

const base = (process.argv[2] ?? process.env.WASMJOBS_TEST_REDIS ?? '').replace(/\/\d*$/, '');
if (!base) {
  console.error('usage: enqueue-many.mjs redis://host:port (or set WASMJOBS_TEST_REDIS)');
  process.exit(2);
}
const repo = new URL('../../..', import.meta.url).pathname;
const N = 10_000;

async function freshDB() {
  const admin = new Redis(`${base}/0`, { maxRetriesPerRequest: 1 });
  try {
    const n = await admin.incr('wasmjobs-test:next-db');
    const db = 1 + ((n - 1) % 1023);
    await admin.select(db);
    await admin.flushdb();
    return `${base}/${db}`;
  } finally {
    admin.disconnect();
  }
}

const job = (i) => ({ guest: 'wordcount', input: `s3://data/docs/${String(i).padStart(6, '0')}.txt` });

async function nodeMany() {
  const c = new Client({ redis: await freshDB() });
  try {
    // Warm the JIT up first: the rate reported is the steady one.
    for (let w = 0; w < 2; w++) await c.enqueueMany(Array.from({ length: N }, (_, i) => job(i)), { queue: `warmup${w}` });
    const jobs = Array.from({ length: N }, (_, i) => job(i));
    const t0 = process.hrtime.bigint();
    const res = await c.enqueueMany(jobs);
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    const failed = res.filter((r) => r.status !== 'fulfilled').length;
    if (failed) throw new Error(`${failed} jobs failed`);
    return N / s;
  } finally {
    await c.close();
  }
}

async function nodeOneByOne(n = 2000) {
  const c = new Client({ redis: await freshDB() });
  try {
    for (let i = 0; i < 1000; i++) await c.enqueueText(job(i), { queue: 'warmup' });
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await c.enqueueText(job(i));
    return n / (Number(process.hrtime.bigint() - t0) / 1e9);
  } finally {
    await c.close();
  }
}

async function goBench() {
  try {
    const { stdout } = await promisify(execFile)('go', ['test', '-run', '^$', '-bench', '^BenchmarkEnqueue(OneByOne|Many)$',
      '-benchtime', `${N}x`, '-count', '1', './jobs'], { cwd: repo, env: { ...process.env, WASMJOBS_TEST_REDIS: base }, timeout: 300_000 });
    const rate = (name) => Number(new RegExp(`${name}\\S*\\s+\\d+\\s+.*?([\\d.]+) jobs/s`).exec(stdout)?.[1]);
    return { oneByOne: rate('BenchmarkEnqueueOneByOne'), many: rate('BenchmarkEnqueueMany') };
  } catch (err) {
    console.error(`Go benchmark not run: ${err.message.split('\n')[0]}`);
    return null;
  }
}

const fmt = (r) => `${Math.round(r).toLocaleString('en-US').padStart(9)} jobs/s`;
const many = await nodeMany();
const one = await nodeOneByOne();
const go = await goBench();
console.log(`Node enqueueMany (${N}, pipelined)         ${fmt(many)}`);
console.log(`Node enqueueText one by one (2000)        ${fmt(one)}`);
if (go) {
  console.log(`Go jobs.Enqueue one by one (${N})         ${fmt(go.oneByOne)}`);
  console.log(`Go jobs.EnqueueMany (${N}, pipelined)    ${fmt(go.many)}`);
  const ratio = many / go.oneByOne;
  console.log(`Node enqueueMany / Go one by one: ${ratio.toFixed(2)}× (needs ≥ 0.5)`);
  if (ratio < 0.5) process.exitCode = 1;
}
