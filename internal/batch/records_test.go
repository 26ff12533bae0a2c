package batch_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/blob"
	"github.com/wasmjobs/wasmjobs/internal/guests/guesttest"
	"github.com/wasmjobs/wasmjobs/internal/records"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
	"github.com/wasmjobs/wasmjobs/internal/testworker"
)

// want is what the merged output must say of one record: its result (as
// JSON) or an error containing the text.
type want struct {
	result string
	err    string
	sample string
}

func res(s string) want { r, _ := json.Marshal(s); return want{result: string(r)} }

// jsonlData builds a JSON lines file with every boundary case, and what
// each record must give with field "text".
func jsonlData() ([]byte, []want) {
	var b bytes.Buffer
	var w []want
	for i := range 120 {
		switch i % 12 {
		case 0:
			fmt.Fprintf(&b, "{\"text\":\"crlf %d\"}\r\n", i)
			w = append(w, res(fmt.Sprintf("crlf %d", i)))
		case 1:
			b.WriteString("\n   \n") // blank lines: no records
			fmt.Fprintf(&b, "{\"text\":\"after blanks %d\"}\n", i)
			w = append(w, res(fmt.Sprintf("after blanks %d", i)))
		case 2:
			fmt.Fprintf(&b, "{\"text\":\"two\\nlines %d\", \"n\": %d}\n", i, i)
			w = append(w, res(fmt.Sprintf("two\nlines %d", i)))
		case 3:
			fmt.Fprintf(&b, "{\"n\":%d}\n", i)
			w = append(w, want{err: `no field "text"`})
		case 4:
			b.WriteString("{bad json\n")
			w = append(w, want{err: "not valid JSON"})
		case 5:
			b.WriteString("{\"text\":\"\xff\xfe\"}\n")
			w = append(w, want{err: "not valid UTF-8"})
		case 6:
			fmt.Fprintf(&b, "{\"text\":{\"nested\": %d}}\n", i)
			w = append(w, want{result: fmt.Sprintf(`{"nested":%d}`, i)})
		case 7:
			long := strings.Repeat("long ", 60) // straddles several shard boundaries
			fmt.Fprintf(&b, "{\"text\":\"%s%d\"}\n", long, i)
			w = append(w, res(fmt.Sprintf("%s%d", long, i)))
		default:
			fmt.Fprintf(&b, "{\"text\":\"héllo wörld %d\"}\n", i)
			w = append(w, res(fmt.Sprintf("héllo wörld %d", i)))
		}
	}
	b.WriteString(`{"text":"last, no newline"}`)
	w = append(w, res("last, no newline"))
	return b.Bytes(), w
}

func linesData() ([]byte, []want) {
	var b bytes.Buffer
	var w []want
	for i := range 90 {
		switch i % 5 {
		case 0:
			fmt.Fprintf(&b, "line %d\r\n", i)
			w = append(w, res(fmt.Sprintf("line %d", i)))
		case 1:
			b.WriteString("\n")
			w = append(w, res(""))
		case 2:
			b.WriteString("bad \xc3\x28 utf8\n")
			w = append(w, want{err: "not valid UTF-8"})
		default:
			fmt.Fprintf(&b, "a \"quoted\" line, %d\n", i)
			w = append(w, res(fmt.Sprintf("a \"quoted\" line, %d", i)))
		}
	}
	b.WriteString("final")
	w = append(w, res("final"))
	return b.Bytes(), w
}

func csvData() ([]byte, []want) {
	var b bytes.Buffer
	var w []want
	// As spreadsheets export it: a byte-order mark, CRLF and LF rows.
	b.WriteString("\xEF\xBB\xBFid,text,extra\r\n")
	for i := range 80 {
		switch i % 6 {
		case 0:
			fmt.Fprintf(&b, "%d,\"multi\nline, %d\",x\n", i, i)
			w = append(w, res(fmt.Sprintf("multi\nline, %d", i)))
		case 1:
			fmt.Fprintf(&b, "%d,\"say \"\"hi\"\" %d\",y\r\n", i, i)
			w = append(w, res(fmt.Sprintf("say \"hi\" %d", i)))
		case 2:
			fmt.Fprintf(&b, "%d,bad\"quote,z\n", i)
			w = append(w, want{err: "CSV: bare \""})
		case 3:
			fmt.Fprintf(&b, "%d\n", i)
			w = append(w, want{err: "no column 1"})
		default:
			fmt.Fprintf(&b, "%d,plain %d,\n", i, i)
			w = append(w, res(fmt.Sprintf("plain %d", i)))
		}
	}
	b.WriteString("99,\"quoted last\"")
	w = append(w, res("quoted last"))
	return b.Bytes(), w
}

