package batch_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/blob"
	"github.com/wasmjobs/wasmjobs/internal/queue"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
)

// startWorkerWith runs a worker whose jobs, plans and manifests obey access.
func (e *env) startWorkerWith(t testing.TB, access s3url.Access) {
	t.Helper()
	ba := batch.Access{Access: access, GuestBucket: e.guestBucket}
	cfg := e.workerConfig(true)
	cfg.Access = access
	cfg.BatchRecorder = &batch.Recorder{Client: e.client, Store: e.store, Access: ba}
	cfg.BatchPlanner = &batch.PlanHandler{Client: e.client, Store: e.store, Config: batch.PlanConfig{Access: ba}}
	e.startWorkerConfig(t, cfg)
}

// listKeys returns the keys under prefix.
func (e *env) listKeys(t testing.TB, prefix s3url.ObjectURL) []string {
	t.Helper()
	var keys []string
	for o, err := range e.store.List(context.Background(), prefix) {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, o.Key)
	}
	return keys
}

// TestBatchObeysAccessLists: a batch whose input prefix the worker may not
// read (outside --input-allow, or the guest registry) or whose output it
// may not write (outside --output-allow, or the guest registry) ends
// failed with the reason before anything is listed, and nothing is
// written at its output; an allowed batch on the same worker runs.
func TestBatchObeysAccessLists(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Context(t, 2*time.Minute)
	reg := e.guestBucket
	e.upload(t, "in/", 3)
	e.upload(t, "secret/", 3)
	b := "s3://" + e.bucket + "/"
	access, err := s3url.ParseAccessList([]string{e.bucket + "/in/", reg})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := s3url.ParseAccessList([]string{e.bucket + "/out/"})
	if err != nil {
		t.Fatal(err)
	}
	e.startWorkerWith(t, s3url.Access{Inputs: access, Outputs: outs})

	cases := []struct {
		name, input, output, want string
		outURL                    s3url.ObjectURL
	}{
		{"input outside the allow-list", b + "secret/", b + "out/a/", "input allow-list", s3url.ObjectURL{Bucket: e.bucket, Key: "out/a/"}},
		{"output outside the allow-list", b + "in/", b + "elsewhere/", "output allow-list", s3url.ObjectURL{Bucket: e.bucket, Key: "elsewhere/"}},
		{"output prefix look-alike", b + "in/", b + "outx/", "output allow-list", s3url.ObjectURL{Bucket: e.bucket, Key: "outx/"}},
		{"output in the guest registry", b + "in/", "s3://" + reg + "/", "guest registry", s3url.ObjectURL{Bucket: reg}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := batch.Spec{ID: "acl-" + string(rune('a'+i)), Guest: "wordcount", Type: queue.TypeText, Input: c.input, Output: c.output}
			if _, err := e.client.StartBatch(ctx, spec); err != nil {
				t.Fatal(err)
			}
			wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			st, err := batch.Wait(wctx, e.client, spec.ID, 50*time.Millisecond, nil)
			if err != nil {
				t.Fatalf("batch did not end: %+v, %v", st, err)
			}
			if !strings.Contains(st.Error, c.want) || st.Total+st.Enqueued+st.Done+st.Failed != 0 || st.ManifestWritten {
				t.Errorf("batch ended %+v; want failed with %q, nothing listed or run, no manifest", st, c.want)
			}
			for _, k := range e.listKeys(t, c.outURL) {
				if strings.HasSuffix(k, s3url.ManifestName) || strings.HasSuffix(k, s3url.SummaryName) || strings.HasSuffix(k, ".json") {
					t.Errorf("refused batch wrote %s/%s", c.outURL.Bucket, k)
				}
			}
		})
	}

	// The guest registry is an input only because the list names it; with
	// the default lists it is refused (checked without a worker).
	regSpec, err := batch.Spec{ID: "acl-reg", Guest: "wordcount", Type: queue.TypeText, Input: "s3://" + reg + "/", Output: b + "out/reg/"}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if err := (batch.Access{GuestBucket: reg}).CheckSpec(regSpec); !errors.Is(err, s3url.ErrAccessDenied) || !strings.Contains(err.Error(), "input allow-list") {
		t.Errorf("guest registry as a batch input with no lists: %v; want refused", err)
	}
	if _, err := batch.Plan(ctx, e.client, e.store, regSpec, batch.PlanConfig{Access: batch.Access{GuestBucket: reg}}); !errors.Is(err, s3url.ErrAccessDenied) {
		t.Errorf("Plan on the guest registry: %v; want refused", err)
	}

	// An allowed batch runs to its manifest on the same worker.
	spec := batch.Spec{ID: "acl-ok", Guest: "wordcount", Type: queue.TypeText, Input: b + "in/", Output: b + "out/ok"}
	if _, err := e.client.StartBatch(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if st := e.waitManifest(t, spec.ID); st.Error != "" || st.Done+st.Failed != 3 {
		t.Errorf("allowed batch: %+v", st)
	}
}

// TestManifestObeysOutputAllowList: a batch planned where no allow-list
// applies (the operator's own `wasmjobs batch run`) but run by a worker
// whose --output-allow excludes its output gets no manifest there; the
// batch keeps the reason.
func TestManifestObeysOutputAllowList(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Context(t, 2*time.Minute)
	e.upload(t, "docs/", 2)
	outs, err := s3url.ParseAccessList([]string{e.bucket + "/allowed/"})
	if err != nil {
		t.Fatal(err)
	}
	spec, err := batch.Spec{ID: "man-acl", Guest: "wordcount", Type: queue.TypeText,
		Input: "s3://" + e.bucket + "/docs/", Output: "s3://" + e.bucket + "/other/"}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.CreateBatch(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := batch.Plan(ctx, e.client, e.store, spec, batch.PlanConfig{}); err != nil {
		t.Fatal(err)
	}
	e.startWorkerWith(t, s3url.Access{Outputs: outs})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		st, err := e.client.BatchStatus(ctx, spec.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st.Error != "" {
			if !strings.Contains(st.Error, "output allow-list") || st.ManifestWritten || st.Finished.IsZero() {
				t.Errorf("batch %+v; want finished without a manifest, the allow-list as the reason", st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reason recorded 30 s on: %+v", st)
		}
	}
	_, err = e.store.Stat(ctx, spec.OutputObject(s3url.ManifestName))
	if !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("manifest outside the output allow-list: stat says %v; want not found", err)
	}
	// The operator's own tools, which apply no lists, still write it.
	if err := batch.EnsureManifest(ctx, e.client, e.store, spec.ID, batch.Access{}); err != nil {
		t.Fatal(err)
	}
}
