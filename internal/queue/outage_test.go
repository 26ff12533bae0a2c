package queue_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/wasmjobs/wasmjobs/internal/queue"
)

// TestRideOutOutages: a command and a pipeline sent while nothing listens
// on Redis's address complete once a server starts there; one whose
// context ends first fails with the dial error.
func TestRideOutOutages(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: 1})
	defer rdb.Close()
	queue.RideOutOutages(rdb)

	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := rdb.Ping(short).Err(); err == nil {
		t.Fatal("a ping with nothing listening succeeded")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("a call whose context ended after 300 ms took %s", d)
	}

	srv := miniredis.NewMiniRedis()
	up := make(chan error, 1)
	time.AfterFunc(700*time.Millisecond, func() { up <- srv.StartAddr(addr) })
	defer srv.Close()
	ctx, cancel2 := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel2()
	start = time.Now()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("set across the outage: %v", err)
	}
	if err := <-up; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 600*time.Millisecond {
		t.Fatalf("set returned after %s, before the server started", d)
	}
	srv.Close()
	time.AfterFunc(500*time.Millisecond, func() { up <- srv.StartAddr(addr) })
	cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Get(ctx, "k")
		p.Incr(ctx, "n")
		return nil
	})
	if err := <-up; err != nil {
		t.Fatal(err)
	}
	if err != nil || cmds[1].(*redis.IntCmd).Val() != 1 {
		t.Fatalf("pipeline across the outage: %v %v", cmds, err)
	}
}
