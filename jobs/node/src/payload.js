// Job payloads: validation identical to the Go client's (internal/queue/payload.go,
// internal/s3url/url.go) and a JSON encoder that writes the bytes Go's encoding/json
// writes for jobs.Payload, so that equal jobs have equal payloads (and so
// equal unique-lock keys) whichever client enqueued them.

import { InvalidPayloadError } from './errors.js';

/** Task type of image jobs. */
export const TypeImage = 'wasm:image';
/** Task type of text jobs. */
export const TypeText = 'wasm:text';
/** The largest input that may travel inline (`data`) instead of in S3. */
export const MaxInlineBytes = 64 << 10;

const maxParams = 64;
const maxParamValue = 4096;
const guestNameRE = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const guestDigestRE = /^sha256:[0-9a-f]{64}$/;
const paramKeyRE = /^[A-Za-z0-9_.-]{1,64}$/;

// quote approximates Go's %q for the ASCII-ish strings of error messages.
const quote = (s) => JSON.stringify(s);
const byteLength = (s) => Buffer.byteLength(s, 'utf8');
// A JS string holds UTF-16; a lone surrogate is what invalid UTF-8 is in Go.
const wellFormed = (s) => s.isWellFormed();

/**
 * Checks a guest reference: a name of lowercase letters, digits, '.', '_' and
 * '-' (at most 63), or a digest "sha256:<64 hex>". Throws InvalidPayloadError.
 */
