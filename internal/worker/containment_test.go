package worker_test

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/guests"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
	"github.com/wasmjobs/wasmjobs/internal/worker"
	"github.com/wasmjobs/wasmjobs/jobs"
)

// TestInlineResultOverCapIsRefused: a result kept in Redis is capped (1 MiB
// by default); a bigger one fails at once with a reason that names the S3
// output option, and the same job with an output succeeds.
func TestInlineResultOverCapIsRefused(t *testing.T) {
	e := newEnv(t, envConfig{concurrency: 2})
	ctx := testenv.Context(t, time.Minute)
	big := func(n int) jobs.Payload {
		return jobs.Payload{Guest: "misbehave", Data: []byte{}, Params: map[string]string{"mode": "big", "n": strconv.Itoa(n)}}
	}

	res, err := e.client.Run(ctx, jobs.TypeText, big(1<<20))
	if err != nil || len(res) != 1<<20 {
		t.Fatalf("result of exactly 1 MiB: %d bytes, %v", len(res), err)
	}

	info, err := e.client.EnqueueText(ctx, big(1<<20+1), jobs.MaxRetry(5))
	if err != nil {
		t.Fatal(err)
	}
	ti := waitArchived(t, ctx, e.insp, info.Queue, info.ID)
	for _, want := range []string{"1048577 bytes", `"output"`, "s3://"} {
		if !strings.Contains(ti.LastErr, want) {
			t.Errorf("reason %q does not contain %q", ti.LastErr, want)
		}
	}
	if ti.Retried != 0 || len(ti.Result) != 0 {
		t.Errorf("retried %d, result %d bytes; want 0 and none", ti.Retried, len(ti.Result))
	}

	p := big(1<<20 + 1)
	p.Output = "s3://" + e.bucket + "/big/out.txt"
	if _, err := e.client.Run(ctx, jobs.TypeText, p); err != nil {
		t.Fatalf("same job with an S3 output: %v", err)
	}
}

// TestResultCapIsConfigurable: Config.MaxResultBytes sets the cap.
func TestResultCapIsConfigurable(t *testing.T) {
	e := newEnv(t, envConfig{concurrency: 2, worker: worker.Config{MaxResultBytes: 16}})
	ctx := testenv.Context(t, time.Minute)
	info, err := e.client.EnqueueText(ctx, jobs.Payload{Guest: "hello", Data: []byte("a rather long name")}, jobs.MaxRetry(5))
	if err != nil {
		t.Fatal(err)
	}
	if ti := waitArchived(t, ctx, e.insp, info.Queue, info.ID); !strings.Contains(ti.LastErr, "more than the 16") {
		t.Errorf("reason = %q", ti.LastErr)
	}
}

