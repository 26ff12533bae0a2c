#!/usr/bin/env node
// Latency and throughput of the http-say example (examples/http-say): an HTTP
// server whose every request is a wasmjobs job run by a Go worker.
//
//   scripts/with-services.sh npm --prefix jobs/node run bench:http-say
//
// It needs the Redis and MinIO of scripts/with-services.sh (the WASMJOBS_TEST_*
// variables) and Go: it builds `wasmjobs` from ./cmd/wasmjobs (or runs
// $WASMJOBS_BIN), pushes the hello guest, starts one worker with its default
// settings and the example server as child processes, and then measures, from
// this process over keep-alive connections:
//
//   http-say lone p50 <x> ms           200 requests one at a time
//   http-say 32 concurrent <y> req/s   5,000 requests from 32 clients at once,
//                                      after 1,000 more that warm the path up
import { execFile, spawn } from 'node:child_process';
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as Minio from 'minio';
import { env, freshDB, randomHex } from '../test/helpers.mjs';

if (!env.redis || !env.s3) {
  console.error('bench:http-say needs WASMJOBS_TEST_REDIS and WASMJOBS_TEST_S3: run it under scripts/with-services.sh');
  process.exit(2);
}
const repo = new URL('../../..', import.meta.url).pathname;
const lone = 200;
const warmUp = 1000;
const total = Number(process.env.ZZTOTAL ?? 5000);
const clients = 32;

const children = [];
const tmp = await mkdtemp(join(tmpdir(), 'wasmjobs-http-say-'));
try {
  await main();
} finally {
  for (const c of children) c.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : null)));
  await rm(tmp, { recursive: true, force: true });
}

async function main() {
  let bin = process.env.WASMJOBS_BIN;
  if (!bin) {
    bin = join(tmp, 'wasmjobs');
    await promisify(execFile)('go', ['build', '-o', bin, './cmd/wasmjobs'], { cwd: repo, timeout: 600_000 });
  }
  const { url } = await freshDB();
  const [host, port] = env.s3.split(':');
  const s3 = new Minio.Client({ endPoint: host, port: Number(port), useSSL: false, accessKey: env.s3Access, secretKey: env.s3Secret });
  const guestBucket = `g-${randomHex(8)}`;
  await s3.makeBucket(guestBucket);
  const flags = ['--redis', url, '--s3-endpoint', env.s3, '--s3-access-key', env.s3Access, '--s3-secret-key', env.s3Secret,
    '--guest-bucket', guestBucket, '--cache-dir', join(tmp, 'cache'), '--log-level', 'warn'];
  await promisify(execFile)(bin, ['guest', 'push', 'internal/guests/wasm/hello.wasm', '--name', 'hello', ...flags], { cwd: repo });
  start(bin, ['worker', ...flags]);
  const server = start(process.execPath, [new URL('../examples/http-say/server.mjs', import.meta.url).pathname],
    { REDIS_URL: url, PORT: '0' }, 'pipe');
  const base = await new Promise((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (d) => {
      out += d;
      const m = /(http:\/\/127\.0\.0\.1:\d+)\//.exec(out);
      if (m) resolve(m[1]);
    });
    server.once('exit', (code) => reject(new Error(`http-say exited with ${code}`)));
  });

  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const get = (i) => new Promise((resolve, reject) => {
    http.get(`${base}/?name=n${i}`, { agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}: ${Buffer.concat(chunks)}`))));
    }).on('error', reject);
  });

  for (let i = 0; i < 20; i++) await get(i); // compile the guest, load the scripts, open the connections
  const times = [];
  for (let i = 0; i < lone; i++) {
    const t0 = process.hrtime.bigint();
    await get(i);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);

  // concurrently runs n requests from the clients and returns the seconds taken.
  const concurrently = async (n) => {
    let next = 0;
    const t0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: clients }, async () => {
      while (next < n) await get(next++);
    }));
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  await concurrently(warmUp); // the concurrent path's first requests run cold (V8, connections, the worker's slots)
  const rate = total / (await concurrently(total));
  agent.destroy();

  console.log(`http-say lone p50 ${times[lone / 2].toFixed(2)} ms`);
  console.log(`http-say ${clients} concurrent ${Math.round(rate)} req/s`);
}

// start spawns a child process that is stopped when the bench ends.
function start(cmd, args, extraEnv = {}, stdout = 'ignore') {
  const c = spawn(cmd, args, { cwd: repo, env: { ...process.env, ...extraEnv }, stdio: ['ignore', stdout, 'inherit'] });
  children.push(c);
  return c;
}
