// http-say: the classic Node server, answered by a WebAssembly guest through
// the queue. GET /?name=NodeJS enqueues an inline `hello` job and replies with
// the guest's greeting once a wasmjobs worker has run it.
//
//   wasmjobs guest push internal/guests/wasm/hello.wasm --name hello
//   wasmjobs worker &
//   node jobs/node/examples/http-say/server.mjs   # REDIS_URL, PORT
//   curl 'http://127.0.0.1:8080/?name=NodeJS'     # {"greeting":"Hello, NodeJS!"}
import http from 'node:http';
import { Client, InvalidPayloadError, JobFailedError, TimeoutError } from 'wasmjobs';

const client = new Client({ redis: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/0' });
const port = Number(process.env.PORT ?? 8080);

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (req.method !== 'GET' || url.pathname !== '/') {
    res.writeHead(404).end();
    return;
  }
  const name = url.searchParams.get('name') ?? 'world';
  const aborted = new AbortController();
  res.on('close', () => aborted.abort()); // stop waiting when the caller leaves
  try {
    const greeting = await client.run({ guest: 'hello', data: name }, { timeout: 10_000, signal: aborted.signal });
    res.writeHead(200, { 'content-type': 'application/json' }).end(greeting);
  } catch (err) {
    if (aborted.signal.aborted) return;
    const status = err instanceof InvalidPayloadError ? 400 : err instanceof TimeoutError ? 504 : err instanceof JobFailedError ? 502 : 503;
    res.writeHead(status, { 'content-type': 'text/plain' }).end(`${err.message}\n`);
  }
});

server.listen(port, '127.0.0.1', () => console.log(`http-say on http://127.0.0.1:${server.address().port}/?name=NodeJS`));
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => server.close(() => client.close()));
}
