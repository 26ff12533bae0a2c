// Batches: the same records and plan task as Go's jobs.Client.StartBatch /
// BatchStatus (internal/batch). A worker lists the input prefix and enqueues
// one job per object; this client only writes the record and the plan.

import { createHash } from 'node:crypto';
import { InvalidPayloadError } from './errors.js';
import { globError } from './glob.js';
import { goString, parseObjectURL, TypeImage, TypeText, validateGuestRef, validateJob } from './payload.js';

/** Task type of a batch plan. */
export const TypeBatch = 'wasm:batch';

export const batchKey = (id) => `wasmjobs:batch:{${id}}`;
export const batchStatusKey = (id) => `wasmjobs:batch:{${id}}:status`;
export const batchItemsKey = (id) => `wasmjobs:batch:{${id}}:items`;
export const batchesKey = 'wasmjobs:batches';

/**
 * The key holding the id of the batch that owns an output prefix, as Go's
 * batchOutputKey (internal/batch): slashes around the prefix are trimmed, so
 * "out", "out/" and "/out/" are one claim.
 */
export function batchOutputKey(output) {
  const { bucket, prefix } = parsePrefix(output, 'output');
  return `wasmjobs:batch-output:${bucket}/${prefix.replace(/^\/+|\/+$/g, '')}`;
}

const batchIDRE = /^[A-Za-z0-9_-]{1,64}$/;
const specFields = new Set(['id', 'guest', 'type', 'input', 'output', 'include', 'maxSize', 'queue', 'params', 'maxRetry', 'retentionSeconds']);

/**
 * Hands an output claim from ARGV[1] to ARGV[2] if ARGV[1] still holds it
 * (Go's swapClaimSource, which a Go test holds equal). KEYS: the claim.
 */
export const swapClaimScript = `
if redis.call("GET", KEYS[1]) ~= ARGV[1] then
	return 0
end
if ARGV[2] == "" then
	redis.call("DEL", KEYS[1])
else
	redis.call("SET", KEYS[1], ARGV[2])
end
return 1
`;

/**
 * Moves a failed item back to pending, noting when, and lets the batch run
 * again (Go's retryItemSource, which a Go test holds equal). KEYS: record,
 * status, items. ARGV: key, now (ms).
 */
export const retryItemScript = `
if redis.call("HGET", KEYS[2], ARGV[1]) ~= "failed" then
	return 0
end
redis.call("HSET", KEYS[2], ARGV[1], "pending")
redis.call("HSET", KEYS[1], "retried:" .. ARGV[1], ARGV[2])
redis.call("HINCRBY", KEYS[1], "failed", -1)
redis.call("HDEL", KEYS[1], "finished", "manifest")
for _, k in ipairs(KEYS) do redis.call("PERSIST", k) end
return 1
`;

/** How long a finished batch's record stays in Redis by default (Go's batch.DefaultRetention), in seconds. */
export const defaultBatchRetentionSeconds = 7 * 24 * 3600;
const maxRetentionSeconds = 10 * 365 * 24 * 3600;

// parsePrefix parses s3://bucket[/prefix] as Go's s3url.ParsePrefixURL (internal/s3url).
function parsePrefix(s, what) {
  if (typeof s !== 'string' || !s.startsWith('s3://')) {
    throw new InvalidPayloadError(`batch ${what}: ${JSON.stringify(s)} is not an s3://bucket/prefix URL`);
  }
  const rest = s.slice(5);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const prefix = slash < 0 ? '' : rest.slice(slash + 1);
  // parseObjectURL checks the bucket and key rules; an empty prefix stands in
  // as a one-character key.
  try {
    parseObjectURL(`s3://${bucket}/${prefix === '' ? 'x' : prefix}`);
  } catch (err) {
    throw new InvalidPayloadError(`batch ${what}: ${err.message.replace(/^invalid job payload: /, '')}`);
  }
  return { bucket, prefix };
}

/**
 * Validates a batch spec and fills its defaults exactly as Go's
 * BatchSpec.WithDefaults does, including the derived id, so that the same
 * batch started from Go or Node is the same batch.
 */
