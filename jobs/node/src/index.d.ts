import { EventEmitter } from 'node:events';
// Type declarations of the wasmjobs Node client (hand-written; the package
// ships plain ESM JavaScript with no build step).

import type { Cluster, Redis, RedisOptions } from 'ioredis';

/** Task type of image jobs. */
export const TypeImage: 'wasm:image';
/** Task type of text jobs. */
export const TypeText: 'wasm:text';
export type TaskType = typeof TypeImage | typeof TypeText;

/** The largest inline input, in bytes (64 KiB). */
export const MaxInlineBytes: number;
/** asynq's default max retry (25). */
export const DefaultMaxRetry: number;
/** asynq's default per-attempt timeout when neither timeout nor deadline is given: 30 min, in ms. */
export const DefaultTimeout: number;
/** Retention of inline jobs without output (and of run's jobs) unless given: 24 h, in ms. */
export const DefaultResultRetention: number;

/**
 * A wasmjobs job: exactly one of `input` and `data`. `undefined` and `null`
 * fields count as absent.
 */
export interface Job {
  /** A registered guest name or "sha256:<64 hex>". */
  guest: string;
  /** The input object, s3://bucket/key. */
  input?: string | null;
  /** A small input carried inline (at most 64 KiB); a string is sent as UTF-8. An empty one is an empty input. */
  data?: string | Uint8Array | null;
  /** Where the output goes, s3://bucket/key. Without it an inline job's output is its result. */
  output?: string | null;
  /** Strings handed to the guest. */
  params?: Record<string, string> | null;
  /** The id of the dataset run the job belongs to. */
  batch?: string | null;
}

/** Enqueue options, asynq's. Durations in milliseconds; instants as Date or epoch milliseconds. */
export interface EnqueueOptions {
  /** Queue name. Default "default". */
  queue?: string;
  /** Retries of transient failures. Default 25; negative means 0. */
  maxRetry?: number;
  /** Bound of one processing attempt, ms (stored in whole seconds). Default 30 min unless a deadline is given. */
  timeout?: number;
  /** Absolute bound of processing. */
  deadline?: Date | number;
  /** Reject duplicates (same type, queue and payload) for this TTL, ms; at least 1000. */
  unique?: number;
  /** Process at this time (if in the future the task is scheduled). */
  processAt?: Date | number;
  /** Process after this delay, ms. */
  processIn?: number;
  /** Keep the completed task (and its result) this long, ms. Default 0, or 24 h for inline jobs without output. */
  retention?: number;
  /** The task's id instead of a random UUID v4. */
  taskId?: string;
  /** Refused with InvalidOptionError: no wasmjobs worker aggregates groups. */
  group?: never;
}

/** What an enqueue returns. */
export interface TaskInfo {
  id: string;
  queue: string;
  state: 'pending' | 'scheduled' | 'aggregating';
  type: TaskType;
}

/** One job of enqueueMany: a job with its own type and options. */
export interface ManyJob extends Job {
  /** Default: the `type` of enqueueMany's options, else "wasm:text". */
  type?: TaskType;
  /** Merged over enqueueMany's shared options. */
  options?: EnqueueOptions;
}

export type EnqueueResult =
  | { status: 'fulfilled'; value: TaskInfo }
  | { status: 'rejected'; reason: Error };

export interface WaitOptions {
  /** Give up after this many ms (default 60000; Infinity waits for ever). The job keeps its own fate. */
  timeout?: number;
  signal?: AbortSignal;
  /** The result as a Buffer (default), its UTF-8 text, or its JSON value (ResultNotJSONError, carrying the Buffer, if it is not JSON). */
  decode?: 'buffer' | 'text' | 'json';
}

export interface RunOptions extends WaitOptions {
  /** Default "wasm:text". */
  type?: TaskType;
  /** Enqueue options; retention defaults to 24 h so the result can be read back. */
  options?: EnqueueOptions;
}

