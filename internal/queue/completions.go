package queue

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Completions tells callers when the tasks they wait for may have reached a
// final state, from the DoneChannel notifications a worker's Wakeup
// publishes. All its subscriptions share one pub/sub connection, opened on
// first use. It is safe for concurrent use.
//
// # Notes
//
// Why a channel per task rather than per queue? A waiter then receives its
// own notifications only, where a queue channel would bring every client
// every completion of the queue; and a PUBLISH nobody listens to costs
// Redis a dictionary lookup, so workers publish for every task. The price
// is a SUBSCRIBE and an UNSUBSCRIBE per wait, written on the shared
// connection.
type Completions struct {
	rdb redis.UniversalClient

	mu     sync.Mutex
	ps     *redis.PubSub // nil until the first Watch
	done   chan struct{} // closed when the subscription's reader ends
	subs   map[string]*subscription
	closed bool
}

// subscription is the state of one channel: confirmed once Redis
// acknowledged the SUBSCRIBE; it is unsubscribed when its last watch
// closes, but never before it was confirmed, so that a channel is never
// subscribed twice at once.
type subscription struct {
	confirmed bool
	watches   map[*Watch]struct{}
}

// Watch is one caller's interest in one task; Close it when done.
type Watch struct {
	c       *Completions
	channel string
	ready   chan struct{} // closed once subscribed
	fired   chan struct{} // a notification since the last receive
}

// NewCompletions returns Completions on rdb, which it does not own.
func NewCompletions(rdb redis.UniversalClient) *Completions {
	return &Completions{rdb: rdb, subs: map[string]*subscription{}}
}

// Watch subscribes to task id of queue q's notifications. Read the task's
// state only after Ready, so that a notification cannot come between the
// read and the subscription; then wait for Fired, or poll.
func (c *Completions) Watch(ctx context.Context, q, id string) *Watch {
	w := &Watch{c: c, channel: DoneChannel(q, id), ready: make(chan struct{}), fired: make(chan struct{}, 1)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return w // never ready nor fired: its caller polls
	}
	if c.ps == nil {
		c.ps = c.rdb.Subscribe(ctx)
		c.done = make(chan struct{})
		go c.receive(c.ps.ChannelWithSubscriptions())
	}
	s := c.subs[w.channel]
	if s == nil {
		s = &subscription{watches: map[*Watch]struct{}{}}
		c.subs[w.channel] = s
		// Written under c.mu, so that SUBSCRIBE and UNSUBSCRIBE of one
		// channel go out in the order of the state above. An error leaves
		// the channel to go-redis, which subscribes again on reconnecting.
		_ = c.ps.Subscribe(ctx, w.channel)
	}
	s.watches[w] = struct{}{}
	if s.confirmed {
		close(w.ready)
	}
	return w
}

// Ready is closed once the subscription is in place.
func (w *Watch) Ready() <-chan struct{} { return w.ready }

// Fired receives when a notification came since the last receive.
func (w *Watch) Fired() <-chan struct{} { return w.fired }

// Close ends the watch. Safe to call twice.
func (w *Watch) Close() {
	c := w.c
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.subs[w.channel]
	if s == nil {
		return
	}
	delete(s.watches, w)
	if len(s.watches) == 0 && s.confirmed {
		c.unsubscribe(w.channel)
	}
}

func (w *Watch) fire() {
	select {
	case w.fired <- struct{}{}:
	default:
	}
}

// unsubscribe drops a channel; c.mu is held. go-redis forgets the channel
// even when the UNSUBSCRIBE cannot be sent, and a reconnection drops it.
func (c *Completions) unsubscribe(channel string) {
	delete(c.subs, channel)
	if !c.closed {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = c.ps.Unsubscribe(ctx, channel)
	}
}

// receive dispatches the subscription's messages until it is closed.
func (c *Completions) receive(msgs <-chan any) {
	defer close(c.done)
	for m := range msgs {
		switch m := m.(type) {
		case *redis.Message:
			c.mu.Lock()
			if s := c.subs[m.Channel]; s != nil {
				for w := range s.watches {
					w.fire()
				}
			}
			c.mu.Unlock()
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				c.confirm(m.Channel)
			}
		}
	}
}

// confirm handles Redis's acknowledgement of a SUBSCRIBE: the first makes
// the channel's watches ready; a later one follows a reconnection, which
// may have lost notifications, so it fires them.
func (c *Completions) confirm(channel string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.subs[channel]
	switch {
	case s == nil:
	case s.confirmed:
		for w := range s.watches {
			w.fire()
		}
	case len(s.watches) == 0:
		s.confirmed = true
		c.unsubscribe(channel)
	default:
		s.confirmed = true
		for w := range s.watches {
			close(w.ready)
		}
	}
}

// Close closes the subscription's connection; watches still open are
// left to their polls. Safe to call twice.
func (c *Completions) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	ps, done := c.ps, c.done
	c.mu.Unlock()
	if ps == nil {
		return nil
	}
	err := ps.Close()
	<-done
	return err
}
