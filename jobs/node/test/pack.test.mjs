// The package as a user gets it: `npm pack`, install the tarball into an
// empty folder, import it by name and enqueue a job.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { freshDB, needs, rawRedis } from './helpers.mjs';
import { TypeText } from '../src/index.js';

const run = promisify(execFile);
const pkgDir = new URL('..', import.meta.url).pathname;

test('npm pack, install, enqueue', { skip: needs('redis'), timeout: 300_000 }, async () => {
  const tmp = await mkdtemp(join(tmpdir(), 'wasmjobs-pack-'));
  try {
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: pkgDir });
    const [{ filename, files }] = JSON.parse(stdout);
    const paths = files.map((f) => f.path).sort();
    for (const p of ['package.json', 'README.md', 'LICENSE', 'src/index.js', 'src/index.d.ts', 'proto/task_message.json', 'proto/asynq.proto']) {
      assert.ok(paths.includes(p), `${p} missing from the tarball: ${paths}`);
    }
    assert.ok(!paths.some((p) => p.startsWith('test/') || p.startsWith('bench/') || p.startsWith('examples/')), `tarball holds ${paths}`);

    const app = join(tmp, 'app');
    await run('mkdir', [app]);
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    // Dependencies come from npm's cache when `npm ci` filled it.
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', join(tmp, filename)], { cwd: app, timeout: 240_000 });
    const installed = JSON.parse(await readFile(join(app, 'node_modules', 'wasmjobs', 'package.json'), 'utf8'));
    assert.equal(installed.license, 'Apache-2.0');
    assert.ok(existsSync(join(app, 'node_modules', 'wasmjobs', installed.types)));

    const { url } = await freshDB();
    await writeFile(join(app, 'main.mjs'), `
      import { Client, TypeText } from 'wasmjobs';
      const c = new Client({ redis: process.argv[2] });
      const info = await c.enqueueText({ guest: 'hello', data: 'packed' }, { queue: 'packed' });
      await c.close();
      console.log(JSON.stringify({ ...info, typeOK: info.type === TypeText }));
    `);
    const out = JSON.parse((await run(process.execPath, ['main.mjs', url], { cwd: app })).stdout);
    // CommonJS consumers load it with require (Node 20.19 and later, which
    // `engines` asks for).
    await writeFile(join(app, 'main.cjs'), `
      const { Client, TypeText } = require('wasmjobs');
      console.log(JSON.stringify({ client: typeof Client, type: TypeText }));
    `);
    const cjs = JSON.parse((await run(process.execPath, ['main.cjs'], { cwd: app })).stdout);
    assert.deepEqual(cjs, { client: 'function', type: TypeText });
    assert.equal(out.queue, 'packed');
    assert.ok(out.typeOK);
    const r = rawRedis(url);
    try {
      assert.equal(await r.hget(`asynq:{packed}:t:${out.id}`, 'state'), 'pending');
    } finally {
      r.disconnect();
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
});
