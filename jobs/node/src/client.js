// Client: the Node counterpart of the Go jobs.Client. It writes what asynq
// v0.26's Go client writes: the same TaskMessage bytes, Redis keys and Lua
// scripts (run by EVALSHA with the same digests, EVAL on NOSCRIPT).

import { setTimeout as sleep } from 'node:timers/promises';
import Redis from 'ioredis';
import {
  BatchNotFoundError, DuplicateTaskError, InvalidOptionError, InvalidPayloadError, JobFailedError, JobNotDoneError, JobNotFoundError,
  JobRunningError, OutputInUseError, RedisError, ResultNotJSONError, TaskIdConflictError, TimeoutError, WasmjobsError,
} from './errors.js';
import { composeOptions, DefaultResultRetention, planEnqueue } from './options.js';
import { encodeNormalized, normalizeJob, TypeImage, TypeText, validateTaskType } from './payload.js';
import { scripts } from './scripts.js';
import {
  batchesKey, batchItemsKey, batchKey, batchOutputKey, batchSpecWithDefaults, batchStatusKey, decodeBatchStatus, encodeBatchSpec,
  encodeItem, finishItemScript, itemJob, retryItemScript, swapClaimScript, TypeBatch,
} from './batch.js';
import { decodeTaskMessage, encodeTaskMessage } from './taskmessage.js';
import { Completions, QueueEvents, wakeChannel } from './notify.js';

const allQueues = 'asynq:queues';
const jobFields = new Set(['guest', 'input', 'data', 'output', 'params', 'batch']);
const manyChunk = 1000;

/**
 * Builds a task without enqueueing it, as Go's jobs.NewTask: validates the
 * type, the job and the options, and applies the default retention of inline
 * jobs without output. Returns `{ type, payload, options }` where options are
 * the folded asynq options. Throws InvalidPayloadError or InvalidOptionError.
 */
export function newTask(type, job, opts = {}) {
  validateTaskType(type);
  checkJobKeys(job, jobFields);
  const n = normalizeJob(job);
  const payload = encodeNormalized(n);
  const options = composeOptions(opts);
  if (n.data !== null && n.output === '' && !options.retentionGiven) {
    options.retentionMs = DefaultResultRetention;
    options.retentionGiven = true;
  }
  return { type, payload, options };
}

function checkJobKeys(job, allowed) {
  if (job === null || typeof job !== 'object' || Array.isArray(job)) {
    throw new InvalidPayloadError('a job must be an object');
  }
  for (const k of Object.keys(job)) {
    if (!allowed.has(k) && job[k] !== undefined) throw new InvalidPayloadError(`unknown field ${JSON.stringify(k)}`);
  }
}

const isNoScript = (err) => err instanceof Error && err.message.startsWith('NOSCRIPT');

// checkDecode refuses an unknown result decoding before anything is sent.
function checkDecode(decode) {
  if (decode !== undefined && decode !== 'buffer' && decode !== 'json' && decode !== 'text') {
    throw new TypeError(`wasmjobs: decode ${JSON.stringify(decode)}: want 'buffer' (the default), 'json' or 'text'`);
  }
}

// decodeResult is a completed job's result as asked: the Buffer, its text
// (UTF-8), or its JSON value (a result that is not JSON rejects with
// ResultNotJSONError, which carries the Buffer).
function decodeResult(buf, decode, queue, id) {
  if (decode === 'text') return buf.toString('utf8');
  if (decode !== 'json') return buf;
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch (err) {
    throw new ResultNotJSONError(queue, id, buf, err);
  }
}

const taskKey = (queue, id) => `asynq:{${queue}}:t:${id}`;
// The task hash's field in which a worker keeps a completed job's log
// (Go: queue.LogField).
const jobLogField = 'wasmjobs_log';

function checkQueueId(call, queue, id) {
  if (typeof queue !== 'string' || typeof id !== 'string') throw new TypeError(`wasmjobs: ${call}(queue, id) takes two strings`);
}

// isNodeRedis recognises a client of the `redis` package (node-redis),
// which would otherwise be taken for ioredis options.
function isNodeRedis(r) {
  return r !== null && typeof r === 'object' && typeof r.sendCommand === 'function' && 'isOpen' in r && typeof r.evalSha === 'function';
}

function isRedisInstance(r) {
  return r !== null && typeof r === 'object' && typeof r.pipeline === 'function' && typeof r.evalsha === 'function';
}

/**
 * Parses the part of a redis-cluster:// or redis-sentinel:// URL after the
 * scheme, as the Go command does: [user:password@]host:port,host:port,…
 * with an optional /db path and ?query.
 */
function parseNodesURL(scheme, rest) {
  let username, password;
  const q = rest.indexOf('?');
  const query = new URLSearchParams(q >= 0 ? rest.slice(q + 1) : '');
  if (q >= 0) rest = rest.slice(0, q);
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const auth = rest.slice(0, at);
    const colon = auth.indexOf(':');
    [username, password] = colon >= 0 ? [auth.slice(0, colon), auth.slice(colon + 1)] : [auth, undefined];
    rest = rest.slice(at + 1);
  }
  const [hosts, db] = rest.split('/');
  // asynq connects these to database 0 and ignores a path: one naming
  // another database would silently write elsewhere than asked.
  if (db !== undefined && db !== '' && db !== '0') {
    throw new TypeError(`wasmjobs: ${scheme} URLs name no database (asynq uses database 0 there): drop /${db}`);
  }
  rest = hosts;
  const nodes = rest.split(',').map((addr) => {
    const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(addr);
    if (!m) throw new TypeError(`wasmjobs: ${scheme} node ${JSON.stringify(addr)}: want host:port`);
    return { host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) };
  });
  return { nodes, query, username: decodeURIComponent(username ?? '') || undefined, password: password === undefined ? undefined : decodeURIComponent(password) };
}

