package batch_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/queue"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
)

// TestBatchOutputClaim: a batch owns its output prefix; a second batch on
// the same prefix (however its slashes are written) is refused at start
// and leaves no record, the owner resumes, and a nested prefix is a
// prefix of its own.
func TestBatchOutputClaim(t *testing.T) {
	opt := testenv.Redis(t)
	c, err := batch.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := testenv.Context(t, 30*time.Second)
	b := "s3://t-" + testenv.RandomHex(6)
	owner := batch.Spec{ID: "own-" + testenv.RandomHex(4), Guest: "wordcount", Type: "text", Input: b + "/in/", Output: b + "/out/"}
	if _, err := c.StartBatch(ctx, owner); err != nil {
		t.Fatal(err)
	}
	rdb := opt.MakeRedisClient().(redis.UniversalClient)
	defer rdb.Close()
	// The key Node's startBatch claims too (jobs/node/test/batchoutput.test.mjs).
	if got, err := rdb.Get(ctx, "wasmjobs:batch-output:"+b[len("s3://"):]+"/out").Result(); err != nil || got != owner.ID {
		t.Fatalf("claim key holds %q, %v; want %s", got, err, owner.ID)
	}
	for _, out := range []string{b + "/out/", b + "/out", b + "/out//"} {
		other := batch.Spec{ID: "thief-" + testenv.RandomHex(4), Guest: "wordcount", Type: "text", Input: b + "/elsewhere/", Output: out}
		_, err := c.StartBatch(ctx, other)
		if !errors.Is(err, batch.ErrOutputInUse) || !errors.Is(err, queue.ErrInvalidPayload) {
			t.Errorf("second batch on %s: %v; want ErrOutputInUse", out, err)
		}
		if _, err := c.BatchStatus(ctx, other.ID); !errors.Is(err, batch.ErrNotFound) {
			t.Errorf("refused batch %s has a record: %v", other.ID, err)
		}
	}
	if _, err := c.StartBatch(ctx, owner); err != nil {
		t.Errorf("owner resuming: %v", err)
	}
	nested := batch.Spec{ID: "nest-" + testenv.RandomHex(4), Guest: "wordcount", Type: "text", Input: b + "/in/", Output: b + "/out/sub/"}
	if _, err := c.StartBatch(ctx, nested); err != nil {
		t.Errorf("nested output prefix: %v; want it started", err)
	}

	// A record written before claims existed resumes and takes the claim.
	legacy, err := batch.Spec{ID: "old-" + testenv.RandomHex(4), Guest: "wordcount", Type: "wasm:text", Input: b + "/old/", Output: b + "/old-out/"}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(legacy)
	if err := rdb.HSet(ctx, "wasmjobs:batch:{"+legacy.ID+"}", "spec", js, "started", time.Now().UnixMilli()).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StartBatch(ctx, legacy); err != nil {
		t.Fatalf("resuming a batch without a claim: %v", err)
	}
	late := batch.Spec{ID: "late-" + testenv.RandomHex(4), Guest: "wordcount", Type: "text", Input: b + "/in/", Output: legacy.Output}
	if _, err := c.StartBatch(ctx, late); !errors.Is(err, batch.ErrOutputInUse) {
		t.Errorf("batch on a resumed batch's output: %v; want ErrOutputInUse", err)
	}
}
