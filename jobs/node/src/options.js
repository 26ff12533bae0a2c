// Enqueue options, folded the way asynq's composeOptions and
// Client.EnqueueContext fold them (asynq v0.26 client.go), and turned into
// the TaskMessage fields and Redis script calls asynq's client would make.

import { createHash, randomUUID } from 'node:crypto';
import { InvalidOptionError } from './errors.js';

/** asynq's defaults (client.go). */
export const DefaultMaxRetry = 25;
/** asynq's default per-attempt timeout, in milliseconds, used when neither timeout nor deadline is given. */
export const DefaultTimeout = 30 * 60 * 1000;
/** How long an inline job's result stays readable unless `retention` is given (Go: jobs.DefaultResultRetention), ms. */
export const DefaultResultRetention = 24 * 60 * 60 * 1000;

const optionNames = new Set([
  'queue', 'maxRetry', 'timeout', 'deadline', 'unique', 'processAt', 'processIn', 'retention', 'taskId', 'group',
]);

// isBlank is Go's strings.TrimSpace(s) == "": unicode.IsSpace's set, which
// differs from JS's \s (Go has U+0085 and lacks U+FEFF).
const goSpace = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/;
const isBlank = (s) => goSpace.test(s);

const given = (v) => v !== undefined && v !== null;

function duration(name, v) {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new InvalidOptionError(`wasmjobs: option ${name} must be a finite number of milliseconds, got ${String(v)}`);
  }
  return v;
}

function instant(name, v) {
  const ms = v instanceof Date ? v.getTime() : v;
  if (typeof ms !== 'number' || !Number.isFinite(ms)) {
    throw new InvalidOptionError(`wasmjobs: option ${name} must be a Date or a number of milliseconds since the epoch`);
  }
  return ms;
}

/**
 * Folds enqueue options into asynq's option values. Durations are in
 * milliseconds, instants Dates or epoch milliseconds. Throws InvalidOptionError
 * with asynq's messages.
 */
export function composeOptions(opts = {}) {
  if (opts === null || typeof opts !== 'object') throw new InvalidOptionError('wasmjobs: options must be an object');
  for (const k of Object.keys(opts)) {
    if (!optionNames.has(k) && given(opts[k])) throw new InvalidOptionError(`wasmjobs: unknown option ${JSON.stringify(k)}`);
  }
  const o = {
    queue: 'default',
    retry: DefaultMaxRetry,
    id: null,
    timeoutMs: 0,
    deadlineMs: null,
    uniqueMs: 0,
    processAtMs: null,
    retentionMs: 0,
    retentionGiven: given(opts.retention),
  };
  if (given(opts.queue)) {
    if (typeof opts.queue !== 'string' || isBlank(opts.queue)) {
      throw new InvalidOptionError('queue name must contain one or more characters');
    }
    o.queue = opts.queue;
  }
  if (given(opts.maxRetry)) {
    const n = opts.maxRetry;
    if (!Number.isSafeInteger(n)) throw new InvalidOptionError(`wasmjobs: option maxRetry must be an integer, got ${String(n)}`);
    if (n > 0x7fffffff) throw new InvalidOptionError(`wasmjobs: option maxRetry ${n} does not fit asynq's int32`);
    o.retry = Math.max(n, 0); // asynq.MaxRetry clamps negative values to 0
  }
  if (given(opts.taskId)) {
    if (typeof opts.taskId !== 'string' || isBlank(opts.taskId)) throw new InvalidOptionError('task ID cannot be empty');
    o.id = opts.taskId;
  }
  if (given(opts.timeout)) o.timeoutMs = duration('timeout', opts.timeout);
  if (given(opts.deadline)) o.deadlineMs = instant('deadline', opts.deadline);
  if (given(opts.unique)) {
    o.uniqueMs = duration('unique', opts.unique);
    if (o.uniqueMs < 1000) throw new InvalidOptionError('Unique TTL cannot be less than 1s');
  }
  if (given(opts.processAt) && given(opts.processIn)) {
    throw new InvalidOptionError('wasmjobs: give processAt or processIn, not both');
  }
  if (given(opts.processAt)) o.processAtMs = instant('processAt', opts.processAt);
  if (given(opts.processIn)) o.processAtMs = Date.now() + duration('processIn', opts.processIn);
  if (o.retentionGiven) o.retentionMs = duration('retention', opts.retention);
  // No wasmjobs worker aggregates groups: a grouped job would wait in
  // state "aggregating" forever (Go: jobs.ErrGroupUnsupported).
  if (given(opts.group)) {
    throw new InvalidOptionError('wasmjobs: the group option is not supported: no wasmjobs worker aggregates groups, so the job would wait in state "aggregating" forever; enqueue it without a group');
  }
  return o;
}

