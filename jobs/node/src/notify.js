import { EventEmitter } from 'node:events';

// Notifications, the Node side of Go's internal/queue wakeup.go and
// completions.go: producers publish a queue's wake channel as they enqueue,
// so idle workers dequeue at once; workers publish a task's done channel once
// it reached a final state, so waiters read its result at once. Channels
// carry no data: a notification only says "look again".

/** Where producers announce new pending tasks of a queue. */
export const wakeChannel = (queue) => `wasmjobs:{${queue}}:wake`;

/** Where a worker announces that a task reached a final state. */
export const doneChannel = (queue, id) => `wasmjobs:{${queue}}:done:${id}`;

/**
 * Completions: subscriptions to done channels, all on one subscriber
 * connection (a duplicate() of the client's), opened on the first watch.
 * One channel per task, so that a client hears of its own tasks only; a
 * channel is subscribed while someone watches it.
 */
export class Completions {
  #redis;
  #sub = null;
  #channels = new Map(); // channel → { watches: Set, ready: Promise }
  #connectedOnce = false;
  #closed = false;

  constructor(redis) {
    this.#redis = redis;
  }

  /**
   * Watches a task's done channel. Read the task's state only once `ready`
   * resolved (subscribed, or failed to: then only polls remain), then await
   * `fired()` between reads; close() the watch when done.
   */
  watch(queue, id) {
    const channel = doneChannel(queue, id);
    const w = new Watch(() => this.#unwatch(channel, w));
    if (this.#closed) {
      w.ready = Promise.resolve();
      return w;
    }
    let c = this.#channels.get(channel);
    if (!c) {
      // ioredis answers SUBSCRIBE and UNSUBSCRIBE of a channel in the order
      // sent, so a watch after an unsubscribe gets its own confirmation.
      c = { watches: new Set(), ready: this.#subscriber().subscribe(channel).then(() => {}, () => {}) };
      this.#channels.set(channel, c);
    }
    c.watches.add(w);
    w.ready = c.ready;
    return w;
  }

  #unwatch(channel, w) {
    const c = this.#channels.get(channel);
    if (!c || !c.watches.delete(w) || c.watches.size > 0) return;
    this.#channels.delete(channel);
    if (!this.#closed) this.#sub.unsubscribe(channel).catch(() => {});
  }

  #subscriber() {
    if (this.#sub) return this.#sub;
    const sub = this.#redis.duplicate();
    sub.on('error', () => {}); // the client's own calls report Redis's state
    sub.on('message', (channel) => {
      for (const w of this.#channels.get(channel)?.watches ?? []) w.fire();
    });
    // After a reconnection ioredis subscribes again, but what was published
    // meanwhile is lost: every watch reads again.
    sub.on('ready', () => {
      if (this.#connectedOnce) for (const c of this.#channels.values()) for (const w of c.watches) w.fire();
      this.#connectedOnce = true;
    });
    this.#sub = sub;
    return sub;
  }

  /** Closes the subscriber connection; open watches are left to their polls. */
  close() {
    this.#closed = true;
    this.#sub?.disconnect();
  }
}

/** One wait's interest in one task. */
class Watch {
  ready = Promise.resolve();
  #fired = false;
  #wake = null;
  #close;

  constructor(close) {
    this.#close = close;
  }

  /** Resolves on the next notification, at once if one came since the last call. */
  fired() {
    if (this.#fired) {
      this.#fired = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.#wake = () => {
        this.#fired = false;
        resolve();
      };
    });
  }

  fire() {
    this.#fired = true;
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  close() {
    this.#close();
  }
}

/**
 * QueueEvents streams the ends of a queue's jobs as BullMQ's QueueEvents
 * does: 'completed' ({ jobId, queue }) and 'failed' ({ jobId, queue,
 * failedReason }), from the workers' done notices (a pattern subscription on
 * its own connection), each checked against the job's record: a job whose
 * record is gone completed without retention. 'error' reports a failed
 * read. Listen, await `ready`, and close() when done. Events are not
 * replayed: a job that ended before `ready`, or while Redis was away, is not
 * announced (read it with getState).
 */
export class QueueEvents extends EventEmitter {
  #sub;
  #redis;
  #queue;

  constructor(redis, queue, decodeTaskMessage) {
    super();
    this.#redis = redis;
    this.#queue = queue;
    this.#sub = redis.duplicate();
    this.#sub.on('error', () => {}); // reconnections are the driver's
    // The queue's name is matched literally: its glob characters escaped.
    const pattern = doneChannel(queue.replace(/[*?[\]\\]/g, '\\$&'), '*');
    this.#sub.on('pmessage', (_p, channel) => {
      const prefix = doneChannel(queue, '');
      if (!channel.startsWith(prefix)) return;
      const jobId = channel.slice(prefix.length);
      this.#redis.hmgetBuffer(`asynq:{${queue}}:t:${jobId}`, 'state', 'msg').then(([state, msg]) => {
        const st = state?.toString();
        if (st === 'archived') {
          this.emit('failed', { jobId, queue, failedReason: msg ? decodeTaskMessage(msg).errorMsg ?? '' : '' });
        } else if (st === 'completed' || st === undefined) {
          this.emit('completed', { jobId, queue });
        }
      }, (err) => this.emit('error', err));
    });
    this.ready = this.#sub.psubscribe(pattern).then(() => {});
    this.ready.catch(() => {});
  }

  /** Stops the stream and closes its connection. */
  async close() {
    this.#sub.disconnect();
  }
}
