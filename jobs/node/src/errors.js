// Error classes. Each mirrors a sentinel of the Go client (package jobs) or
// of asynq, so that Node callers can branch on `instanceof` or on `code`.

/** Base class of every error this package raises on purpose. */
export class WasmjobsError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A job payload or task type is invalid (Go: jobs.ErrInvalidPayload). Nothing was enqueued. */
export class InvalidPayloadError extends WasmjobsError {
  constructor(detail) {
    super(`invalid job payload: ${detail}`);
    this.code = 'ERR_WASMJOBS_INVALID_PAYLOAD';
  }
}

/**
 * A batch's output prefix belongs to another batch, whose manifest and
 * outputs it would overwrite (Go: jobs.ErrOutputInUse, with
 * ErrInvalidPayload): its code is InvalidPayloadError's; tell it apart with
 * instanceof. Nothing was written.
 */
export class OutputInUseError extends InvalidPayloadError {
  constructor(id, output, owner) {
    super(`batch ${id}: output ${output} belongs to batch ${owner}, whose manifest and outputs it would overwrite; choose another output prefix`);
    this.id = id;
    this.owner = owner;
  }
}

/** An enqueue option is invalid (asynq's own option errors). Nothing was enqueued. */
export class InvalidOptionError extends WasmjobsError {
  constructor(message) {
    super(message);
    this.code = 'ERR_WASMJOBS_INVALID_OPTION';
  }
}

/** A task with the given taskId already exists (Go: asynq.ErrTaskIDConflict). */
export class TaskIdConflictError extends WasmjobsError {
  constructor(queue, id) {
    super(`wasmjobs: task ID conflicts with another task: ${queue}/${id}`);
    this.code = 'ERR_WASMJOBS_TASK_ID_CONFLICT';
    this.queue = queue;
    this.id = id;
  }
}

/** The job's unique lock is held by an equal job (Go: asynq.ErrDuplicateTask). */
export class DuplicateTaskError extends WasmjobsError {
  constructor(queue, uniqueKey) {
    super(`wasmjobs: task already exists: ${uniqueKey}`);
    this.code = 'ERR_WASMJOBS_DUPLICATE_TASK';
    this.queue = queue;
    this.uniqueKey = uniqueKey;
  }
}

/** No such job, or its retention ran out (Go: jobs.ErrJobNotFound). */
/** No batch record has that id. */
export class BatchNotFoundError extends WasmjobsError {
  constructor(id) {
    super(`wasmjobs: batch ${id} not found`);
    this.code = 'ERR_WASMJOBS_BATCH_NOT_FOUND';
    this.id = id;
  }
}

export class JobNotFoundError extends WasmjobsError {
  constructor(queue, id) {
    super(`wasmjobs: ${queue}/${id}: job not found`);
    this.code = 'ERR_WASMJOBS_JOB_NOT_FOUND';
    this.queue = queue;
    this.id = id;
  }
}

/** A result asked for as JSON is not JSON; `result` holds its bytes. */
export class ResultNotJSONError extends WasmjobsError {
  constructor(queue, id, result, cause) {
    super(`wasmjobs: ${queue}/${id}: the result is not JSON (${result.length} bytes)`, { cause });
    this.code = 'ERR_WASMJOBS_RESULT_NOT_JSON';
    this.queue = queue;
    this.id = id;
    this.result = result;
  }
}

/** The call needs a job that is not running: cancel it first (Go: jobs.ErrJobRunning). */
export class JobRunningError extends WasmjobsError {
  constructor(queue, id) {
    super(`wasmjobs: ${queue}/${id}: job is running`);
    this.code = 'ERR_WASMJOBS_JOB_RUNNING';
    this.queue = queue;
    this.id = id;
  }
}

/** The job exists but has not completed yet (Go: jobs.ErrNotDone). */
export class JobNotDoneError extends WasmjobsError {
  constructor(queue, id, state) {
    super(`wasmjobs: ${queue}/${id} is ${state}: job not done yet`);
    this.code = 'ERR_WASMJOBS_JOB_NOT_DONE';
    this.queue = queue;
    this.id = id;
    this.state = state;
  }
}

/** The job was archived; `reason` is asynq's last error (Go: jobs.ErrJobFailed). */
export class JobFailedError extends WasmjobsError {
  constructor(queue, id, reason) {
    super(`wasmjobs: ${queue}/${id}: job failed: ${reason}`);
    this.code = 'ERR_WASMJOBS_JOB_FAILED';
    this.queue = queue;
    this.id = id;
    this.reason = reason;
  }
}

/**
 * A call gave up waiting: `run` for a job that did not finish in time (the job
 * keeps its own fate), or any call when Redis did not answer in time.
 */
export class TimeoutError extends WasmjobsError {
  constructor(message, { queue, id, cause } = {}) {
    super(message, cause ? { cause } : undefined);
    this.code = 'ERR_WASMJOBS_TIMEOUT';
    if (queue !== undefined) this.queue = queue;
    if (id !== undefined) this.id = id;
  }
}

/** Redis could not be reached or refused a command; `cause` holds the client's error. */
export class RedisError extends WasmjobsError {
  constructor(message, cause) {
    super(message, { cause });
    this.code = 'ERR_WASMJOBS_REDIS';
  }
}
