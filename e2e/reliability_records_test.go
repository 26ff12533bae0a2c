package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/guests/guesttest"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
)

// relShardKills: kill -9 of the only worker mid-shard, in a record batch:
// a JSON lines dataset in a few objects, cut into shards of 500 records,
// run by the misbehave guest in the records ABI (it echoes each record's
// field), every 97th line not JSON (the record's error line). The S3 proxy
// kills the worker right after a shard's ranged GET is answered (the shard
// is mid-run), then its replacement right after a shard's output PUT is
// answered (before the job's ack), then the next one at a random moment;
// S3 answers slowly meanwhile, so that the batch lasts long enough for the
// three. A last worker finishes the batch. Every record must appear once,
// with its result or error, in merged.jsonl and in the union of the shard
// outputs, the counts must be exact and the manifest's shards must tile
// the records.
func relShardKills(t *testing.T) {
	const objects, perObject, perShard, badEvery = 4, 5000, 500, 97
	const n, shards = objects * perObject, objects * perObject / perShard
	e := newRelEnv(t)
	fault := e.startS3Fault(t)
	wasm := filepath.Join(e.dir, "misbehave.wasm")
	if err := os.WriteFile(wasm, guesttest.Misbehave, 0o644); err != nil {
		t.Fatal(err)
	}
	e.cli("guest", "push", wasm, "--name", "misbehave")

	// want[i] is record i's result as JSON, or "" for an error line.
	ctx := context.Background()
	want := make([]string, n)
	sizes := map[string]int64{}
	bad := 0
	for o := range objects {
		var b bytes.Buffer
		for j := range perObject {
			i := o*perObject + j
			if i%badEvery == badEvery-1 {
				b.WriteString("{not json, record " + fmt.Sprint(i) + "\n")
				bad++
				continue
			}
			text := fmt.Sprintf("record %d of the shard dataset", i)
			fmt.Fprintf(&b, "{\"n\":%d,\"text\":%q}\n", i, text)
			res, _ := json.Marshal(text)
			want[i] = string(res)
		}
		key := fmt.Sprintf("recs/part-%d.jsonl", o)
		sizes[key] = int64(b.Len())
		if err := e.store.Put(ctx, s3url.ObjectURL{Bucket: e.bucket, Key: key}, b.Bytes(), "application/x-ndjson", nil); err != nil {
			t.Fatal(err)
		}
	}

	k := e.newRelKiller(fault, "--concurrency", "4")
	isShardRead := func(r *http.Request) bool {
		return r.Method == http.MethodGet && r.Header.Get("Range") != "" && strings.Contains(r.URL.Path, "/recs/part-")
	}
	isShardOutput := func(r *http.Request) bool {
		base := path.Base(r.URL.Path)
		return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/wasmjobs-results/") &&
			strings.HasSuffix(base, ".jsonl") && base != batch.MergedName && !s3url.IsBatchFile(base)
	}
	k.killAt(func(r *http.Request, answered bool) bool { return answered && isShardRead(r) })
	fault.mode.Store(faultSlow)
	run := &relRun{e: e, id: "rel-shards", n: n, start: time.Now()}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	run.sampleWhile(func() {
		e.cli("batch", "run", "s3://"+e.bucket+"/recs/", "--guest", "misbehave", "--type", "text", "--id", run.id,
			"--records", "jsonl", "--field", "text", "--shard-records", fmt.Sprint(perShard), "--merge")
		k.restart("after a shard's ranged GET", time.Minute)
		k.killAt(func(r *http.Request, answered bool) bool { return answered && isShardOutput(r) })
		k.restart("after a shard's output PUT", time.Minute)
		st, err := e.batches.BatchStatus(ctx, run.id)
		if err != nil {
			t.Fatal(err)
		}
		target := st.Done + st.Failed + 1 + int64(rng.IntN(shards/5))
		for deadline := time.Now().Add(time.Minute); st.Done+st.Failed < target; time.Sleep(20 * time.Millisecond) {
			if st, err = e.batches.BatchStatus(ctx, run.id); err != nil {
				t.Fatal(err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d shards ended, want %d before the third kill", st.Done+st.Failed, shards, target)
			}
		}
		if !st.Finished.IsZero() {
			t.Fatalf("the batch had finished before the third kill: %+v", st)
		}
		k.killNow()
	})
	fault.mode.Store(faultNone)

	run.waitDone(n, 5*time.Minute) // records: more than the shards, so it waits for the end
	st := run.waitManifest(5 * time.Minute)
	took := time.Since(run.start)
	if st.Total != shards || st.Done != shards || st.Failed != 0 || st.Records != n || st.RecordsDone != n ||
		st.RecordsFailed != 0 || st.RecordErrors != int64(bad) {
		t.Errorf("status: %d shards (%d done, %d failed); records %d (%d done, %d failed, %d errors); want %d shards done, %d records done, %d errors",
			st.Total, st.Done, st.Failed, st.Records, st.RecordsDone, st.RecordsFailed, st.RecordErrors, shards, n, bad)
	}

	// The manifest's shards tile each object's bytes and the batch's
	// records, each with its count of error lines.
	items := run.manifest(st)
	slices.SortFunc(items, func(a, b batch.Item) int { return int(a.First - b.First) })
	var next int64
	var prev batch.Item
	for i, it := range items {
		start := prev.End
		if i == 0 || it.Object != prev.Object {
			start = 0
			if i > 0 && prev.End != sizes[prev.Object] {
				t.Errorf("the shards of %s end at byte %d of %d", prev.Object, prev.End, sizes[prev.Object])
			}
		}
		wantErrs := int64(0)
		for j := it.First; j < it.First+it.Records && j < n; j++ {
			if want[j] == "" {
				wantErrs++
			}
		}
		if it.Status != batch.ItemDone || it.Key != batch.ShardKey(it.Object, it.Start) || it.Start != start || it.End <= it.Start ||
			it.First != next || it.Records != perShard || it.RecordErrors != wantErrs || it.Output == "" {
			t.Errorf("manifest shard %+v: want one done from byte %d, records %d-%d, %d of them errors", it, start, next, next+perShard-1, wantErrs)
		}
		next, prev = it.First+it.Records, it
	}
	if next != n || len(items) != shards || prev.End != sizes[prev.Object] {
		t.Errorf("the manifest's %d shards hold records 0-%d, the last ending at byte %d of %d; want %d shards, %d records",
			len(items), next-1, prev.End, sizes[prev.Object], shards, n)
	}

	// Every record once, right, in the shard outputs and in merged.jsonl.
	inShards := make([]int, n)
	wrong := 0
	check := func(where string, l []byte, key string, lo, hi int64) int64 {
		var line struct {
			Index  int64           `json:"index"`
			Key    string          `json:"key"`
			Result json.RawMessage `json:"result"`
			Error  string          `json:"error"`
		}
		if err := json.Unmarshal(l, &line); err != nil || line.Index < lo || line.Index >= hi {
			wrong++
			t.Errorf("%s: line %q (%v), want a record of %d-%d", where, l, err, lo, hi-1)
			return -1
		}
		w := want[line.Index]
		ok := key == "" || line.Key == key
		if w == "" {
			ok = ok && len(line.Result) == 0 && strings.Contains(line.Error, "not valid JSON")
		} else {
			ok = ok && string(line.Result) == w && line.Error == ""
		}
		if !ok {
			wrong++
			if wrong <= 5 {
				t.Errorf("%s: line %s, want key %s and result %s", where, l, key, w)
			}
		}
		return line.Index
	}
	for _, it := range items {
		u, err := s3url.ParseObjectURL(it.Output)
		if err != nil {
			t.Fatal(err)
		}
		b, _, err := e.store.Get(ctx, u, 64<<20)
		if err != nil {
			t.Fatalf("shard output %s: %v", it.Output, err)
		}
		for l := range bytes.Lines(b) {
			if i := check(it.Output, bytes.TrimSuffix(l, []byte("\n")), it.Object, it.First, it.First+it.Records); i >= 0 {
				inShards[i]++
			}
		}
	}
	outputs := 0
	out, _ := s3url.ParsePrefixURL(st.Spec.Output)
	for obj, err := range e.store.List(ctx, out) {
		if err != nil {
			t.Fatal(err)
		}
		if base := path.Base(obj.Key); base != batch.MergedName && !s3url.IsBatchFile(base) {
			outputs++
		}
	}
	if outputs != shards {
		t.Errorf("%d shard outputs under %s, want %d", outputs, st.Spec.Output, shards)
	}
	merged, _, err := e.store.Get(ctx, st.Spec.OutputObject(batch.MergedName), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	inMerged := make([]int, n)
	var at int64
	for l := range bytes.Lines(merged) {
		if i := check(batch.MergedName, bytes.TrimSuffix(l, []byte("\n")), "", 0, n); i >= 0 {
			inMerged[i]++
			if i != at {
				wrong++
				t.Errorf("%s: line %d holds record %d", batch.MergedName, at, i)
			}
		}
		at++
	}

	// Lost: a record without its line in either; done twice: a line twice,
	// or the records of a shard some worker reported done twice.
	lost, twice := 0, 0
	for i := range n {
		if inShards[i] == 0 || inMerged[i] == 0 {
			lost++
		}
		twice += max(inShards[i]-1, 0) + max(inMerged[i]-1, 0)
	}
	_, seen := e.tasksDone()
	for it, err := range e.batches.BatchItems(ctx, run.id) {
		if err != nil {
			t.Fatal(err)
		}
		twice += int(it.Records) * max(seen[it.TaskID]-1, 0)
	}
	if wrong != 0 {
		t.Errorf("%d lines wrong", wrong)
	}
	addRelRow(t, relRow{
		scenario: fmt.Sprintf("kill -9 of the only worker mid-shard in a record batch (%d JSON lines in %d objects, %d shards of %d records through a records-ABI guest, "+
			"every %dth line not JSON, so %d error lines): right after a shard's ranged GET was answered, right after a shard's output PUT before its ack, "+
			"and at a random moment (S3 answering in 300 ms meanwhile); a last worker finishes it",
			n, objects, shards, perShard, badEvery, bad),
		in: n, ok: int(st.RecordsDone), lost: lost, twice: twice, took: took, stall: run.longestStall(),
		bound: "as after any kill: the killed worker's shards wait for their lease and asynq's recoverer, then run again from their first record " +
			"(a shard whose output was written finds it by its task id and is not run again); merged.jsonl is written when the last shard ends",
	})
}