func tarData(t *testing.T) ([]byte, []want) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	var w []want
	add := func(name string, body []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 40 {
		key := fmt.Sprintf("shard/%06d", i)
		switch i % 4 {
		case 0:
			add(key+".txt", fmt.Appendf(nil, "text of sample %d", i))
			add(key+".json", []byte(`{"meta":1}`))
			w = append(w, want{result: fmt.Sprintf("%q", fmt.Sprintf("text of sample %d", i)), sample: key})
		case 1:
			add(key+".json", []byte(`{"only":"json"}`))
			w = append(w, want{err: `no member with extension "txt"`, sample: key})
		case 2:
			add(key+".txt", []byte{0xff, 0x00, 0xfe})
			w = append(w, want{err: "neither JSON nor UTF-8", sample: key})
		default:
			add(key+".txt", fmt.Appendf(nil, `{"already":"json %d"}`, i))
			w = append(w, want{result: fmt.Sprintf(`{"already":"json %d"}`, i), sample: key})
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), w
}

// TestRecordBatches runs a record batch of each format through a worker,
// with shards small enough that records straddle their byte boundaries,
// and checks that the merged output has every record once, in order, with
// its result or error, and that the counts and the manifest agree.
func TestRecordBatches(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Context(t, 3*time.Minute)
	testworker.Start(t, e.workerConfig(true), map[string][]byte{"misbehave": guesttest.Misbehave})
	jsonl, wJSONL := jsonlData()
	lines, wLines := linesData()
	csvb, wCSV := csvData()
	tarb, wTar := tarData(t)
	for _, tc := range []struct {
		name  string
		data  []byte
		recs  batch.RecordsSpec
		wants []want
	}{
		// JSON lines, CSV and lines run in the records ABI (misbehave
		// echoes each record); tar runs the guest once per sample.
		{"jsonl", jsonl, batch.RecordsSpec{Format: "jsonl", Field: "text", ShardBytes: 200, ShardRecords: 7}, wJSONL},
		{"lines", lines, batch.RecordsSpec{Format: "lines", ShardBytes: 50}, wLines},
		{"csv", csvb, batch.RecordsSpec{Format: "csv", Column: "text", ShardBytes: 64, ShardRecords: 5}, wCSV},
		{"tar", tarb, batch.RecordsSpec{Format: "tar", Member: "txt", ShardBytes: 4000}, wTar},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "rec/" + tc.name + "/data"
			if err := e.store.Put(ctx, s3url.ObjectURL{Bucket: e.bucket, Key: key}, tc.data, "application/octet-stream", nil); err != nil {
				t.Fatal(err)
			}
			tc.recs.Merge = true
			spec := batch.Spec{ID: "rec-" + tc.name, Guest: "misbehave", Type: "text", Input: "s3://" + e.bucket + "/rec/" + tc.name + "/", Records: &tc.recs}
			st := e.runBatch(t, ctx, spec)
			n := int64(len(tc.wants))
			var bad int64
			for _, w := range tc.wants {
				if w.err != "" {
					bad++
				}
			}
			if st.Records != n || st.RecordsDone != n || st.RecordErrors != bad || st.Failed != 0 || st.Total < 3 || st.Done != st.Total {
				t.Fatalf("status: %d shards (%d done, %d failed); records %d, done %d, errors %d; want %d records, %d errors, every shard done",
					st.Total, st.Done, st.Failed, st.Records, st.RecordsDone, st.RecordErrors, n, bad)
			}
			merged, _, err := e.store.Get(ctx, st.Spec.OutputObject(batch.MergedName), 1<<26)
			if err != nil {
				t.Fatal(err)
			}
			got := bytes.Split(bytes.TrimSuffix(merged, []byte("\n")), []byte("\n"))
			if len(got) != len(tc.wants) {
				t.Fatalf("merged output has %d lines for %d records", len(got), len(tc.wants))
			}
			for i, l := range got {
				var line struct {
					Index  int64
					Key    string
					Sample string
					Result json.RawMessage
					Error  string
				}
				if err := json.Unmarshal(l, &line); err != nil {
					t.Fatalf("line %d: %v: %s", i, err, l)
				}
				w := tc.wants[i]
				if line.Index != int64(i) || line.Key != key || line.Sample != w.sample ||
					w.err == "" && string(line.Result) != w.result || w.err != "" && !strings.Contains(line.Error, w.err) {
					t.Fatalf("line %d = %s, want index %d, key %s, %+v", i, l, i, key, w)
				}
			}
			// The manifest lists the shards with their record ranges,
			// which tile the records.
			var next int64
			items := e.manifest(t, st)
			slicesSortByFirst(items)
			for _, it := range items {
				if it.Object != key || it.First != next || it.Records <= 0 || it.End <= it.Start || it.Status != batch.ItemDone {
					t.Fatalf("manifest shard %+v, want one starting at record %d", it, next)
				}
				next += it.Records
			}
			if next != n {
				t.Fatalf("the manifest's shards hold %d records, want %d", next, n)
			}
		})
	}
}