// TestJobsCannotTouchTheGuestRegistry: with no allow-lists a job can read
// and write any bucket but the guest registry's; an attempt to overwrite a
// guest fails permanently and the guest still runs.
func TestJobsCannotTouchTheGuestRegistry(t *testing.T) {
	e := newEnv(t, envConfig{concurrency: 2})
	ctx := testenv.Context(t, time.Minute)
	reg := e.guests.Bucket()
	in := e.put(t, "evil.txt", []byte("not a guest"))
	cases := []struct {
		name   string
		p      jobs.Payload
		reason string
	}{
		{"overwrite a guest", jobs.Payload{Guest: "misbehave", Input: in, Output: "s3://" + reg + "/hello.wasm"}, "guest registry"},
		{"write a digest", jobs.Payload{Guest: "misbehave", Data: []byte("x"), Output: "s3://" + reg + "/sha256/evil.wasm"}, "guest registry"},
		{"read a guest", jobs.Payload{Guest: "misbehave", Input: "s3://" + reg + "/hello.wasm", Output: "s3://" + e.bucket + "/stolen.wasm"}, "input allow-list"},
		{"forge a manifest", jobs.Payload{Guest: "misbehave", Input: in, Output: "s3://" + e.bucket + "/wasmjobs-results/b-1/" + s3url.ManifestName}, "only the batch writes"},
		{"forge a summary", jobs.Payload{Guest: "misbehave", Input: in, Output: "s3://" + e.bucket + "/r/" + s3url.SummaryName}, "only the batch writes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			info, err := e.client.EnqueueText(ctx, c.p, jobs.MaxRetry(5))
			if err != nil {
				t.Fatal(err)
			}
			ti := waitArchived(t, ctx, e.insp, info.Queue, info.ID)
			if ti.Retried != 0 || !strings.Contains(ti.LastErr, c.reason) {
				t.Errorf("retried %d, reason %q; want it to contain %q", ti.Retried, ti.LastErr, c.reason)
			}
		})
	}
	got, _, err := e.store.Get(ctx, s3url.ObjectURL{Bucket: reg, Key: "hello.wasm"}, -1)
	if err != nil || !bytes.Equal(got, guests.Hello) {
		t.Fatalf("hello.wasm changed (%d bytes, %v)", len(got), err)
	}
	if _, err := e.client.Run(ctx, jobs.TypeText, jobs.Payload{Guest: "hello", Data: []byte("Ada")}); err != nil {
		t.Fatalf("hello after the attempts: %v", err)
	}
}

// TestAccessLists: with allow-lists, inputs and outputs (explicit or the
// default location) outside them fail permanently; inside they work.
func TestAccessLists(t *testing.T) {
	var bucket string
	e := newEnv(t, envConfig{concurrency: 2, configure: func(c *worker.Config, b string) {
		bucket = b
		inputs, err := s3url.ParseAccessList([]string{b + "/in/"})
		if err != nil {
			t.Fatal(err)
		}
		outputs, err := s3url.ParseAccessList([]string{"s3://" + b + "/out/"})
		if err != nil {
			t.Fatal(err)
		}
		c.Access = s3url.Access{Inputs: inputs, Outputs: outputs}
		c.OutputPrefix = s3url.ObjectURL{Key: "out"}
	}})
	ctx := testenv.Context(t, time.Minute)
	good := e.put(t, "in/a.txt", []byte("Ada"))
	outside := e.put(t, "elsewhere/a.txt", []byte("Ada"))
	cases := []struct {
		name   string
		p      jobs.Payload
		reason string // empty: succeeds
	}{
		{"allowed input, default output", jobs.Payload{Guest: "hello", Input: good}, ""},
		{"allowed input and output", jobs.Payload{Guest: "hello", Input: good, Output: "s3://" + bucket + "/out/x.json"}, ""},
		{"inline, allowed output", jobs.Payload{Guest: "hello", Data: []byte("x"), Output: "s3://" + bucket + "/out/y.json"}, ""},
		{"input outside", jobs.Payload{Guest: "hello", Input: outside}, "input allow-list"},
		{"input in a prefix look-alike", jobs.Payload{Guest: "hello", Input: "s3://" + bucket + "/inx/a.txt"}, "input allow-list"},
		{"output outside", jobs.Payload{Guest: "hello", Input: good, Output: "s3://" + bucket + "/elsewhere/x.json"}, "output allow-list"},
		{"output in another bucket", jobs.Payload{Guest: "hello", Data: []byte("x"), Output: "s3://other-" + bucket + "/out/x.json"}, "output allow-list"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.reason == "" {
				if _, err := e.client.Run(ctx, jobs.TypeText, c.p); err != nil {
					t.Fatal(err)
				}
				return
			}
			info, err := e.client.EnqueueText(ctx, c.p, jobs.MaxRetry(5))
			if err != nil {
				t.Fatal(err)
			}
			ti := waitArchived(t, ctx, e.insp, info.Queue, info.ID)
			if ti.Retried != 0 || !strings.Contains(ti.LastErr, c.reason) {
				t.Errorf("retried %d, reason %q; want it to contain %q", ti.Retried, ti.LastErr, c.reason)
			}
		})
	}
}
