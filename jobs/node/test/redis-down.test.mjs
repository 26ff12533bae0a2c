// Redis away or misbehaving: every call rejects with a clear error within a
// bounded time, and nothing is left as an unhandled rejection.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { Client, RedisError, TimeoutError, InvalidPayloadError } from '../src/index.js';

const unhandled = [];
const onUnhandled = (reason) => unhandled.push(reason);
before(() => process.on('unhandledRejection', onUnhandled));
after(async () => {
  await new Promise((r) => setTimeout(r, 200));
  process.off('unhandledRejection', onUnhandled);
  assert.deepEqual(unhandled, [], 'unhandled rejections');
});

const job = { guest: 'hello', data: 'x' };

// server starts a TCP server that handles each connection with onConn.
async function server(onConn) {
  const sockets = new Set();
  const srv = net.createServer((s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); s.on('error', () => {}); onConn(s); });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `redis://127.0.0.1:${srv.address().port}`,
    close: () => { for (const s of sockets) s.destroy(); return new Promise((r) => srv.close(r)); },
  };
}

// A port nobody listens on: bind, note the port, close.
async function deadPort() {
  const s = await server(() => {});
  await s.close();
  return s.url;
}

async function within(ms, promise) {
  const t0 = Date.now();
  try {
    return await promise;
  } finally {
    assert.ok(Date.now() - t0 < ms, `took ${Date.now() - t0} ms, want < ${ms}`);
  }
}

test('connection refused', async () => {
  const c = new Client({ redis: await deadPort() });
  try {
    const refused = (e) => e instanceof RedisError && /unavailable: connect ECONNREFUSED/.test(e.message) && /enqueue wasm:text/.test(e.message);
    await within(3000, assert.rejects(c.enqueueText(job), refused));
    // enqueueMany reports per job: each job of the failed pipeline rejected.
    const many = await within(3000, c.enqueueMany([job, job]));
    assert.ok(many.length === 2 && many.every((r) => r.status === 'rejected' && r.reason instanceof RedisError), JSON.stringify(many));
    await within(3000, assert.rejects(c.getResult('default', 'x'), RedisError));
    await within(3000, assert.rejects(c.run(job, { timeout: 100 }), RedisError));
    await within(3000, assert.rejects(c.ping(), RedisError));
    // Validation still comes first, with no Redis round trip.
    await within(50, assert.rejects(c.enqueueText({ guest: '' , data: 'x' }), InvalidPayloadError));
  } finally {
    await within(2000, c.close());
  }
});

test('a server that never answers', async () => {
  const s = await server(() => {}); // accepts, reads, never replies
  const c = new Client({ redis: s.url, callTimeout: 500 });
  try {
    await within(2000, assert.rejects(c.enqueueText(job), (e) => e instanceof TimeoutError && /did not answer within 500 ms/.test(e.message)));
    await within(2000, assert.rejects(c.getResult('default', 'x'), TimeoutError));
    const many = await within(2000, c.enqueueMany([job]));
    assert.ok(many.length === 1 && many[0].status === 'rejected' && many[0].reason instanceof TimeoutError, JSON.stringify(many));
  } finally {
    await within(2000, c.close());
    await s.close();
  }
});

test('a server that refuses every command', async () => {
  const s = await server((sock) => sock.on('data', () => sock.write('-NOAUTH Authentication required.\r\n')));
  const c = new Client({ redis: s.url, callTimeout: 2000 });
  try {
    await within(3000, assert.rejects(c.enqueueText(job), (e) => (e instanceof RedisError || e instanceof TimeoutError) && /NOAUTH|did not answer/.test(e.message)));
  } finally {
    await within(2000, c.close());
    await s.close();
  }
});

test('Redis going away mid-life', async () => {
  let alive = true;
  // Minimal RESP: one reply per command; INFO for ioredis's ready check.
  const s = await server((sock) => {
    sock.on('data', (d) => {
      if (!alive) return sock.destroy();
      for (const cmd of d.toString().split(/\*\d+\r\n/).slice(1)) {
        const info = '# Server\r\nloading:0\r\n';
        if (/^\$4\r\ninfo/i.test(cmd)) sock.write(`$${Buffer.byteLength(info)}\r\n${info}\r\n`);
        else if (/^\$4\r\nping/i.test(cmd)) sock.write('+PONG\r\n');
        else sock.write('+OK\r\n');
      }
    });
  });
  const c = new Client({ redis: s.url, callTimeout: 1000 });
  try {
    await c.ping();
    alive = false;
    await s.close();
    await within(3000, assert.rejects(c.enqueueText(job), (e) => e instanceof RedisError || e instanceof TimeoutError));
  } finally {
    await within(2000, c.close());
    await s.close();
  }
});