// TestRecordObjectsNotRead: an object that is not the format asked for as
// a whole (compressed, a corrupt tar, a line over the record bound) gets a
// skipped item saying from which byte and why, its readable records before
// that still run, and the rest of the batch goes on.
func TestRecordObjectsNotRead(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Context(t, 3*time.Minute)
	testworker.Start(t, e.workerConfig(true), map[string][]byte{"misbehave": guesttest.Misbehave})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte("{\"text\":\"zipped\"}\n"))
	_ = zw.Close()
	tarb, wTar := tarData(t)
	cut := tarb[:len(tarb)-2048+100] // the last member's header cut short, then garbage
	cut = append(cut, bytes.Repeat([]byte{0xAB}, 1024)...)
	const longFirst = "{\"text\":\"three\"}\n"
	objects := map[string][]byte{
		"a-good.jsonl": []byte("{\"text\":\"one\"}\n{\"text\":\"two\"}\n"),
		"b-gzip.jsonl": gz.Bytes(),
		"c-long.jsonl": []byte(longFirst + "{\"text\":\"" + strings.Repeat("x", records.DefaultMaxRecordBytes) + "\"}\n"),
		"d-good.jsonl": []byte("{\"text\":\"four\"}"),
	}
	for name, data := range objects {
		if err := e.store.Put(ctx, s3url.ObjectURL{Bucket: e.bucket, Key: "notread/" + name}, data, "application/octet-stream", nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.store.Put(ctx, s3url.ObjectURL{Bucket: e.bucket, Key: "notread-tar/cut.tar"}, cut, "application/x-tar", nil); err != nil {
		t.Fatal(err)
	}
	run := func(id, prefix string, recs batch.RecordsSpec) *batch.Status {
		t.Helper()
		return e.runBatch(t, ctx, batch.Spec{ID: id, Guest: "misbehave", Type: "text", Input: "s3://" + e.bucket + "/" + prefix + "/", Records: &recs})
	}
	st := run("notread-jsonl", "notread", batch.RecordsSpec{Format: "jsonl", Field: "text"})
	skipped := map[string]string{}
	var done int64
	for _, it := range e.manifest(t, st) {
		switch it.Status {
		case batch.ItemSkipped:
			skipped[it.Object] = it.Error
		case batch.ItemDone:
			done += it.Records
		default:
			t.Errorf("item %+v", it)
		}
	}
	if done != 4 || st.RecordsDone != 4 || st.Failed != 0 || len(skipped) != 2 ||
		!strings.Contains(skipped["notread/b-gzip.jsonl"], "from byte 0") || !strings.Contains(skipped["notread/b-gzip.jsonl"], "gzip-compressed") ||
		!strings.Contains(skipped["notread/c-long.jsonl"], fmt.Sprintf("from byte %d on", len(longFirst))) ||
		!strings.Contains(skipped["notread/c-long.jsonl"], fmt.Sprintf("over %d bytes", records.DefaultMaxRecordBytes)) {
		t.Fatalf("records done %d (status %d), failed %d, skipped %q; want the 4 readable records done and the two objects skipped with their reasons",
			done, st.RecordsDone, st.Failed, skipped)
	}
	st = run("notread-tar", "notread-tar", batch.RecordsSpec{Format: "tar", Member: "txt"})
	var tarDone int64
	var reason string
	for _, it := range e.manifest(t, st) {
		if it.Status == batch.ItemSkipped {
			reason = it.Error
		} else {
			tarDone += it.Records
		}
	}
	if reason == "" || !strings.Contains(reason, "malformed") || tarDone == 0 || tarDone >= int64(len(wTar)) || st.RecordsDone != tarDone {
		t.Fatalf("cut tar: %d samples done (status %d) of %d, skipped item %q; want the samples before the cut done and the rest skipped as malformed",
			tarDone, st.RecordsDone, len(wTar), reason)
	}
}

// TestRecordShardFailure: a guest that breaks the records ABI fails its
// shards, whose records the manifest lists as failed and the merged output
// as error lines; retry-failed runs them again.
func TestRecordShardFailure(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Context(t, 2*time.Minute)
	testworker.Start(t, e.workerConfig(true), map[string][]byte{"misbehave": guesttest.Misbehave})
	data, wants := linesData()
	key := "fail/data.txt"
	if err := e.store.Put(ctx, s3url.ObjectURL{Bucket: e.bucket, Key: key}, data, "text/plain", nil); err != nil {
		t.Fatal(err)
	}
	spec := batch.Spec{ID: "rec-drop", Guest: "misbehave", Type: "text", Input: "s3://" + e.bucket + "/fail/", Params: map[string]string{"mode": "drop"},
		Records: &batch.RecordsSpec{Format: "lines", ShardRecords: 30, Merge: true}}
	st := e.runBatch(t, ctx, spec)
	n := int64(len(wants))
	if st.Failed != st.Total || st.RecordsFailed != n || st.RecordsDone != 0 {
		t.Fatalf("status: %d of %d shards failed, records failed %d of %d", st.Failed, st.Total, st.RecordsFailed, n)
	}
	for _, it := range e.manifest(t, st) {
		if it.Status != batch.ItemFailed || !strings.Contains(it.Error, "the guest answered") {
			t.Fatalf("manifest line %+v, want the shard failed with the guest's miscount", it)
		}
	}
	merged, _, err := e.store.Get(ctx, st.Spec.OutputObject(batch.MergedName), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(merged), "\n"), "\n")
	if int64(len(lines)) != n || !strings.Contains(lines[0], `"index":0,`) || !strings.Contains(lines[len(lines)-1], fmt.Sprintf(`"index":%d,`, n-1)) ||
		!strings.Contains(lines[5], "the shard failed") {
		t.Fatalf("merged output of failed shards: %d lines, first %s", len(lines), lines[0])
	}
	if k, err := e.client.RetryFailed(ctx, st.ID); err != nil || int64(k) != st.Total {
		t.Fatalf("retry-failed = %d, %v", k, err)
	}
	// The shards fail again; their records are counted once, not twice.
	time.Sleep(100 * time.Millisecond)
	st2, err := batch.Wait(ctx, e.client, st.ID, 50*time.Millisecond, nil)
	if err != nil || st2.Failed != st.Total || st2.RecordsFailed != n || st2.Records != n {
		t.Fatalf("after retry-failed: %d of %d shards failed, records failed %d of %d (%v)", st2.Failed, st2.Total, st2.RecordsFailed, n, err)
	}
}

