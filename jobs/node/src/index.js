// wasmjobs: enqueue wasmjobs image and text jobs from Node.js, wire-compatible
// with asynq v0.26's Go client. See README.md.

export { Client, newTask } from './client.js';
export {
  BatchNotFoundError, DuplicateTaskError, InvalidOptionError, InvalidPayloadError, JobFailedError, JobNotDoneError,
  JobNotFoundError, JobRunningError, OutputInUseError, RedisError, ResultNotJSONError, TaskIdConflictError, TimeoutError, WasmjobsError,
} from './errors.js';
export { DefaultMaxRetry, DefaultResultRetention, DefaultTimeout, uniqueKey } from './options.js';
export {
  encodePayload, MaxInlineBytes, parseObjectURL, TypeImage, TypeText, validateGuestRef, validateJob,
  validateTaskType,
} from './payload.js';
export { decodeTaskMessage, encodeTaskMessage } from './taskmessage.js';
export { scripts } from './scripts.js';
export { batchSpecWithDefaults, encodeBatchSpec, TypeBatch } from './batch.js';
