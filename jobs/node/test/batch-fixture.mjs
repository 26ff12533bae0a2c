// batchFixture plants a batch as a Go planner and its workers would have
// left it, for the cancelBatch and retryFailed tests (on one Redis or a
// cluster): the record (startBatch), one job per item under the task id
// Go's ItemTaskID gives it, each job and item in the state asked for, and
// the listing done.
import { createHash } from 'node:crypto';
import { itemJob } from '../src/batch.js';

/** Go's batch.ItemTaskID(batchID, key, etag). */
export const itemTaskID = (id, key, etag) => `${id}-${createHash('sha256').update(`${id}\0${key}\0${etag}`).digest('hex').slice(0, 24)}`;

export function batchFixture(client, raw, queueOf = (id) => `q-${id}`) {
  return {
    /**
     * spec: a batch id or a startBatch spec (type text, queue from queueOf
     * by default); items: key → 'pending' | 'scheduled' | 'retry' |
     * 'active' | 'done' | 'deleted-failed' (failed, its job gone) |
     * 'archived-failed'. Resolves with `{ id, queue, tasks }`, tasks: key →
     * task id.
     */
    async plant(spec, items) {
      if (typeof spec === 'string') spec = { id: spec, guest: 'wordcount', input: 's3://data/in/' };
      spec = { type: 'text', queue: queueOf(spec.id), ...spec };
      const st = await client.startBatch(spec);
      const { id } = st;
      const queue = st.spec.queue;
      const q = (s) => `asynq:{${queue}}:${s}`;
      const rec = `wasmjobs:batch:{${id}}`;
      const tasks = {};
      const counts = { enqueued: 0, done: 0, failed: 0 };
      for (const [key, state] of Object.entries(items)) {
        const taskId = itemTaskID(id, key, 'etag1');
        tasks[key] = taskId;
        const { type, job, options } = itemJob(st.spec, key);
        const later = state === 'scheduled' || state === 'retry';
        await client.enqueue(type, job, { ...options, taskId, ...(later ? { processIn: 3_600_000 } : {}) });
        if (state === 'retry') {
          await raw.zrem(q('scheduled'), taskId);
          await raw.zadd(q('retry'), Math.floor(Date.now() / 1000) + 3600, taskId);
          await raw.hset(q(`t:${taskId}`), 'state', 'retry');
        } else if (state === 'active') { // as a worker's dequeue leaves it
          await raw.lrem(q('pending'), 0, taskId);
          await raw.lpush(q('active'), taskId);
          await raw.hset(q(`t:${taskId}`), 'state', 'active');
        } else if (state === 'archived-failed') {
          await client.cancel(queue, taskId);
        } else if (state === 'deleted-failed' || state === 'done') {
          await client.remove(queue, taskId);
        }
        const status = state === 'done' ? 'done' : state.endsWith('-failed') ? 'failed' : 'pending';
        await raw.hset(`${rec}:status`, key, status);
        await raw.hset(`${rec}:items`, key, JSON.stringify({ key, status, task_id: taskId }));
        counts.enqueued++;
        if (status !== 'pending') counts[status]++;
      }
      await raw.hset(rec, 'enqueued', counts.enqueued, 'done', counts.done, 'failed', counts.failed, 'total', Object.keys(items).length, 'listed', '1');
      return { id, queue, tasks };
    },
  };
}