/**
 * Enqueues wasmjobs jobs into Redis and reads their results. One Client holds
 * one Redis connection (ioredis) and may be shared by the whole process.
 */
export class Client {
  #redis;
  #own;
  #callTimeout;
  #where;
  #lastError = null;
  #published = new Set();
  #closed = false;
  #pollInterval;
  #completions = null;
  // #cluster: the connection is a Redis Cluster, where one pipeline (or
  // transaction) may only hold keys of one node: commands on asynq:queues
  // and on a queue's {keys} go separately.
  #cluster = false;

  /**
   * @param {object} [config]
   * @param {string|object} [config.redis] a redis:// or rediss:// URL, a
   *   redis-sentinel://[:password@]host:port,…?master=NAME or
   *   redis-cluster://[user:password@]host:port,… URL (as the wasmjobs command
   *   takes), ioredis options, or an ioredis instance or Cluster (which
   *   close() leaves open). Defaults to redis://127.0.0.1:6379.
   * @param {number} [config.callTimeout] how long one call waits on Redis before
   *   rejecting with TimeoutError, in ms. Defaults to 10000.
   * @param {number} [config.pollInterval] how often wait() reads a job's state
   *   when no worker's notification comes, in ms. Defaults to 1000.
   */
  constructor({ redis = 'redis://127.0.0.1:6379', callTimeout = 10_000, pollInterval = 1000 } = {}) {
    if (!(callTimeout > 0)) throw new TypeError('wasmjobs: callTimeout must be a positive number of milliseconds');
    if (!(pollInterval > 0)) throw new TypeError('wasmjobs: pollInterval must be a positive number of milliseconds');
    this.#callTimeout = callTimeout;
    this.#pollInterval = pollInterval;
    if (isNodeRedis(redis)) {
      throw new TypeError('wasmjobs: redis is a node-redis client; pass an ioredis instance or Cluster, ioredis options, or a redis:// URL');
    }
    if (isRedisInstance(redis)) {
      this.#redis = redis;
      this.#own = false;
    } else {
      // Fail fast while Redis is away: a command is retried over at most one
      // reconnection, and our own per-call timer bounds the rest.
      const defaults = {
        lazyConnect: true,
        maxRetriesPerRequest: 1,
        connectTimeout: Math.min(callTimeout, 10_000),
        retryStrategy: (times) => Math.min(times * 100, 500),
      };
      if (typeof redis === 'string' && redis.startsWith('redis-cluster://')) {
        const { nodes, username, password } = parseNodesURL('redis-cluster://', redis.slice('redis-cluster://'.length));
        const { lazyConnect, ...perNode } = defaults;
        this.#redis = new Redis.Cluster(nodes, { lazyConnect, redisOptions: { ...perNode, username, password }, clusterRetryStrategy: defaults.retryStrategy });
      } else if (typeof redis === 'string' && redis.startsWith('redis-sentinel://')) {
        // As asynq reads it: the password is the Sentinels' own, master
        // names the monitored primary, and the client follows failovers.
        const { nodes, query, password } = parseNodesURL('redis-sentinel://', redis.slice('redis-sentinel://'.length));
        const name = query.get('master');
        if (!name) throw new TypeError('wasmjobs: redis-sentinel:// URL without ?master=NAME');
        this.#redis = new Redis({
          ...defaults, sentinels: nodes, name, sentinelPassword: password,
          sentinelRetryStrategy: defaults.retryStrategy, failoverDetector: true,
        });
      } else if (typeof redis === 'string') {
        if (!/^rediss?:\/\//.test(redis)) throw new TypeError(`wasmjobs: Redis URL ${JSON.stringify(redis.replace(/\/\/[^@/]*@/, '//…@'))}: want redis://, rediss://, redis-sentinel:// or redis-cluster://`);
        this.#redis = new Redis(redis, defaults);
      } else if (redis !== null && typeof redis === 'object') {
        this.#redis = new Redis({ ...defaults, ...redis });
      } else {
        throw new TypeError('wasmjobs: redis must be a URL, ioredis options or an ioredis instance');
      }
      this.#own = true;
      // Keep the last connection error for messages; without a listener
      // ioredis would also print every reconnection failure.
      this.#redis.on('error', (err) => { this.#lastError = err; });
    }
    this.#cluster = this.#redis instanceof Redis.Cluster;
    const o = this.#redis.options ?? {};
    if (this.#cluster) {
      this.#where = 'cluster ' + (this.#redis.startupNodes ?? []).map((n) => (typeof n === 'object' ? `${n.host}:${n.port}` : String(n))).join(',');
    } else if (o.sentinels) {
      this.#where = `primary ${o.name} of sentinel ${o.sentinels.map((n) => `${n.host}:${n.port}`).join(',')}`;
    } else {
      this.#where = o.path ? `${o.path}` : `${o.host ?? '127.0.0.1'}:${o.port ?? 6379}/${o.db ?? 0}`;
    }
  }

  /** The ioredis connection this client uses. */
  get redis() { return this.#redis; }

  /** Enqueues an image job (task type wasm:image). Resolves with `{ id, queue, state, type }`. */
  enqueueImage(job, opts) { return this.enqueue(TypeImage, job, opts); }

  /** Enqueues a text job (task type wasm:text). Resolves with `{ id, queue, state, type }`. */
  enqueueText(job, opts) { return this.enqueue(TypeText, job, opts); }

  /**
   * Enqueues a job of the given type ('wasm:image' or 'wasm:text'). Rejects
   * with InvalidPayloadError or InvalidOptionError before touching Redis,
   * with TaskIdConflictError or DuplicateTaskError as asynq's client does,
   * and with RedisError or TimeoutError when Redis fails.
   */
  async enqueue(type, job, opts) {
    return this.#enqueuePlan(this.#plan(type, job, opts), `enqueue ${type}`);
  }

  // #enqueuePlan writes one task and, in the same pipeline, wakes the
  // queue's idle workers (a scheduled task wakes nobody: it is not pending).
  async #enqueuePlan(plan, what) {
    const { sha, lua } = scripts[plan.script];
    const args = [plan.keys.length, ...plan.keys, ...plan.args];
    return this.#call(what, async () => {
      // Like asynq's client, which adds a queue to asynq:queues once.
      const first = !this.#published.has(plan.queue);
      if (this.#cluster) return this.#enqueueOnCluster(plan, first, args, lua);
      const send = async (script) => {
        const pipe = this.#redis.pipeline();
        if (first) pipe.sadd(allQueues, plan.queue);
        script(pipe);
        wake(pipe, [plan]);
        const res = await pipe.exec();
        if (first && res[0][0]) throw res[0][0];
        return res[first ? 1 : 0];
      };
      let [err, n] = await send((pipe) => pipe.evalsha(sha, ...args));
      if (isNoScript(err)) [err, n] = await send((pipe) => pipe.eval(lua, ...args));
      if (err) throw err;
      if (first) this.#published.add(plan.queue);
      return outcome(plan, n);
    });
  }

  // #enqueueOnCluster is #enqueuePlan's write on a Redis Cluster: the queue
  // index, the task (EVAL: a script loaded on one node is not on the others)
  // and the wake-up, each on its own node.
  async #enqueueOnCluster(plan, first, args, lua) {
    if (first) await this.#redis.sadd(allQueues, plan.queue);
    const n = await this.#redis.eval(lua, ...args);
    await this.#wakeOnCluster([plan]);
    if (first) this.#published.add(plan.queue);
    return outcome(plan, n);
  }

  // #wakeOnCluster publishes the wake-ups of plans; a failed one leaves the
  // tasks to the workers' polls.
  async #wakeOnCluster(plans) {
    const pipe = this.#redis.pipeline();
    wake(pipe, plans);
    if (pipe.length > 0) await pipe.exec().catch(() => {});
  }

  /**
   * Enqueues many jobs in pipelined round trips (1000 jobs per pipeline),
   * each pipeline waking the idle workers of its queues once.
   * Each item is a job that may also carry `type` (default `opts.type`, else
   * 'wasm:text') and `options` (merged over `opts`). Resolves with one entry
   * per job, in order, shaped like Promise.allSettled's: `{ status:
   * 'fulfilled', value: info }` or `{ status: 'rejected', reason: error }`.
   * A pipeline that fails or times out rejects its own jobs only, with the
   * RedisError or TimeoutError; the other pipelines' jobs keep their
   * results. A timed-out pipeline's jobs may have been written: enqueue them
   * again with the same task ids (options.taskId) and a TaskIdConflictError
   * says one is there.
   */
  async enqueueMany(jobs, opts = {}) {
    if (!Array.isArray(jobs)) throw new TypeError('wasmjobs: enqueueMany takes an array of jobs');
    const { type: defaultType = TypeText, ...shared } = opts ?? {};
    const results = new Array(jobs.length);
    const plans = [];
    for (let i = 0; i < jobs.length; i++) {
      try {
        const item = jobs[i];
        checkJobKeys(item, manyFields);
        const { type = defaultType, options, ...job } = item;
        plans.push({ i, plan: this.#plan(type, job, { ...shared, ...options }) });
      } catch (err) {
        results[i] = { status: 'rejected', reason: err };
      }
    }
    const chunks = [];
    for (let c = 0; c < plans.length; c += manyChunk) chunks.push(plans.slice(c, c + manyChunk));
    await Promise.all(chunks.map(async (chunk) => {
      // Each pipeline settles into its own array, copied over once it
      // answered in time: one that times out cannot change the results
      // after they were returned.
      const own = [];
      try {
        await this.#call(`enqueue ${chunk.length} jobs`, () => this.#runMany(chunk, own));
        for (const { i } of chunk) results[i] = own[i];
      } catch (err) {
        for (const { i } of chunk) results[i] = { status: 'rejected', reason: err };
      }
    }));
    return results;
  }

  async #runMany(chunk, results) {
    if (this.#cluster) return this.#runManyOnCluster(chunk, results);
    const pipe = this.#redis.pipeline();
    pipe.sadd(allQueues, ...new Set(chunk.map((p) => p.plan.queue)));
    for (const { plan } of chunk) pipe.evalsha(scripts[plan.script].sha, plan.keys.length, ...plan.keys, ...plan.args);
    wake(pipe, chunk.map((p) => p.plan));
    const res = await pipe.exec();
    if (res[0][0]) throw res[0][0];
    const again = [];
    chunk.forEach((p, k) => {
      const [err, n] = res[k + 1];
      if (isNoScript(err)) again.push(p);
      else settle(results, p, err, n);
    });
    if (again.length === 0) return;
    // The scripts were flushed (or never loaded): load them, then retry only
    // the commands that did not run.
    const load = this.#redis.pipeline();
    for (const name of new Set(again.map((p) => p.plan.script))) load.script('LOAD', scripts[name].lua);
    for (const [err] of await load.exec()) if (err) throw err;
    const retry = this.#redis.pipeline();
    for (const { plan } of again) retry.evalsha(scripts[plan.script].sha, plan.keys.length, ...plan.keys, ...plan.args);
    wake(retry, again.map((p) => p.plan));
    const res2 = await retry.exec();
    again.forEach((p, k) => settle(results, p, res2[k][0], res2[k][1]));
  }

  // #runManyOnCluster is #runMany on a Redis Cluster: one pipeline per
  // queue (a queue's keys share its {hash tag}, so one node), the queue
  // index and the wake-ups apart.
  async #runManyOnCluster(chunk, results) {
    await this.#redis.sadd(allQueues, ...new Set(chunk.map((p) => p.plan.queue)));
    const byQueue = new Map();
    for (const p of chunk) {
      if (!byQueue.has(p.plan.queue)) byQueue.set(p.plan.queue, []);
      byQueue.get(p.plan.queue).push(p);
    }
    await Promise.all([...byQueue.values()].map(async (group) => {
      const pipe = this.#redis.pipeline();
      for (const { plan } of group) pipe.eval(scripts[plan.script].lua, plan.keys.length, ...plan.keys, ...plan.args);
      const res = await pipe.exec();
      group.forEach((p, k) => settle(results, p, res[k][0], res[k][1]));
    }));
    await this.#wakeOnCluster(chunk.map((p) => p.plan));
  }

  #plan(type, job, opts) {
    const { payload, options } = newTask(type, job, opts);
    const plan = planEnqueue(type, payload, options);
    const msg = Buffer.from(encodeTaskMessage(plan.msg));
    plan.args = plan.args.map((a) => (a === null ? msg : a));
    return plan;
  }

  /**
   * Starts a dataset run, as Go's Client.StartBatch: writes the batch record
   * (or finds it, so the same spec resumes) and enqueues its plan; a worker
   * lists `spec.input` and enqueues one job per object. `spec`: `{ guest,
   * type: 'image'|'text', input: 's3://bucket/prefix/', output?, include?,
   * maxSize?, queue?, params?, maxRetry?, retentionSeconds?, id? }`
   * (retentionSeconds: how long the record stays in Redis after the batch
   * finished, default 7 days). Resolves with the batch
   * status (see batchStatus).
   */
  async startBatch(spec) {
    const s = batchSpecWithDefaults(spec);
    const json = encodeBatchSpec(s);
    const key = batchKey(s.id);
    const sameSpec = (st) => {
      for (const f of ['input', 'guest', 'type', 'output']) {
        if (st.spec[f] !== s[f]) {
          throw new InvalidPayloadError(`batch ${s.id} exists with a different spec (input ${st.spec.input}, guest ${st.spec.guest})`);
        }
      }
    };
    // As Go's CreateBatch: a new batch claims its output prefix, and a
    // prefix another batch owns is refused before any record is written.
    const existing = await this.#call(`batch ${s.id}`, () => this.#redis.hgetall(key));
    if (existing && existing.spec) sameSpec(decodeBatchStatus(s.id, existing));
    const claimKey = batchOutputKey(s.output);
    const owner = await this.#call(`start batch ${s.id}`, async () => {
      if (await this.#redis.setnx(claimKey, s.id)) return s.id;
      const held = await this.#redis.get(claimKey);
      // An owner whose record expired or was deleted frees the prefix.
      if (held !== s.id && held !== null && !(await this.#redis.exists(batchKey(held)))) {
        if (await this.#redis.eval(swapClaimScript, 1, claimKey, held, s.id)) return s.id;
      }
      return held;
    });
    if (owner !== s.id) throw new OutputInUseError(s.id, s.output, owner);
    await this.#call(`start batch ${s.id}`, async () => {
      const now = Date.now();
      // The record, then the global index: a transaction may only touch
      // one hash slot on Redis Cluster.
      const res = await this.#redis.multi()
        .hsetnx(key, 'spec', json)
        .hsetnx(key, 'started', String(now))
        .exec();
      for (const [err] of res) if (err) throw err;
      await this.#redis.zadd(batchesKey, 'NX', now, s.id);
    });
    const st = await this.batchStatus(s.id);
    sameSpec(st);
    const plan = planEnqueue(TypeBatch, Buffer.from(json, 'utf8'), composeOptions({ queue: s.queue, maxRetry: 5 }));
    plan.args = plan.args.map((a) => (a === null ? Buffer.from(encodeTaskMessage(plan.msg)) : a));
    await this.#enqueuePlan(plan, `enqueue batch plan ${s.id}`);
    return st;
  }

  /**
   * Reads a batch's record, as Go's Client.BatchStatus: `{ id, spec, total,
   * enqueued, done, failed, canceled, skipped, bytes, listed,
   * cancelRequested, manifestWritten, started, finished }`. Rejects with
   * JobNotFoundError when there is no such batch.
   */
  async batchStatus(id) {
    if (typeof id !== 'string' || id === '') throw new TypeError('wasmjobs: batchStatus(id) takes a batch id');
    const h = await this.#call(`batch ${id}`, () => this.#redis.hgetall(batchKey(id)));
    if (!h || !h.spec) throw new BatchNotFoundError(id);
    return decodeBatchStatus(id, h);
  }

  /**
   * The ends of a queue's jobs as events, like BullMQ's QueueEvents:
   * `'completed'` ({ jobId, queue }) and `'failed'` ({ jobId, queue,
   * failedReason }). Await `ready` before relying on it; close() it when
   * done (close() of the client does not).
   */
  queueEvents(queue) {
    if (typeof queue !== 'string' || queue === '') throw new TypeError('wasmjobs: queueEvents(queue) takes a queue name');
    return new QueueEvents(this.#redis, queue, decodeTaskMessage);
  }

  /**
   * Cancels a batch, as Go's CancelBatch: nothing more of it is planned, its
   * waiting jobs (pending, scheduled, retrying) are deleted at once and
   * their items recorded as canceled ("batch canceled"), with the script
   * Go's FinishBatchItem runs; running jobs finish, and a job of it a worker
   * takes later ends as canceled without running its guest.
   *
   * Resolves with `{ canceled, finished, status }`, as Go's two results:
   * `canceled` is the number of jobs this call canceled, `finished` whether
   * this call finished the batch, and `status` the batch's status read
   * after it (cancelRequested true). Rejects with BatchNotFoundError when
   * there is no such batch.
   *
   * This client writes no S3: when the cancel finished the batch (no job of
   * it was running), a worker serving its queue writes the manifest, at the
   * first pass of its reconciler once the batch has been finished for
   * Recorder.ManifestGrace (30 s; the pass runs about once a minute). When
   * jobs were running, the last of them writes it as it ends.
   */
  async cancelBatch(id) {
    const st = await this.batchStatus(id);
    const queue = st.spec.queue || 'default';
    await this.#call(`cancel batch ${id}`, () => this.#redis.hset(batchKey(id), 'cancel', '1'));
    // Like asynq's Inspector.DeleteTask, which cancels nothing of a queue
    // asynq does not know.
    const known = await this.#call(`read queue ${queue}`, () => this.#redis.sismember(allQueues, queue));
    const batchKeys = [batchKey(id), batchStatusKey(id), batchItemsKey(id)];
    let canceled = 0;
    let finished = false;
    for await (const items of this.#batchItems(id, 'pending')) {
      const jobs = items.filter((it) => it.taskId !== '');
      if (!known || jobs.length === 0) continue;
      // One pipeline for the queue's slot, then one for the batch's: on
      // Redis Cluster the two live on different nodes.
      const { lua } = scripts.deleteTaskCmd;
      const deleted = await this.#call(`cancel batch ${id} jobs`, () => jobs.reduce((pipe, it) => pipe.eval(lua, 2,
        taskKey(queue, it.taskId), `asynq:{${queue}}:groups`, it.taskId, `asynq:{${queue}}:`, `asynq:{${queue}}:g:`), this.#redis.pipeline()).exec());
      // 1: deleted, 0: gone already. -1 (running: it finishes on its own)
      // and an error leave the item alone, as in Go.
      const gone = jobs.filter((_, i) => !deleted[i][0] && Number(deleted[i][1]) !== -1);
      if (gone.length === 0) continue;
      const now = Date.now();
      const res = await this.#call(`cancel batch ${id} items`, () => execAll(gone.reduce((pipe, it) => pipe.eval(finishItemScript,
        batchKeys.length, ...batchKeys, it.key, 'canceled', encodeItem({ key: it.key, status: 'canceled', taskId: it.taskId, error: 'batch canceled' }), now),
      this.#redis.pipeline())));
      for (const [i, r] of res.entries()) {
        const n = Number(r);
        if (n === -3) throw new BatchNotFoundError(id);
        if (n < 0) throw new WasmjobsError(`wasmjobs: cancel batch ${id}: task ${gone[i].taskId} is not the job of item ${gone[i].key}`);
        canceled++;
        finished ||= n === 2;
      }
    }
    return { canceled, finished, status: await this.batchStatus(id) };
  }

  /**
   * Runs a batch's failed items again, as Go's RetryFailed: each goes back
   * to pending; an archived job runs again, and an item whose job no longer
   * exists (deleted, or past asynq's 90 days of archive), or never had one,
   * gets a new job, the one Go's Spec.ItemJob makes, under the item's task
   * id. Resolves with `{ retried, missing }`: `missing` lists the keys whose
   * job could not be enqueued again because a task took its id meanwhile (a
   * concurrent retry); they stay pending, and that task reports them.
   */
  async retryFailed(id) {
    const st = await this.batchStatus(id);
    const queue = st.spec.queue || 'default';
    const failed = [];
    for await (const items of this.#batchItems(id, 'failed')) failed.push(...items);
    // asynq's Inspector.RunTask finds no task in a queue it does not know.
    let known = await this.#call(`read queue ${queue}`, () => this.#redis.sismember(allQueues, queue));
    const keys = [batchKey(id), batchStatusKey(id), batchItemsKey(id)];
    let retried = 0;
    let woken = false;
    const missing = [];
    for (const { key, taskId } of failed) {
      const n = await this.#call(`retry batch ${id} item`, () => this.#redis.eval(retryItemScript, keys.length, ...keys, key, Date.now()));
      if (Number(n) !== 1) continue;
      let r = 0;
      if (taskId && known) {
        r = await this.#inspect('runTaskCmd', queue, [taskKey(queue, taskId), `asynq:{${queue}}:pending`, `asynq:{${queue}}:groups`],
          [taskId, `asynq:{${queue}}:`, `asynq:{${queue}}:g:`], `retry ${queue}/${taskId}`);
        woken ||= r === 1;
      }
      if (r === 0) {
        // The job is gone: a new one, as Go's RetryFailed enqueues it.
        const { type, job, options } = itemJob(st.spec, key);
        try {
          await this.#enqueuePlan(this.#plan(type, job, taskId ? { ...options, taskId } : options), `retry batch ${id} item`);
        } catch (err) {
          if (!(err instanceof TaskIdConflictError)) throw err;
          missing.push(key);
          continue;
        }
        known = true;
      }
      // r -1 or -2: the job is running or pending already, and reports.
      retried++;
    }
    if (woken) this.#wakeQueue(queue);
    return { retried, missing };
  }

  // #batchItems yields the items of batch id in the given state, a page
  // (HSCAN) at a time: `{ key, taskId }`, taskId '' for an item without a
  // readable record.
  async *#batchItems(id, state) {
    let cursor = '0';
    do {
      const [next, kv] = await this.#call(`scan batch ${id}`, () => this.#redis.hscan(batchStatusKey(id), cursor, 'COUNT', 500));
      cursor = next;
      const keys = [];
      for (let i = 0; i + 1 < kv.length; i += 2) if (kv[i + 1] === state) keys.push(kv[i]);
      if (keys.length === 0) continue;
      const recs = await this.#call(`batch ${id} items`, () => this.#redis.hmget(batchItemsKey(id), ...keys));
      yield keys.map((key, i) => {
        let taskId = '';
        try {
          const t = JSON.parse(recs[i] ?? '{}')?.task_id;
          if (typeof t === 'string') taskId = t;
        } catch { /* a corrupt record: no task id, as Go reads it */ }
        return { key, taskId };
      });
    } while (cursor !== '0');
  }

  /**
   * Waits until a batch finishes and resolves with its status, as Go's
   * batch wait: it reads the record every `interval` ms (default 1000),
   * calling `onProgress(status)` with each reading. Rejects with
   * TimeoutError after `timeout` ms (default Infinity) or when `signal`
   * aborts, and with BatchNotFoundError when there is no such batch.
   */
  async waitBatch(id, { timeout = Infinity, interval = 1000, signal, onProgress } = {}) {
    if (!(interval > 0)) throw new TypeError('wasmjobs: waitBatch interval must be a positive number of milliseconds');
    const deadline = Date.now() + timeout;
    for (;;) {
      signal?.throwIfAborted();
      const st = await this.batchStatus(id);
      onProgress?.(st);
      if (st.finished) return st;
      const left = deadline - Date.now();
      if (left <= 0) throw new TimeoutError(`wasmjobs: batch ${id} not finished within ${timeout} ms (it keeps running)`);
      await sleep(Math.min(interval, left), undefined, { signal });
    }
  }

  /**
   * Reads a job's result, as Go's Client.Result: resolves with the result
   * bytes (a Buffer: for an inline job without output the guest's stdout,
   * else the worker's JSON summary) once the job completed. Rejects with
   * JobNotDoneError while it is pending or running, JobFailedError (with the
   * archived reason) once it failed, and JobNotFoundError when there is no
   * such job (or its retention expired).
   */
  async getResult(queue, id, { decode } = {}) {
    checkDecode(decode);
    if (typeof queue !== 'string' || typeof id !== 'string') throw new TypeError('wasmjobs: getResult(queue, id) takes two strings');
    const [exists, [msg, state, result]] = await this.#call(`read ${queue}/${id}`, async () => {
      if (this.#cluster) {
        return Promise.all([this.#redis.sismember(allQueues, queue), this.#redis.hmgetBuffer(`asynq:{${queue}}:t:${id}`, 'msg', 'state', 'result')]);
      }
      const res = await this.#redis.pipeline()
        .sismember(allQueues, queue)
        .hmgetBuffer(`asynq:{${queue}}:t:${id}`, 'msg', 'state', 'result')
        .exec();
      for (const [err] of res) if (err) throw err;
      return [res[0][1], res[1][1]];
    });
    if (!exists || msg === null) throw new JobNotFoundError(queue, id);
    const st = state?.toString() ?? '';
    switch (st) {
      case 'completed': return decodeResult(result ?? Buffer.alloc(0), decode, queue, id);
      // asynq archives a job canceled before it ran with no error (Go:
      // noReason).
      case 'archived': throw new JobFailedError(queue, id, decodeTaskMessage(msg).errorMsg || 'archived before it ran (canceled, or archived by hand), with no error');
      default: throw new JobNotDoneError(queue, id, st);
    }
  }

  /**
   * A job's state and attempts, as asynq's Inspector reads them (Go:
   * Client.State): `{ id, queue, type, state, retried, maxRetry, lastError,
   * lastFailedAt, completedAt, resultBytes, log }`, the times as Dates or
   * null. `log` is what the guest of a completed job wrote to stderr (its
   * last 2 KiB), '' when nothing.
   * `state` is asynq's: pending, active, scheduled, retry, archived (failed
   * for good, or canceled), completed or aggregating. Rejects with
   * JobNotFoundError when there is no such job.
   */
  async getState(queue, id) {
    checkQueueId('getState', queue, id);
    const [msg, state, result, log] = await this.#call(`read ${queue}/${id}`,
      () => this.#redis.hmgetBuffer(taskKey(queue, id), 'msg', 'state', 'result', jobLogField));
    if (msg === null) throw new JobNotFoundError(queue, id);
    const m = decodeTaskMessage(msg);
    const time = (secs) => (Number(secs) > 0 ? new Date(Number(secs) * 1000) : null);
    return {
      id, queue, type: m.type, state: state?.toString() ?? '', retried: Number(m.retried ?? 0), maxRetry: Number(m.retry ?? 0),
      lastError: m.errorMsg ?? '', lastFailedAt: time(m.lastFailedAt), completedAt: time(m.completedAt), resultBytes: result?.length ?? 0,
      log: state?.toString() === 'completed' ? (log?.toString('utf8') ?? '') : '',
    };
  }

  /**
   * How many jobs of a queue are in each state (as asynqmon counts them):
   * `{ pending, active, scheduled, retry, archived, completed }`.
   */
  async getJobCounts(queue) {
    if (typeof queue !== 'string' || queue === '') throw new TypeError('wasmjobs: getJobCounts(queue) takes a queue name');
    const k = (s) => `asynq:{${queue}}:${s}`;
    const res = await this.#call(`count ${queue}`, () => this.#redis.pipeline()
      .llen(k('pending')).llen(k('active')).zcard(k('scheduled')).zcard(k('retry')).zcard(k('archived')).zcard(k('completed'))
      .exec());
    for (const [err] of res) if (err) throw err;
    const [pending, active, scheduled, retry, archived, completed] = res.map(([, n]) => Number(n));
    return { pending, active, scheduled, retry, archived, completed };
  }

  /**
   * Deletes a job that is not running, and its result (asynq's DeleteTask):
   * a job waiting to run never runs. Rejects with JobRunningError for a
   * running job (cancel it first) and JobNotFoundError when there is none.
   */
  async remove(queue, id) {
    checkQueueId('remove', queue, id);
    const n = await this.#inspect('deleteTaskCmd', queue, [taskKey(queue, id), `asynq:{${queue}}:groups`],
      [id, `asynq:{${queue}}:`, `asynq:{${queue}}:g:`], `remove ${queue}/${id}`);
    if (n === 0) throw new JobNotFoundError(queue, id);
    if (n === -1) throw new JobRunningError(queue, id);
  }

  /**
   * Runs a failed (archived), retrying or scheduled job now (asynq's
   * RunTask). Rejects with JobNotFoundError when there is no such job, and
   * with an InvalidOptionError naming the state for a pending or running
   * one.
   */
  async retry(queue, id) {
    checkQueueId('retry', queue, id);
    const n = await this.#inspect('runTaskCmd', queue, [taskKey(queue, id), `asynq:{${queue}}:pending`, `asynq:{${queue}}:groups`],
      [id, `asynq:{${queue}}:`, `asynq:{${queue}}:g:`], `retry ${queue}/${id}`);
    if (n === 0) throw new JobNotFoundError(queue, id);
    if (n === -1) throw new JobRunningError(queue, id);
    if (n === -2) throw new InvalidOptionError(`wasmjobs: retry ${queue}/${id}: it is pending already`);
    if (n === 1) this.#wakeQueue(queue);
  }

  /**
   * Stops a job for good, as Go's Client.Cancel: a waiting one (pending,
   * scheduled, retrying) is archived at once; a running one is stopped by
   * its worker (asynq's cancel notice) and archived once it is back, within
   * `timeout` ms (default 10000). The job stays readable, archived; retry()
   * runs it again. Rejects with JobNotFoundError when there is no such job,
   * InvalidOptionError when it completed or was archived already, and
   * TimeoutError when its worker did not stop it in time.
   */
  async cancel(queue, id, { timeout = 10_000 } = {}) {
    checkQueueId('cancel', queue, id);
    const deadline = Date.now() + timeout;
    for (;;) {
      const { state } = await this.getState(queue, id);
      if (state === 'completed' || state === 'archived') {
        throw new InvalidOptionError(`wasmjobs: cancel ${queue}/${id}: it is ${state} already`);
      }
      if (state === 'active') {
        await this.#call(`cancel ${queue}/${id}`, () => this.#redis.publish('asynq:cancel', id));
      } else {
        const now = Math.floor(Date.now() / 1000);
        const n = await this.#inspect('archiveTaskCmd', queue, [taskKey(queue, id), `asynq:{${queue}}:archived`, `asynq:{${queue}}:groups`],
          [id, now, now - 90 * 24 * 3600, 10000, `asynq:{${queue}}:`, `asynq:{${queue}}:g:`], `cancel ${queue}/${id}`);
        if (n === 1 || n === -1) return;
        if (n === 0) throw new JobNotFoundError(queue, id);
      }
      if (Date.now() > deadline) {
        throw new TimeoutError(`wasmjobs: cancel ${queue}/${id}: its worker did not stop it within ${timeout} ms`, { queue, id });
      }
      await sleep(50);
    }
  }

  // #inspect runs one of asynq's inspector scripts (EVALSHA, EVAL when
  // Redis does not have it) and returns its number.
  async #inspect(name, queue, keys, args, what) {
    const { sha, lua } = scripts[name];
    return this.#call(what, async () => {
      try {
        return Number(await this.#redis.evalsha(sha, keys.length, ...keys, ...args));
      } catch (err) {
        if (!isNoScript(err)) throw err;
        return Number(await this.#redis.eval(lua, keys.length, ...keys, ...args));
      }
    });
  }

  // #wakeQueue tells the queue's idle workers that a job is pending; a
  // failed notice leaves it to their polls.
  #wakeQueue(queue) {
    this.#redis.publish(wakeChannel(queue), '').catch(() => {});
  }

  /**
   * Waits until a job completes or fails and resolves or rejects as
   * getResult then does. Rejects with TimeoutError after `timeout` ms
   * (default 60000; Infinity waits for ever) or when `signal` aborts; the job
   * itself keeps its own fate.
   *
   * It resolves as soon as a worker announces the job's end: it subscribes to
   * the announcement (on one connection shared by all waits of this client)
   * before it first reads the job's state, so none is missed. Without
   * announcements it reads the state every `pollInterval` ms.
   */
  async wait(queue, id, { timeout = 60_000, signal, decode } = {}) {
    checkDecode(decode);
    if (typeof queue !== 'string' || typeof id !== 'string') throw new TypeError('wasmjobs: wait(queue, id) takes two strings');
    if (this.#closed) throw new RedisError(`wasmjobs: read ${queue}/${id}: client is closed`);
    const deadline = Date.now() + timeout;
    this.#completions ??= new Completions(this.#redis);
    const watch = this.#completions.watch(queue, id);
    try {
      let next = watch.ready;
      for (;;) {
        signal?.throwIfAborted();
        await this.#pause(next, deadline - Date.now(), signal);
        next = watch.fired();
        try {
          return await this.getResult(queue, id, { decode });
        } catch (err) {
          if (!(err instanceof JobNotDoneError)) throw err;
        }
        if (deadline - Date.now() <= 0) {
          throw new TimeoutError(`wasmjobs: waiting for ${queue}/${id}: not done within ${timeout} ms`, { queue, id });
        }
      }
    } finally {
      watch.close();
    }
  }

  // #pause resolves when wakeup does or after the poll interval (at most
  // `left` ms), and rejects as timers/promises' setTimeout when signal aborts.
  async #pause(wakeup, left, signal) {
    const stop = new AbortController();
    const onAbort = () => stop.abort(signal.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = sleep(Math.max(0, Math.min(this.#pollInterval, left)), undefined, { signal: stop.signal });
    timer.catch(() => {}); // when wakeup wins, the timer is aborted below
    try {
      await Promise.race([timer, wakeup]);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      stop.abort();
    }
  }

  /**
   * Enqueues a job and resolves with its result once done, as Go's
   * Client.Run: give inline `data` to get the guest's output back directly.
   * `type` defaults to 'wasm:text'; `options` are enqueue options, with
   * retention defaulting to 24 h so the result can be read back; `timeout`
   * and `signal` bound the wait as in wait().
   */
  async run(job, { type = TypeText, timeout = 60_000, signal, options = {}, decode } = {}) {
    checkDecode(decode);
    const opts = { ...options };
    if (opts.retention === undefined || opts.retention === null) opts.retention = DefaultResultRetention;
    const info = await this.enqueue(type, job, opts);
    return this.wait(info.queue, info.id, { timeout, signal, decode });
  }

  /** Checks that Redis answers. */
  async ping() {
    await this.#call('ping', () => this.#redis.ping());
  }

  /** Closes the connection this client opened; a given ioredis instance stays open. Safe to call twice. */
  async close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#completions?.close();
    if (!this.#own) return;
    const r = this.#redis;
    if (r.status === 'ready') {
      try {
        await Promise.race([r.quit(), sleep(1000).then(() => { throw new Error('quit timed out'); })]);
      } catch { /* a hard disconnect below */ }
    }
    // Also after a quit: with Sentinels, only disconnect() closes the
    // connections ioredis keeps to them for failover notices.
    r.disconnect();
  }

  // #call runs one Redis exchange, bounded by callTimeout, and turns the
  // driver's errors into RedisError / TimeoutError with a clear message.
  async #call(what, fn) {
    if (this.#closed) throw new RedisError(`wasmjobs: ${what}: client is closed`);
    let timer;
    const expired = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new TimeoutError(
        `wasmjobs: ${what}: Redis at ${this.#where} did not answer within ${this.#callTimeout} ms${this.#lastErrorText()}`)),
      this.#callTimeout);
    });
    try {
      return await Promise.race([fn(), expired]);
    } catch (err) {
      if (err instanceof WasmjobsError) throw err;
      // ioredis reports "max retries per request" when it gave up reconnecting:
      // the connection error is the news.
      if (err?.name === 'MaxRetriesPerRequestError' && this.#lastError) {
        throw new RedisError(`wasmjobs: ${what}: Redis at ${this.#where} unavailable: ${this.#lastError.message}`, err);
      }
      throw new RedisError(`wasmjobs: ${what}: Redis at ${this.#where}: ${err?.message ?? err}${this.#lastErrorText(err)}`, err);
    } finally {
      clearTimeout(timer);
    }
  }

  #lastErrorText(err) {
    const last = this.#lastError;
    if (!last || last === err || err?.message?.includes(last.message)) return '';
    return ` (last connection error: ${last.message})`;
  }
}

