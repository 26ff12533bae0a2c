// asynq's TaskMessage (internal/proto/asynq.proto), encoded with protobufjs
// from the schema shipped in proto/. Like Go's proto.Marshal, the encoder
// writes only fields that differ from their zero value, in field-number
// order: so the bytes equal what asynq's Go client stores.

import { createRequire } from 'node:module';
import protobuf from 'protobufjs/light.js';

const require = createRequire(import.meta.url);
const descriptor = require('../proto/task_message.json');

/** The protobufjs type of asynq.TaskMessage. */
export const TaskMessage = protobuf.Root.fromJSON(descriptor).lookupType('asynq.TaskMessage');

/**
 * Encodes a task message. `m` holds the fields by their protobufjs names
 * (type, payload, id, queue, retry, timeout, deadline, uniqueKey, groupKey,
 * retention); zero values are left out, as proto3 requires of Go's encoder.
 */
export function encodeTaskMessage(m) {
  const set = {};
  for (const [k, v] of Object.entries(m)) {
    if (v === undefined || v === null || v === 0 || v === '' || (v instanceof Uint8Array && v.length === 0)) continue;
    set[k] = v;
  }
  return TaskMessage.encode(set).finish();
}

/** Decodes a stored task message; int64 fields come back as numbers. */
export function decodeTaskMessage(bytes) {
  return TaskMessage.toObject(TaskMessage.decode(bytes), { longs: Number, defaults: true });
}
