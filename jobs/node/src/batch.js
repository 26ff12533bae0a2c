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
const specFields = new Set(['id', 'guest', 'type', 'input', 'output', 'include', 'maxSize', 'queue', 'params', 'maxRetry', 'records', 'retentionSeconds']);
const recordsFields = new Set(['format', 'field', 'column', 'header', 'member', 'shardBytes', 'shardRecords', 'merge']);
const recordFormats = new Set(['jsonl', 'csv', 'lines', 'tar']);
const maxShardBytes = 256 << 20;

/**
 * A record batch's records spec with its defaults, as Go's
 * RecordsSpec.withDefaults: a CSV column given by name implies a header.
 */
function recordsWithDefaults(r) {
  if (r === null || typeof r !== 'object') throw new InvalidPayloadError('batch records must be an object');
  for (const k of Object.keys(r)) {
    if (!recordsFields.has(k)) throw new InvalidPayloadError(`batch records: unknown field ${JSON.stringify(k)}`);
  }
  const out = {
    format: r.format, field: r.field ?? '', column: r.column ?? '', header: Boolean(r.header), member: r.member ?? '',
    shardBytes: r.shardBytes || 8 << 20, shardRecords: r.shardRecords || 10000, merge: Boolean(r.merge),
  };
  if (!recordFormats.has(out.format)) throw new InvalidPayloadError(`records: format ${JSON.stringify(String(r.format))}: want jsonl, csv, lines or tar`);
  for (const f of ['field', 'column', 'member']) {
    if (typeof out[f] !== 'string') throw new InvalidPayloadError(`records: ${f} must be a string`);
  }
  if (out.column !== '' && !/^[0-9]+$/.test(out.column)) out.header = true;
  if (!Number.isSafeInteger(out.shardBytes) || out.shardBytes < 1 || out.shardBytes > maxShardBytes) {
    throw new InvalidPayloadError(`shard bytes ${out.shardBytes}: want 1 to ${maxShardBytes}`);
  }
  if (!Number.isSafeInteger(out.shardRecords) || out.shardRecords < 1 || out.shardRecords > 10_000_000) {
    throw new InvalidPayloadError(`shard records ${out.shardRecords}: want 1 to 10,000,000`);
  }
  if (out.field.length > 256 || out.column.length > 256 || out.member.length > 32) {
    throw new InvalidPayloadError('records field, column or member too long');
  }
  return out;
}

/** Go's JSON of a RecordsSpec (its field order, empty fields left out). */
function encodeRecords(r) {
  let j = `{"format":${goString(r.format)}`;
  if (r.field) j += `,"field":${goString(r.field)}`;
  if (r.column) j += `,"column":${goString(r.column)}`;
  if (r.header) j += ',"header":true';
  if (r.member) j += `,"member":${goString(r.member)}`;
  j += `,"shard_bytes":${r.shardBytes},"shard_records":${r.shardRecords}`;
  if (r.merge) j += ',"merge":true';
  return j + '}';
}

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
local it = redis.call("HGET", KEYS[3], ARGV[1])
local ok, item = pcall(cjson.decode, it or "")
if ok and type(item) == "table" and (tonumber(item.records) or 0) > 0 then
	redis.call("HINCRBY", KEYS[1], "records_failed", -item.records)
end
redis.call("HDEL", KEYS[1], "finished", "manifest")
for _, k in ipairs(KEYS) do redis.call("PERSIST", k) end
return 1
`;

/**
 * Records an item's final state once, for an item the batch holds with the
 * same task id, and finishes the batch when it was the last (Go's
 * finishItemSource, which a Go test holds equal). KEYS: record, status,
 * items. ARGV: key, state, item JSON, now (ms). Returns 0 (already final),
 * 1, 2 (this call finished the batch), 3 (the batch had finished before),
 * -1 (no such item), -2 (the item belongs to another task) or -3 (no such
 * batch).
 */
export const finishItemScript = `
local function expire_batch()
	local ok, spec = pcall(cjson.decode, redis.call("HGET", KEYS[1], "spec") or "")
	local s = ok and type(spec) == "table" and tonumber(spec.retention_seconds) or 604800
	if s < 1 then s = 604800 end
	if s > 315360000 then s = 315360000 end
	for _, k in ipairs(KEYS) do redis.call("EXPIRE", k, math.floor(s)) end
end
local function sync_expiry()
	local t = redis.call("PTTL", KEYS[1])
	if t > 0 then
		for i = 2, #KEYS do redis.call("PEXPIRE", KEYS[i], t) end
	end
end