func slicesSortByFirst(items []batch.Item) {
	for i := 1; i < len(items); i++ {
		for j := i; j > 0 && items[j].First < items[j-1].First; j-- {
			items[j], items[j-1] = items[j-1], items[j]
		}
	}
}

// TestRecordPlanResumes: a pass that stopped part way through an object is
// planned again without enqueueing the shards it recorded, even those
// whose jobs are gone already.
func TestRecordPlanResumes(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Context(t, time.Minute)
	data, wants := linesData()
	key := "resume/data.txt"
	if err := e.store.Put(ctx, s3url.ObjectURL{Bucket: e.bucket, Key: key}, data, "text/plain", nil); err != nil {
		t.Fatal(err)
	}
	spec, err := batch.Spec{ID: "rec-resume", Guest: "misbehave", Type: "text", Input: "s3://" + e.bucket + "/resume/",
		Records: &batch.RecordsSpec{Format: "lines", ShardRecords: 10}}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.CreateBatch(ctx, spec); err != nil {
		t.Fatal(err)
	}
	first, err := batch.Plan(ctx, e.client, e.store, spec, batch.PlanConfig{})
	shards := int64((len(wants) + 9) / 10)
	if err != nil || first.Enqueued != shards || first.Listed != shards || !first.Finished && first.Listed != shards {
		t.Fatalf("first plan = %+v, %v; want %d shards", first, err, shards)
	}
	// As if the pass had stopped before it marked the object planned, and
	// one shard's job had run and gone.
	rdb := e.redis.MakeRedisClient().(redis.UniversalClient)
	defer rdb.Close()
	if err := rdb.HDel(ctx, "wasmjobs:batch:{"+spec.ID+"}", "planned:"+key).Err(); err != nil {
		t.Fatal(err)
	}
	var gone string
	for it, err := range e.client.BatchItems(ctx, spec.ID) {
		if err != nil {
			t.Fatal(err)
		}
		if it.Start == 0 {
			gone = it.TaskID
		}
	}
	if err := e.insp.DeleteTask(spec.Queue, gone); err != nil {
		t.Fatal(err)
	}
	again, err := batch.Plan(ctx, e.client, e.store, spec, batch.PlanConfig{})
	if err != nil || again.Enqueued != 0 || again.Resumed != shards || again.Listed != shards {
		t.Fatalf("second plan = %+v, %v; want all %d shards resumed", again, err, shards)
	}
	if _, err := e.insp.GetTaskInfo(spec.Queue, gone); err == nil {
		t.Fatal("the second pass enqueued a recorded shard's job again")
	}
	st, err := e.client.BatchStatus(ctx, spec.ID)
	if err != nil || st.Records != int64(len(wants)) || st.Enqueued != shards {
		t.Fatalf("status after two passes: %+v, %v; want %d records in %d shards, each counted once", st, err, len(wants), shards)
	}
}