const manyFields = new Set([...jobFields, 'type', 'options']);

// wake adds to pipe one wake-up for each queue that gets a pending task.
// Its reply is not looked at: a failed wake-up leaves the task to the
// workers' polls.
function wake(pipe, plans) {
  for (const q of new Set(plans.filter((p) => p.state === 'pending').map((p) => p.queue))) pipe.publish(wakeChannel(q), '');
}

function outcome(plan, n) {
  if (n === 1) return { id: plan.id, queue: plan.queue, state: plan.state, type: plan.type };
  if (n === 0) throw new TaskIdConflictError(plan.queue, plan.id);
  if (n === -1) throw new DuplicateTaskError(plan.queue, plan.msg.uniqueKey);
  throw new RedisError(`wasmjobs: unexpected return value from Lua script: ${n}`);
}

// execAll runs a pipeline and returns its replies, throwing the first
// error.
async function execAll(pipe) {
  const res = await pipe.exec();
  for (const [err] of res) if (err) throw err;
  return res.map(([, v]) => v);
}

function settle(results, { i, plan }, err, n) {
  if (err) {
    results[i] = { status: 'rejected', reason: new RedisError(`wasmjobs: enqueue ${plan.queue}/${plan.id}: ${err.message}`, err) };
    return;
  }
  try {
    results[i] = { status: 'fulfilled', value: outcome(plan, n) };
  } catch (e) {
    results[i] = { status: 'rejected', reason: e };
  }
}