export function validateGuestRef(ref) {
  if (ref === undefined || ref === null || ref === '') {
    throw new InvalidPayloadError('guest is empty; name a registered guest or a sha256:<hex> digest');
  }
  if (typeof ref !== 'string') throw new InvalidPayloadError(`guest must be a string, got ${typeof ref}`);
  if (ref.startsWith('sha256:')) {
    if (!guestDigestRE.test(ref)) {
      throw new InvalidPayloadError(`guest digest ${quote(ref)}: want sha256: followed by 64 lowercase hex digits`);
    }
  } else if (!guestNameRE.test(ref)) {
    throw new InvalidPayloadError(
      `guest name ${quote(ref)}: use 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
}

/** Checks the S3 bucket naming rules, as s3url.ValidateBucket; returns an error message or null. */
function bucketProblem(b) {
  const bytes = Buffer.from(b, 'utf8');
  if (bytes.length < 3 || bytes.length > 63) return `bucket name ${quote(b)} must be 3 to 63 characters`;
  for (const c of bytes) {
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2d;
    if (!ok) return `bucket name ${quote(b)} has '${String.fromCharCode(c)}'; use lowercase letters, digits, '.' and '-'`;
  }
  const first = b[0], last = b[b.length - 1];
  if (first === '.' || first === '-' || last === '.' || last === '-') {
    return `bucket name ${quote(b)} must start and end with a letter or digit`;
  }
  if (b.includes('..')) return `bucket name ${quote(b)} must not contain ".."`;
  return null;
}

function keyProblem(k) {
  if (byteLength(k) > 1024) return `object key is ${byteLength(k)} bytes, at most 1024 allowed`;
  if (!wellFormed(k)) return 'object key is not valid UTF-8';
  for (const ch of k) {
    const r = ch.codePointAt(0);
    if (r < 0x20 || r === 0x7f) {
      return `object key contains control character U+${r.toString(16).toUpperCase().padStart(4, '0')}`;
    }
  }
  return null;
}

/**
 * Parses "s3://bucket/key" as s3url.ParseObjectURL does. Returns
 * `{ bucket, key }`, or throws an Error (not wrapped as a payload error).
 */
export function parseObjectURL(s) {
  if (typeof s !== 'string' || !s.startsWith('s3://')) {
    throw new Error(`${quote(String(s))} is not an s3://bucket/key URL`);
  }
  const rest = s.slice(5);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const key = slash < 0 ? '' : rest.slice(slash + 1);
  if (slash < 0 || key === '') throw new Error(`${quote(s)} has no object key: want s3://bucket/key`);
  const problem = bucketProblem(bucket) ?? keyProblem(key);
  if (problem) throw new Error(`${quote(s)}: ${problem}`);
  return { bucket, key };
}

const present = (v) => v !== undefined && v !== null;

/** Returns the inline data as bytes, or null when the job has none. */
function dataBytes(data) {
  if (!present(data)) return null;
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (data instanceof Uint8Array) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  throw new InvalidPayloadError(`data must be a string, Buffer or Uint8Array, got ${typeof data}`);
}

function optionalString(p, field) {
  const v = p[field];
  if (!present(v)) return '';
  if (typeof v !== 'string') throw new InvalidPayloadError(`${field} must be a string, got ${typeof v}`);
  return v;
}

/**
 * Validates a job and returns its normalized form: `{ guest, input, data,
 * output, params, batch }` with `data` a Buffer or null and the strings ''
 * when absent. Throws InvalidPayloadError with the Go client's message.
 * `undefined` and `null` fields count as absent; an empty string or Buffer
 * as `data` is an empty inline input.
 */
export function normalizeJob(job) {
  if (job === null || typeof job !== 'object' || Array.isArray(job)) {
    throw new InvalidPayloadError('a job must be an object');
  }
  validateGuestRef(job.guest);
  const input = optionalString(job, 'input');
  const data = dataBytes(job.data);
  if (input !== '' && data !== null) {
    throw new InvalidPayloadError('both input and data are set; give exactly one');
  }
  if (input === '' && data === null) {
    throw new InvalidPayloadError('neither input nor data is set; give exactly one');
  }
  if (input !== '') {
    try { parseObjectURL(input); } catch (err) { throw new InvalidPayloadError(`input: ${err.message}`); }
  } else if (data.length > MaxInlineBytes) {
    throw new InvalidPayloadError(`inline data is ${data.length} bytes, more than the ${MaxInlineBytes} allowed; ` +
      'upload it to S3 and pass its s3:// URL as input');
  }
  const output = optionalString(job, 'output');
  if (output !== '') {
    try { parseObjectURL(output); } catch (err) { throw new InvalidPayloadError(`output: ${err.message}`); }
  }
  const params = {};
  if (present(job.params)) {
    if (typeof job.params !== 'object' || Array.isArray(job.params) || job.params instanceof Map) {
      throw new InvalidPayloadError('params must be an object of strings');
    }
    const keys = Object.keys(job.params);
    if (keys.length > maxParams) {
      throw new InvalidPayloadError(`${keys.length} params, at most ${maxParams} allowed`);
    }
    for (const k of keys) {
      const v = job.params[k];
      if (!paramKeyRE.test(k)) {
        throw new InvalidPayloadError(`param name ${quote(k)}: use 1-64 letters, digits, '_', '.' or '-'`);
      }
      if (typeof v !== 'string') throw new InvalidPayloadError(`param ${quote(k)} must be a string, got ${typeof v}`);
      if (byteLength(v) > maxParamValue) {
        throw new InvalidPayloadError(`param ${quote(k)} is ${byteLength(v)} bytes, at most ${maxParamValue} allowed`);
      }
      if (v.includes('\0')) throw new InvalidPayloadError(`param ${quote(k)} contains a NUL byte`);
      if (!wellFormed(v)) throw new InvalidPayloadError(`param ${quote(k)} is not valid UTF-8`);
      params[k] = v;
    }
  }
  const batch = optionalString(job, 'batch');
  if (byteLength(batch) > 128) throw new InvalidPayloadError('batch id longer than 128 bytes');
  if (!wellFormed(batch)) throw new InvalidPayloadError('batch id is not valid UTF-8');
  return { guest: job.guest, input, data, output, params, batch };
}

/** Validates a job; throws InvalidPayloadError. */
export function validateJob(job) {
  normalizeJob(job);
}

const htmlUnsafe = /[<>&\u2028\u2029]/g;
const escapeHTML = (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0');

// goString writes s as Go's encoding/json does: JSON.stringify's escapes
// (short forms for \b \f \n \r \t, \u00xx for other controls, lowercase hex)
// plus Go's HTML-safe escapes of <, >, & and U+2028/U+2029. Strings reaching
// it are well formed (validated), so no lone surrogate needs U+FFFD.
export const goString = (s) => JSON.stringify(s).replace(htmlUnsafe, escapeHTML);

/**
 * Encodes a normalized job (see normalizeJob) as the payload bytes Go's
 * json.Marshal(jobs.Payload) writes: keys guest, input, data, output, params
 * (sorted), batch; empty strings and params omitted; data as padded base64,
 * an empty inline input as "data":"".
 */
export function encodeNormalized(n) {
  let s = '{"guest":' + goString(n.guest);
  if (n.input !== '') s += ',"input":' + goString(n.input);
  if (n.data !== null) s += ',"data":"' + n.data.toString('base64') + '"';
  if (n.output !== '') s += ',"output":' + goString(n.output);
  const keys = Object.keys(n.params);
  if (keys.length > 0) {
    keys.sort(); // keys are ASCII (validated): UTF-16 order is Go's byte order
    s += ',"params":{' + keys.map((k) => goString(k) + ':' + goString(n.params[k])).join(',') + '}';
  }
  if (n.batch !== '') s += ',"batch":' + goString(n.batch);
  return Buffer.from(s + '}', 'utf8');
}

/** Validates a job and returns its payload bytes, exactly as the Go client writes them. */
export function encodePayload(job) {
  return encodeNormalized(normalizeJob(job));
}

/** Checks a task type: 'wasm:image' or 'wasm:text'. Throws InvalidPayloadError. */
export function validateTaskType(type) {
  if (type !== TypeImage && type !== TypeText) {
    throw new InvalidPayloadError(`task type ${quote(String(type))}: want "${TypeImage}" or "${TypeText}"`);
  }
}