// lostAckStore writes each shard output, then answers its first write
// with an error, as when a worker dies between the output's PUT and the
// job's ack: the job's next attempt finds the output written by its own
// task.
type lostAckStore struct {
	*blob.Store
	mu   sync.Mutex
	puts map[string]int
}

func (s *lostAckStore) Put(ctx context.Context, u s3url.ObjectURL, data []byte, contentType string, md map[string]string) error {
	if err := s.Store.Put(ctx, u, data, contentType, md); err != nil || contentType != "application/x-ndjson" {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.puts[u.Key]++
	if s.puts[u.Key] == 1 {
		return errors.New("connection reset after the output was written")
	}
	return nil
}

// TestRecordShardOutputWrittenBeforeAck: a shard whose output its own task
// wrote before the job's ack was lost is not run again, and its records'
// error lines still count, in the batch and in its manifest line.
func TestRecordShardOutputWrittenBeforeAck(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Context(t, 2*time.Minute)
	store := &lostAckStore{Store: e.store, puts: map[string]int{}}
	cfg := e.workerConfig(true)
	cfg.Store = store
	cfg.GuestBucket = testenv.NewBucket(t, e.store)
	testworker.Start(t, cfg, map[string][]byte{"misbehave": guesttest.Misbehave})
	data, wants := jsonlData()
	key := "ack/data.jsonl"
	if err := e.store.Put(ctx, s3url.ObjectURL{Bucket: e.bucket, Key: key}, data, "application/x-ndjson", nil); err != nil {
		t.Fatal(err)
	}
	spec := batch.Spec{ID: "rec-ack", Guest: "misbehave", Type: "text", Input: "s3://" + e.bucket + "/ack/",
		Records: &batch.RecordsSpec{Format: "jsonl", Field: "text", ShardRecords: 20}}
	st := e.runBatch(t, ctx, spec)
	var bad int64
	for _, w := range wants {
		if w.err != "" {
			bad++
		}
	}
	if st.Done != st.Total || st.RecordsDone != int64(len(wants)) || st.RecordErrors != bad {
		t.Fatalf("status: %d of %d shards done, %d records done, %d errors; want all, %d records, %d errors",
			st.Done, st.Total, st.RecordsDone, st.RecordErrors, len(wants), bad)
	}
	var lines int64
	for _, it := range e.manifest(t, st) {
		var want int64
		for _, w := range wants[it.First : it.First+it.Records] {
			if w.err != "" {
				want++
			}
		}
		if it.RecordErrors != want {
			t.Errorf("manifest shard %s: %d record errors, want %d", it.Key, it.RecordErrors, want)
		}
		lines++
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	if int64(len(store.puts)) != lines {
		t.Fatalf("%d shard outputs written for %d shards", len(store.puts), lines)
	}
	for k, n := range store.puts {
		if n != 1 {
			t.Errorf("shard output %s written %d times, want once: the retry should find it", k, n)
		}
	}
}