// Go's int64(d.Seconds()) and int(d.Seconds()) truncate toward zero.
const seconds = (ms) => Math.trunc(ms / 1000);
// Go's time.Time.Unix() floors.
const unix = (ms) => Math.floor(ms / 1000);

let lastNanos = 0n;
/**
 * Wall-clock unix nanoseconds for pending_since: Date.now()'s milliseconds
 * plus a sub-millisecond part from the monotonic clock, never repeating or
 * going backwards within this process.
 */
export function unixNanos() {
  let n = BigInt(Date.now()) * 1000000n + (process.hrtime.bigint() % 1000000n);
  if (n <= lastNanos) n = lastNanos + 1n;
  lastNanos = n;
  return n;
}

/** The key of a unique lock, as asynq's base.UniqueKey. */
export function uniqueKey(queue, type, payload) {
  return `asynq:{${queue}}:unique:${type}:${createHash('md5').update(payload).digest('hex')}`;
}

/**
 * Builds what asynq's Client.EnqueueContext sends for a task: the message
 * fields, the state the task lands in, and the script with its KEYS and ARGV
 * (except the encoded message, which the caller adds: see scriptCall).
 */
export function planEnqueue(type, payload, o) {
  const id = o.id ?? randomUUID();
  const qp = `asynq:{${o.queue}}:`;
  // noDeadline is time.Unix(0, 0): a deadline at the epoch counts as none.
  const hasDeadline = o.deadlineMs !== null && o.deadlineMs !== 0;
  let timeoutMs = o.timeoutMs;
  if (!hasDeadline && timeoutMs === 0) timeoutMs = DefaultTimeout;
  const msg = {
    type,
    payload,
    id,
    queue: o.queue,
    retry: o.retry,
    timeout: seconds(timeoutMs),
    deadline: hasDeadline ? unix(o.deadlineMs) : 0,
    uniqueKey: o.uniqueMs > 0 ? uniqueKey(o.queue, type, payload) : '',
    groupKey: '',
    retention: seconds(o.retentionMs),
  };
  const now = Date.now();
  const taskKey = qp + 't:' + id;
  let state, script, keys, args;
  if (o.processAtMs !== null && o.processAtMs > now) {
    state = 'scheduled';
    if (o.uniqueMs > 0) {
      script = 'scheduleUniqueCmd';
      keys = [msg.uniqueKey, taskKey, qp + 'scheduled'];
      args = [id, String(seconds(o.processAtMs + o.uniqueMs - now)), String(unix(o.processAtMs)), null];
    } else {
      script = 'scheduleCmd';
      keys = [taskKey, qp + 'scheduled'];
      args = [null, String(unix(o.processAtMs)), id];
    }
  } else {
    state = 'pending';
    if (o.uniqueMs > 0) {
      script = 'enqueueUniqueCmd';
      keys = [msg.uniqueKey, taskKey, qp + 'pending'];
      args = [id, String(seconds(o.uniqueMs)), null, unixNanos().toString()];
    } else {
      script = 'enqueueCmd';
      keys = [taskKey, qp + 'pending'];
      args = [null, id, unixNanos().toString()];
    }
  }
  return { id, queue: o.queue, type, state, msg, script, keys, args };
}