export function batchSpecWithDefaults(spec) {
  if (spec === null || typeof spec !== 'object') throw new InvalidPayloadError('batch spec must be an object');
  for (const k of Object.keys(spec)) {
    if (!specFields.has(k)) throw new InvalidPayloadError(`batch spec: unknown field ${JSON.stringify(k)}`);
  }
  const s = {
    id: spec.id ?? '', guest: spec.guest, type: spec.type, input: spec.input, output: spec.output ?? '',
    include: spec.include ?? '', maxSize: spec.maxSize ?? 0, queue: spec.queue || 'default',
    params: spec.params ?? {}, maxRetry: spec.maxRetry ?? null,
    retentionSeconds: spec.retentionSeconds || defaultBatchRetentionSeconds,
  };
  if (s.type === 'image' || s.type === 'text') s.type = 'wasm:' + s.type;
  if (s.type !== TypeImage && s.type !== TypeText) {
    throw new InvalidPayloadError(`batch type ${JSON.stringify(String(spec.type))}: want image or text`);
  }
  validateGuestRef(s.guest);
  const input = parsePrefix(s.input, 'input');
  if (typeof s.include !== 'string') throw new InvalidPayloadError('include glob must be a string');
  const globErr = globError(s.include);
  if (globErr) throw new InvalidPayloadError(`include glob ${JSON.stringify(s.include)}: ${globErr}`);
  if (!Number.isSafeInteger(s.maxSize) || s.maxSize < 0) throw new InvalidPayloadError(`max size ${s.maxSize}: want a byte count ≥ 0`);
  if (s.maxRetry !== null && (!Number.isSafeInteger(s.maxRetry) || s.maxRetry < 0)) {
    throw new InvalidPayloadError(`max retry ${s.maxRetry}: want an integer ≥ 0`);
  }
  if (!Number.isSafeInteger(s.retentionSeconds) || s.retentionSeconds < 1 || s.retentionSeconds > maxRetentionSeconds) {
    throw new InvalidPayloadError(`batch retention ${s.retentionSeconds} s: want 1 s to ten years`);
  }
  validateJob({ guest: s.guest, data: '', params: s.params });
  if (s.id === '') {
    const h = createHash('sha256');
    for (const f of [s.type, s.guest, s.input, s.output, s.include, String(s.maxSize), s.queue]) h.update(f).update('\0');
    for (const k of Object.keys(s.params).sort()) h.update(`${k}=${s.params[k]}`).update('\0');
    s.id = 'b-' + h.digest('hex').slice(0, 16);
  } else if (!batchIDRE.test(s.id)) {
    throw new InvalidPayloadError(`batch id ${JSON.stringify(s.id)}: use 1-64 letters, digits, '-' or '_'`);
  }
  if (s.output === '') s.output = `s3://${input.bucket}/wasmjobs-results/${s.id}/`;
  const out = parsePrefix(s.output, 'output');
  if (out.bucket === input.bucket && out.prefix.startsWith(input.prefix)) {
    throw new InvalidPayloadError(`batch output ${s.output} lies under its input ${s.input}: a rerun would process the results`);
  }
  return s;
}

/** Encodes a spec (with defaults) as Go's json.Marshal(jobs.BatchSpec). */
export function encodeBatchSpec(s) {
  let j = `{"id":${goString(s.id)},"guest":${goString(s.guest)},"type":${goString(s.type)},"input":${goString(s.input)}`;
  if (s.output) j += `,"output":${goString(s.output)}`;
  if (s.include) j += `,"include":${goString(s.include)}`;
  if (s.maxSize) j += `,"max_size":${s.maxSize}`;
  if (s.queue) j += `,"queue":${goString(s.queue)}`;
  const keys = Object.keys(s.params).sort();
  if (keys.length) j += ',"params":{' + keys.map((k) => goString(k) + ':' + goString(s.params[k])).join(',') + '}';
  if (s.maxRetry !== null) j += `,"max_retry":${s.maxRetry}`;
  j += `,"retention_seconds":${s.retentionSeconds}`;
  return j + '}';
}

// camelSpec is a stored spec (Go's snake_case JSON) in the camelCase of
// the BatchSpec startBatch takes: max_size → maxSize, max_retry → maxRetry,
// retention_seconds → retentionSeconds. Params keep their own keys.
function camelSpec(raw) {
  const out = {};
  for (const [k, v] of Object.entries(raw)) out[k.replace(/_([a-z])/g, (_, c) => c.toUpperCase())] = v;
  return out;
}

/**
 * Decodes a batch record (HGETALL) into the shape of Go's jobs.BatchStatus
 * JSON, in camelCase throughout: `spec` has the field names startBatch
 * takes.
 */
export function decodeBatchStatus(id, h) {
  const spec = camelSpec(JSON.parse(h.spec));
  const num = (k) => Number(h[k] ?? 0);
  return {
    id,
    spec,
    total: num('total'),
    enqueued: num('enqueued'),
    done: num('done'),
    failed: num('failed'),
    canceled: num('canceled'),
    skipped: num('skipped'),
    bytes: num('bytes'),
    listed: h.listed === '1',
    cancelRequested: h.cancel === '1',
    manifestWritten: h.manifest === '1',
    started: new Date(num('started')),
    finished: h.finished ? new Date(num('finished')) : null,
    ...(h.error ? { error: h.error } : {}),
  };
}