local function finished(rec)
	if redis.call("HGET", rec, "listed") ~= "1" or redis.call("HEXISTS", rec, "finished") == 1 then
		return false
	end
	local n = {}
	for _, f in ipairs({"total", "done", "failed", "canceled", "skipped"}) do
		n[f] = tonumber(redis.call("HGET", rec, f) or "0")
	end
	if n.total - n.done - n.failed - n.canceled - n.skipped <= 0 then
		redis.call("HSET", rec, "finished", ARGV[#ARGV])
		expire_batch()
		return true
	end
	return false
end

if redis.call("HEXISTS", KEYS[1], "spec") == 0 then
	return -3
end
local cur = redis.call("HGET", KEYS[2], ARGV[1])
if not cur then
	return -1
end
local old = redis.call("HGET", KEYS[3], ARGV[1])
local o = old and cjson.decode(old) or {}
local n = cjson.decode(ARGV[3])
if type(o.task_id) ~= "string" or o.task_id == "" or o.task_id ~= n.task_id then
	return -2
end
if cur ~= "pending" then
	return 0
end
redis.call("HSET", KEYS[2], ARGV[1], ARGV[2])
if (n.output == nil or n.output == "") and o.output then n.output = o.output end
for _, f in ipairs({"object", "start", "end", "first", "records"}) do
	if n[f] == nil then n[f] = o[f] end
end
redis.call("HSET", KEYS[3], ARGV[1], cjson.encode(n))
redis.call("HINCRBY", KEYS[1], ARGV[2], 1)
local recs = tonumber(n.records) or 0
if recs > 0 then
	redis.call("HINCRBY", KEYS[1], "records_" .. ARGV[2], recs)
	local bad = tonumber(n.record_errors) or 0
	if bad > 0 then redis.call("HINCRBY", KEYS[1], "record_errors", bad) end
end
if redis.call("HEXISTS", KEYS[1], "finished") == 1 then
	sync_expiry()
	return 3
end
if finished(KEYS[1]) then return 2 end
return 1
`;

/**
 * An item's JSON as Go's json.Marshal(batch.Item) writes it, for the fields
 * a cancel sets: key, status, task_id, error.
 */
export function encodeItem({ key, status, taskId = '', error = '' }) {
  let j = `{"key":${goString(key)},"status":${goString(status)}`;
  if (taskId) j += `,"task_id":${goString(taskId)}`;
  if (error) j += `,"error":${goString(error)}`;
  return j + '}';
}

/**
 * The output key of input key rel under prefix, as Go's s3url.OutputKey:
 * "<prefix>/<rel>.<guest>.json", a digest guest shortened to 12 hex digits.
 */
function outputKey(prefix, rel, guest) {
  if (guest.startsWith('sha256:') && guest.length - 7 > 12) guest = guest.slice(7, 19);
  const name = `${rel}.${guest}.json`;
  const p = prefix.replace(/^\/+|\/+$/g, '');
  return p === '' ? name : `${p}/${name}`;
}

/**
 * The job of the object key of a batch whose spec (camelCase, as
 * batchStatus reads it) has its defaults, as Go's Spec.ItemJob: `{ type,
 * job, options }` for enqueue. The task id is the caller's to add.
 */
export function itemJob(spec, key) {
  const input = parsePrefix(spec.input, 'input');
  const output = parsePrefix(spec.output, 'output');
  const rel = key.startsWith(input.prefix) ? key.slice(input.prefix.length) : key;
  const job = {
    guest: spec.guest,
    input: `s3://${input.bucket}/${key}`,
    output: `s3://${output.bucket}/${outputKey(output.prefix, rel, spec.guest)}`,
    params: spec.params ?? {},
    batch: spec.id,
  };
  const options = { queue: spec.queue };
  if (spec.maxRetry !== undefined && spec.maxRetry !== null) options.maxRetry = spec.maxRetry;
  return { type: spec.type, job, options };
}

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
    records: spec.records == null ? null : recordsWithDefaults(spec.records),
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
    if (s.records) h.update(encodeRecords(s.records));
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
  if (s.records) j += `,"records":${encodeRecords(s.records)}`;
  j += `,"retention_seconds":${s.retentionSeconds}`;
  return j + '}';
}

// camelSpec is a stored spec (Go's snake_case JSON) in the camelCase of
// the BatchSpec startBatch takes: max_size → maxSize, max_retry → maxRetry,
// retention_seconds → retentionSeconds. Params keep their own keys.
function camelSpec(raw) {
  const out = {};
  for (const [k, v] of Object.entries(raw)) out[k.replace(/_([a-z])/g, (_, c) => c.toUpperCase())] = k === 'records' && v ? camelSpec(v) : v;
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
    ...(spec.records ? {
      records: num('records'), recordsDone: num('records_done'), recordsFailed: num('records_failed'),
      recordsCanceled: num('records_canceled'), recordErrors: num('record_errors'),
    } : {}),
  };
}
