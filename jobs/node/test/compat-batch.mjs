#!/usr/bin/env node
// compat-batch.mjs REDIS_URL cancel|retry BATCH_ID: runs cancelBatch or
// retryFailed with the Node client and prints its result as JSON on
// stdout. Driven by the Go test jobs/node_compat_test.go, which runs Go's
// CancelBatch or RetryFailed on the same batch in another database and
// compares the two.
import { Client } from '../src/index.js';

const [url, op, id] = process.argv.slice(2);
if (!url || !['cancel', 'retry'].includes(op) || !id) {
  console.error('usage: compat-batch.mjs REDIS_URL cancel|retry BATCH_ID');
  process.exit(2);
}
const client = new Client({ redis: url });
try {
  const out = op === 'cancel' ? await client.cancelBatch(id) : await client.retryFailed(id);
  process.stdout.write(JSON.stringify(op === 'cancel' ? { canceled: out.canceled, finished: out.finished } : out) + '\n');
} finally {
  await client.close();
}