export class QueueEvents extends EventEmitter {
  readonly ready: Promise<void>;
  on(event: 'completed', listener: (e: { jobId: string; queue: string }) => void): this;
  on(event: 'failed', listener: (e: { jobId: string; queue: string; failedReason: string }) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  close(): Promise<void>;
}

export interface JobState {
  id: string;
  queue: string;
  type: string;
  /** asynq's: pending, active, scheduled, retry, archived, completed or aggregating. */
  state: string;
  retried: number;
  maxRetry: number;
  lastError: string;
  lastFailedAt: Date | null;
  completedAt: Date | null;
  resultBytes: number;
  /** What the guest of a completed job wrote to stderr (its last 2 KiB); '' when nothing. */
  log: string;
}

export interface JobCounts {
  pending: number;
  active: number;
  scheduled: number;
  retry: number;
  archived: number;
  completed: number;
}

export interface ClientConfig {
  /**
   * A redis:// or rediss:// URL, a redis-sentinel://[:password@]host:port,…?master=NAME URL (the
   * password is the Sentinels'), a redis-cluster://[user:password@]host:port,… URL (as the wasmjobs
   * command takes), ioredis options, or an ioredis instance or Cluster (left open by close()).
   * Default redis://127.0.0.1:6379.
   */
  redis?: string | RedisOptions | Redis | Cluster;
  /** How long one call waits on Redis before rejecting with TimeoutError, ms. Default 10000. */
  callTimeout?: number;
  /** How often wait() reads a job's state when no worker's notification comes, ms. Default 1000. */
  pollInterval?: number;
}

/** Enqueues wasmjobs jobs into Redis exactly as asynq v0.26's Go client would, and reads their results. */
export class Client {
  constructor(config?: ClientConfig);
  /** The ioredis connection in use. */
  readonly redis: Redis;
  enqueueImage(job: Job, opts?: EnqueueOptions): Promise<TaskInfo>;
  enqueueText(job: Job, opts?: EnqueueOptions): Promise<TaskInfo>;
  enqueue(type: TaskType, job: Job, opts?: EnqueueOptions): Promise<TaskInfo>;
  /** Pipelined; one settled result per job, in order. A failed or timed-out pipeline rejects only its own jobs. */
  enqueueMany(jobs: ManyJob[], opts?: EnqueueOptions & { type?: TaskType }): Promise<EnqueueResult[]>;
  /** The result of a completed job; rejects with JobNotDoneError, JobFailedError or JobNotFoundError otherwise. */
  getResult(queue: string, id: string, opts?: { decode?: 'buffer' }): Promise<Buffer>;
  getResult(queue: string, id: string, opts: { decode: 'text' }): Promise<string>;
  getResult(queue: string, id: string, opts: { decode: 'json' }): Promise<unknown>;
  /** A job's state and attempts; rejects with JobNotFoundError. */
  getState(queue: string, id: string): Promise<JobState>;
  /** How many jobs of a queue are in each state. */
  getJobCounts(queue: string): Promise<JobCounts>;
  /** Deletes a job that is not running, and its result; JobRunningError for a running one. */
  remove(queue: string, id: string): Promise<void>;
  /** Runs a failed, retrying or scheduled job now. */
  retry(queue: string, id: string): Promise<void>;
  /** Stops a job for good: a waiting one at once, a running one through its worker; it stays archived. */
  cancel(queue: string, id: string, opts?: { timeout?: number }): Promise<void>;
  /** Starts (or resumes) a dataset run; a worker lists the prefix and enqueues one job per object. */
  startBatch(spec: BatchSpec): Promise<BatchStatus>;
  /** Reads a batch's record; rejects with BatchNotFoundError. */
  batchStatus(id: string): Promise<BatchStatus>;
  /** The ends of a queue's jobs as events ('completed', 'failed'), like BullMQ's QueueEvents. */
  queueEvents(queue: string): QueueEvents;
  /**
   * Cancels a batch: its waiting jobs are deleted at once and their items canceled; running ones finish.
   * The status as read before, with `canceled` the jobs this call canceled and `finished` whether it finished
   * the batch (whose manifest a worker's reconciler then writes, 30 s on).
   */
  cancelBatch(id: string): Promise<{ canceled: number; finished: boolean; status: BatchStatus }>;
  /**
   * Runs a batch's failed items again; an item whose job is gone gets a new one under its task id.
   * `missing` lists keys whose new job found its task id taken (a concurrent retry).
   */
  retryFailed(id: string): Promise<{ retried: number; missing: string[] }>;
  /** Waits until a batch finishes, reading it every `interval` ms (default 1000); TimeoutError past `timeout`. */
  waitBatch(id: string, opts?: { timeout?: number; interval?: number; signal?: AbortSignal; onProgress?: (s: BatchStatus) => void }): Promise<BatchStatus>;
  /** Waits for a job's result. */
  wait(queue: string, id: string, opts?: WaitOptions & { decode?: 'buffer' }): Promise<Buffer>;
  wait(queue: string, id: string, opts: WaitOptions & { decode: 'text' }): Promise<string>;
  wait(queue: string, id: string, opts: WaitOptions & { decode: 'json' }): Promise<unknown>;
  /** Enqueues a job (inline data: the guest's output comes back) and waits for its result. */
  run(job: Job, opts?: RunOptions & { decode?: 'buffer' }): Promise<Buffer>;
  run(job: Job, opts: RunOptions & { decode: 'text' }): Promise<string>;
  run(job: Job, opts: RunOptions & { decode: 'json' }): Promise<unknown>;
  ping(): Promise<void>;
  /** Closes the connection this client opened. Safe to call twice. */
  close(): Promise<void>;
}

/** Builds a task as Go's jobs.NewTask, without Redis: the payload bytes and folded options. */
export function newTask(type: TaskType, job: Job, opts?: EnqueueOptions): { type: TaskType; payload: Buffer; options: Record<string, unknown> };
/** Validates a job and returns its JSON payload, byte for byte what the Go client writes. */
export function encodePayload(job: Job): Buffer;
/** Throws InvalidPayloadError unless the job is valid. */
export function validateJob(job: Job): void;
export function validateGuestRef(ref: string): void;
export function validateTaskType(type: string): asserts type is TaskType;
export function parseObjectURL(url: string): { bucket: string; key: string };
/** asynq's unique-lock key: asynq:{queue}:unique:type:md5(payload). */
export function uniqueKey(queue: string, type: string, payload: Uint8Array): string;

/** asynq's TaskMessage, as decoded. */
export interface TaskMessage {
  type: string; payload: Buffer; headers: Record<string, string>; id: string; queue: string;
  retry: number; retried: number; errorMsg: string; lastFailedAt: number; timeout: number; deadline: number;
  uniqueKey: string; groupKey: string; retention: number; completedAt: number;
}
export function encodeTaskMessage(m: Partial<TaskMessage>): Uint8Array;
export function decodeTaskMessage(bytes: Uint8Array): TaskMessage;
/** asynq's enqueue-side Lua scripts with their SHA1 digests. */
export const scripts: Readonly<Record<string, Readonly<{ name: string; lua: string; sha: string }>>>;

export class WasmjobsError extends Error {}
export class InvalidPayloadError extends WasmjobsError { code: 'ERR_WASMJOBS_INVALID_PAYLOAD'; }
export class InvalidOptionError extends WasmjobsError { code: 'ERR_WASMJOBS_INVALID_OPTION'; }
export class TaskIdConflictError extends WasmjobsError { code: 'ERR_WASMJOBS_TASK_ID_CONFLICT'; queue: string; id: string; }
export class DuplicateTaskError extends WasmjobsError { code: 'ERR_WASMJOBS_DUPLICATE_TASK'; queue: string; uniqueKey: string; }
export class JobNotFoundError extends WasmjobsError { code: 'ERR_WASMJOBS_JOB_NOT_FOUND'; queue: string; id: string; }
export class ResultNotJSONError extends WasmjobsError { code: 'ERR_WASMJOBS_RESULT_NOT_JSON'; queue: string; id: string; result: Buffer; }
export class JobRunningError extends WasmjobsError { code: 'ERR_WASMJOBS_JOB_RUNNING'; queue: string; id: string; }
export class JobNotDoneError extends WasmjobsError { code: 'ERR_WASMJOBS_JOB_NOT_DONE'; queue: string; id: string; state: string; }
export class JobFailedError extends WasmjobsError { code: 'ERR_WASMJOBS_JOB_FAILED'; queue: string; id: string; reason: string; }
export class TimeoutError extends WasmjobsError { code: 'ERR_WASMJOBS_TIMEOUT'; queue?: string; id?: string; }
export class RedisError extends WasmjobsError { code: 'ERR_WASMJOBS_REDIS'; }

/** Task type of batch plans. */
export const TypeBatch: 'wasm:batch';

/** A dataset run: one job per object under `input`. */
export interface BatchSpec {
  guest: string;
  type: 'image' | 'text' | TaskType;
  /** s3://bucket/prefix/ to list. */
  input: string;
  /** s3://bucket/prefix/ for the results (default s3://<input bucket>/wasmjobs-results/<id>/). */
  output?: string;
  /** Glob on the key relative to the prefix (or its base name). */
  include?: string;
  /** Objects larger than this many bytes are skipped. */
  maxSize?: number;
  queue?: string;
  params?: Record<string, string>;
  maxRetry?: number;
  /** Split each object into records: one job per shard of records, one JSON line per record in the outputs. */
  records?: RecordsSpec;
  /** Seconds the batch's record stays in Redis after it finished (default 7 days); outputs in S3 stay. */
  retentionSeconds?: number;
  /** Default: derived from the other fields (as the Go client derives it), so a rerun resumes. */
  id?: string;
}

/** A batch's record, as Go's jobs.BatchStatus. */
export interface BatchStatus {
  id: string;
  /** The stored spec, in the camelCase of BatchSpec (maxSize, maxRetry, retentionSeconds). */
  spec: BatchSpec & Record<string, unknown>;
  total: number;
  enqueued: number;
  done: number;
  failed: number;
  canceled: number;
  skipped: number;
  bytes: number;
  listed: boolean;
  cancelRequested: boolean;
  manifestWritten: boolean;
  started: Date;
  finished: Date | null;
  /** Why the batch ended without running, when the planner refused it. */
  error?: string;
  /** A record batch's records: planned, in done shards, in failed and canceled shards, and with an error line. */
  records?: number;
  recordsDone?: number;
  recordsFailed?: number;
  recordsCanceled?: number;
  recordErrors?: number;
}

/** How a record batch reads its objects (Go's jobs.RecordsSpec). */
export interface RecordsSpec {
  format: 'jsonl' | 'csv' | 'lines' | 'tar';
  /** jsonl: the field that is each record's input (default: the whole line). */
  field?: string;
  /** csv: the column that is each record's input, by header name or index from 0 (default: the whole row). */
  column?: string;
  /** csv: the first row names the columns (implied by a column name). */
  header?: boolean;
  /** tar: the extension of each sample's member that is its input (default: its first member). */
  member?: string;
  /** Most bytes (default 8 MiB) and records (default 10,000) per shard. */
  shardBytes?: number;
  shardRecords?: number;
  /** Join the shard outputs in record order into merged.jsonl when the batch ends. */
  merge?: boolean;
}

/** startBatch: the output prefix belongs to another batch (`owner`). */
export class OutputInUseError extends InvalidPayloadError {
  readonly id: string;
  readonly owner: string;
}

export class BatchNotFoundError extends WasmjobsError {
  readonly code: 'ERR_WASMJOBS_BATCH_NOT_FOUND';
  readonly id: string;
}

export function batchSpecWithDefaults(spec: BatchSpec): Required<Omit<BatchSpec, 'maxRetry'>> & { maxRetry: number | null };
export function encodeBatchSpec(spec: ReturnType<typeof batchSpecWithDefaults>): string;
