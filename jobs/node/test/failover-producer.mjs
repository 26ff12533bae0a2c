// A Node producer for the reliability scenarios (e2e/reliability_test.go):
// given REDIS_URL (a redis-sentinel:// or redis-cluster:// URL, as the
// wasmjobs command takes), it starts batch BATCH_ID over BATCH_INPUT, then
// enqueues JOBS inline wordcount jobs, PACE_MS apart, with task ids of its
// own, and waits for each result, through whatever happens to Redis
// meanwhile. An enqueue or a wait that fails is tried again (an enqueue
// whose answer was lost finds its task id taken: it is there); a job that
// vanished with a primary that had not passed it on to its replica is
// enqueued again, as an at-least-once producer does. It prints one line
// per 50 jobs enqueued ("enqueued N") and, at the end, a JSON summary.
import { Client, TaskIdConflictError, JobNotFoundError } from '../src/index.js';

const n = Number(process.env.JOBS ?? 500);
const pace = Number(process.env.PACE_MS ?? 10);
const queue = process.env.QUEUE ?? 'default';
const prefix = process.env.TASK_PREFIX ?? 'node-';
const client = new Client({ redis: process.env.REDIS_URL, callTimeout: 3000, pollInterval: 200 });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const summary = { jobs: n, done: 0, enqueueRetries: 0, waitRetries: 0, enqueuedAgain: 0 };

// persist runs f until it succeeds, counting failures in summary[counter];
// it gives up after two minutes.
async function persist(counter, f) {
  for (let deadline = Date.now() + 120_000; ; await sleep(200)) {
    try {
      return await f();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      summary[counter]++;
    }
  }
}

const job = (i) => ({ guest: 'wordcount', data: `node job ${i} of the failover run` });

async function enqueue(i) {
  await persist('enqueueRetries', async () => {
    try {
      await client.enqueueText(job(i), { queue, taskId: prefix + i, retention: 3_600_000 });
    } catch (err) {
      if (!(err instanceof TaskIdConflictError)) throw err;
    }
  });
}

try {
  if (process.env.BATCH_ID) {
    await persist('enqueueRetries', () => client.startBatch({
      id: process.env.BATCH_ID, guest: 'wordcount', type: 'text', input: process.env.BATCH_INPUT, queue,
    }));
  }
  for (let i = 0; i < n; i++) {
    await enqueue(i);
    if ((i + 1) % 50 === 0) console.log(`enqueued ${i + 1}`);
    await sleep(pace);
  }
  const outs = [];
  for (let i = 0; i < n; i++) {
    const out = await persist('waitRetries', async () => {
      try {
        return await client.wait(queue, prefix + i, { timeout: 5000 });
      } catch (err) {
        if (err instanceof JobNotFoundError) {
          summary.enqueuedAgain++;
          await enqueue(i);
        }
        throw err;
      }
    });
    outs.push(out);
    summary.done++;
  }
  // The wordcount guest counts the words of each job's input.
  const words = job(0).data.split(' ').length;
  summary.wrong = outs.filter((o) => JSON.parse(o.toString()).words !== words).length;
  console.log(JSON.stringify(summary));
} finally {
  await client.close();
}
