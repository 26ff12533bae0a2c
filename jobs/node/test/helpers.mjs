// Shared test helpers: the real Redis and MinIO that `make test` starts
// (scripts/with-services.sh exports WASMJOBS_TEST_*), one fresh Redis
// database per test, allocated exactly as internal/testenv does.
import Redis from 'ioredis';

export const env = {
  redis: process.env.WASMJOBS_TEST_REDIS,
  redisCluster: process.env.WASMJOBS_TEST_REDIS_CLUSTER,
  s3: process.env.WASMJOBS_TEST_S3,
  s3Access: process.env.WASMJOBS_TEST_S3_ACCESS,
  s3Secret: process.env.WASMJOBS_TEST_S3_SECRET,
  require: process.env.WASMJOBS_TEST_REQUIRE === '1',
};

/**
 * Returns the skip option for node:test: a reason to skip when the named
 * variables are unset, or false. Under WASMJOBS_TEST_REQUIRE=1 a missing
 * service is an error instead, so a broken setup cannot pass silently.
 */
export function needs(...names) {
  const missing = names.filter((n) => !env[n]);
  if (missing.length === 0) return false;
  const msg = `WASMJOBS_TEST_* for ${missing.join(', ')} not set: run \`make test\``;
  if (env.require) throw new Error(msg);
  return msg;
}

/** The test Redis URL without a database number. */
export function redisBase() {
  const u = new URL(env.redis);
  u.pathname = '';
  return u.toString().replace(/\/$/, '');
}

/**
 * Allocates a fresh, empty database of the test Redis: INCR of
 * wasmjobs-test:next-db in database 0, then 1 + (n-1) % 1023, as testenv.Redis.
 * Returns its URL and number.
 */
export async function freshDB() {
  const admin = new Redis(redisBase() + '/0', { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    const n = await admin.incr('wasmjobs-test:next-db');
    const db = 1 + ((n - 1) % 1023);
    await admin.select(db);
    await admin.flushdb();
    return { url: `${redisBase()}/${db}`, db };
  } finally {
    admin.disconnect();
  }
}

/** A raw ioredis connection to url, for looking at what the client wrote. */
export function rawRedis(url) {
  return new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
}

export const randomHex = (n) => [...crypto.getRandomValues(new Uint8Array(n))].map((b) => b.toString(16).padStart(2, '0')).join('');
