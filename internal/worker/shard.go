package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hibiken/asynq"

	"github.com/wasmjobs/wasmjobs/internal/blob"
	"github.com/wasmjobs/wasmjobs/internal/queue"
	"github.com/wasmjobs/wasmjobs/internal/records"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
	"github.com/wasmjobs/wasmjobs/internal/sandbox"
)

// rangeReader is the part of blob.Store a shard job reads its input with.
type rangeReader interface {
	GetRange(ctx context.Context, u s3url.ObjectURL, start, end int64, etag string) ([]byte, error)
}

var _ rangeReader = (*blob.Store)(nil)

// ShardLine is one line of a shard's output: a record's result or error.
type ShardLine struct {
	// Index is the record's number in its batch, from 0.
	Index int64 `json:"index"`
	// Key is the input object's key; Sample a tar record's sample.
	Key    string `json:"key"`
	Sample string `json:"sample,omitempty"`
	// Result is the guest's answer as JSON (text that is not JSON becomes
	// a JSON string).
	Result json.RawMessage `json:"result,omitempty"`
	// Error says why the record has no result.
	Error string `json:"error,omitempty"`
}

// shardStats is what a job tells its batch besides its outcome: the
// records of a shard that got an error line, and what the guest wrote to
// stderr (the tail).
type shardStats struct {
	recordErrors int64
	log          string
}

// runShard runs the guest on every record of a shard and writes one
// ShardLine per record, in order, to out. A record that cannot be read or
// that its guest refuses gets an error line; the shard fails only when its
// input cannot be read as planned, the guest cannot run, or a guest
// speaking the records ABI breaks it.
func (h *handler) runShard(ctx context.Context, t *asynq.Task, taskID string, p *queue.Payload, in, out s3url.ObjectURL, mod *sandbox.Module, stats *shardStats) error {
	sh := p.Shard
	rr, ok := h.cfg.Store.(rangeReader)
	if !ok {
		return permanent(errors.New("this worker's store cannot read byte ranges, which shards need"))
	}
	if sh.End-sh.Start > h.cfg.MaxInputBytes {
		return permanent(fmt.Errorf("shard of %d bytes, over the worker's input limit of %d", sh.End-sh.Start, h.cfg.MaxInputBytes))
	}
	data, err := rr.GetRange(ctx, in, sh.Start, sh.End, sh.ETag)
	switch {
	case errors.Is(err, blob.ErrChanged):
		return permanent(fmt.Errorf("the input changed since the batch was planned (run the batch again to plan its new version): %w", err))
	case errors.Is(err, blob.ErrNotFound):
		return permanent(fmt.Errorf("input object missing: %w", err))
	case err != nil:
		return storeError("read input", err)
	}
	cfg := sh.Config
	// The plan's count sizes the slice (a record takes at least a byte, so
	// no more than the shard's bytes are ever reserved).
	recs := make([]records.Record, 0, max(0, min(sh.Count, int64(len(data))+1)))
	for rec, err := range records.Scan(bytes.NewReader(data), sh.Start, cfg, true) {
		if err != nil {
			return permanent(fmt.Errorf("read the shard's records: %w", err))
		}
		recs = append(recs, rec)
	}
	if int64(len(recs)) != sh.Count {
		return permanent(fmt.Errorf("bytes %d-%d hold %d records, the plan said %d", sh.Start, sh.End, len(recs), sh.Count))
	}
	lines := make([]ShardLine, len(recs))
	for i, rec := range recs {
		lines[i] = ShardLine{Index: sh.First + int64(i), Key: in.Key, Sample: rec.Sample, Error: rec.Err}
	}
	start := time.Now()
	if mod.RecordsABI && cfg.Text() {
		err = h.runRecordsABI(ctx, p, mod, recs, lines, stats)
	} else {
		err = h.runEachRecord(ctx, p, mod, recs, lines, stats)
	}
	if err != nil {
		return err
	}
	key := jsonString(in.Key)
	buf := make([]byte, 0, shardOutputSize(lines, len(key)))
	for i := range lines {
		if lines[i].Error != "" {
			stats.recordErrors++
		}
		buf = appendShardLine(buf, &lines[i], key)
	}
	md := map[string]string{MetaTaskID: taskID, MetaGuest: mod.Digest, MetaRecordErrors: strconv.FormatInt(stats.recordErrors, 10)}
	if err := h.cfg.Store.Put(ctx, out, buf, "application/x-ndjson", md); err != nil {
		return storeError("write output", err)
	}
	return h.writeSummary(t, Summary{Output: out.String(), Bytes: len(buf), Guest: mod.Digest, DurationMS: time.Since(start).Milliseconds(),
		Records: sh.Count, RecordErrors: stats.recordErrors})
}

// runRecordsABI runs the guest once on every readable record of the shard.
func (h *handler) runRecordsABI(ctx context.Context, p *queue.Payload, mod *sandbox.Module, recs []records.Record, lines []ShardLine, stats *shardStats) error {
	size, n := 0, 0
	for _, rec := range recs {
		if rec.Err == "" {
			size += len(rec.Value) + 1
			n++
		}
	}
	stdin := make([]byte, 0, size)
	todo := make([]int, 0, n)
	for i, rec := range recs {
		if rec.Err == "" {
			stdin = append(append(stdin, rec.Value...), '\n')
			todo = append(todo, i)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	res, ran, err := h.runGuest(ctx, mod, sandbox.RunOptions{Stdin: stdin, Params: p.Params, Name: p.Guest, MaxOutput: h.cfg.MaxOutputBytes, Records: true})
	h.cfg.Metrics.run(p.Guest, outcomeOf(err), ran, len(stdin), resultBytes(res))
	if err != nil {
		return classify(err)
	}
	h.keepLog(ctx, taskIDOf(ctx), res.Stderr, stats)
	out := bytes.TrimSuffix(res.Stdout, []byte("\n"))
	answers := bytes.Split(out, []byte("\n"))
	if len(out) == 0 {
		answers = nil
	}
	if len(answers) != len(todo) {
		return permanent(fmt.Errorf("the guest answered %d of the shard's %d records (the records ABI wants one line of JSON per record)", len(answers), len(todo)))
	}
	for j, i := range todo {
		setResult(&lines[i], answers[j])
	}
	return nil
}

// runEachRecord runs the guest once per readable record, each on a fresh
// instance of the compiled module, the record's input on stdin. Records
// run side by side, as many as the worker has guest slots (each run takes
// one, so a shard uses the cores idle slots leave, as that many one-object
// jobs would, and never more guests than the worker allows); their lines
// keep the records' order.
func (h *handler) runEachRecord(ctx context.Context, p *queue.Payload, mod *sandbox.Module, recs []records.Record, lines []ShardLine, stats *shardStats) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		mu       sync.Mutex
		firstErr error
		logAt    = -1
		wg       sync.WaitGroup
	)
	for range min(cap(h.slots), len(recs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(recs) {
					return
				}
				rec := recs[i]
				if rec.Err != "" {
					continue
				}
				res, ran, err := h.runGuest(ctx, mod, sandbox.RunOptions{Stdin: rec.Input, Params: p.Params, Name: p.Guest, MaxOutput: h.cfg.MaxOutputBytes})
				h.cfg.Metrics.run(p.Guest, outcomeOf(err), ran, len(rec.Input), resultBytes(res))
				var ge *sandbox.GuestError
				switch {
				case errors.As(err, &ge) && ge.Kind != sandbox.ErrTimeout:
					// The guest refused the record (exit, trap, memory):
					// the record's error, not the shard's.
					lines[i].Error = ge.Error()
				case err != nil:
					// Time ran out, or the worker is stopping: the shard
					// runs again.
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					return
				default:
					setResult(&lines[i], res.Stdout)
					if res.Stderr != "" {
						mu.Lock()
						if i > logAt { // the last record's that wrote any
							logAt, stats.log = i, res.Stderr
						}
						mu.Unlock()
					}
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return classify(firstErr)
	}
	return nil
}

// setResult puts a guest's answer into a line: JSON as it is (on one
// line), other text as a JSON string; an object {"error": "..."} alone is
// the record's error.
func setResult(l *ShardLine, answer []byte) {
	answer = bytes.TrimSpace(answer)
	if json.Valid(answer) {
		if mayBeError(answer) {
			var e struct {
				Error *string `json:"error"`
			}
			var obj map[string]json.RawMessage
			if json.Unmarshal(answer, &obj) == nil && len(obj) == 1 && json.Unmarshal(answer, &e) == nil && e.Error != nil {
				l.Error = *e.Error
				return
			}
		}
		if bytes.IndexAny(answer, " \t\r\n") < 0 {
			l.Result = answer // valid JSON without white space is compact
			return
		}
		var b bytes.Buffer
		if json.Compact(&b, answer) == nil {
			l.Result = b.Bytes()
			return
		}
	}
	if !utf8.Valid(answer) {
		l.Error = "the guest's output is neither JSON nor UTF-8 text (" + strconv.Itoa(len(answer)) + " bytes)"
		return
	}
	l.Result, _ = json.Marshal(string(answer))
}

// mayBeError reports whether the JSON answer could be an object with a
// member that decodes as "error" (encoding/json matches struct fields
// without regard to ASCII case): an object holding "error" in any case, or
// an escape. Most answers are not, and skip the two unmarshals.
func mayBeError(answer []byte) bool {
	if len(answer) == 0 || answer[0] != '{' {
		return false
	}
	if bytes.IndexByte(answer, '\\') >= 0 {
		return true
	}
	const word = "error"
	for i := 0; i+len(word) <= len(answer); i++ {
		j := 0
		for j < len(word) && answer[i+j]|0x20 == word[j] {
			j++
		}
		if j == len(word) {
			return true
		}
	}
	return false
}

// appendShardLine appends l as one line of JSON, as encoding/json's
// Encoder without HTML escaping writes a ShardLine; key is l.Key already
// encoded (jsonString), the same for every line of a shard. l.Result is
// compact JSON (setResult).
func appendShardLine(buf []byte, l *ShardLine, key []byte) []byte {
	buf = append(buf, `{"index":`...)
	buf = strconv.AppendInt(buf, l.Index, 10)
	buf = append(buf, `,"key":`...)
	buf = append(buf, key...)
	if l.Sample != "" {
		buf = append(buf, `,"sample":`...)
		buf = append(buf, jsonString(l.Sample)...)
	}
	if len(l.Result) > 0 {
		buf = append(buf, `,"result":`...)
		buf = append(buf, l.Result...)
	}
	if l.Error != "" {
		buf = append(buf, `,"error":`...)
		buf = append(buf, jsonString(l.Error)...)
	}
	return append(buf, "}\n"...)
}

// shardOutputSize is about the bytes appendShardLine writes for lines, the
// key encoded in keyLen bytes, so that the output is built in one
// allocation: exact but for escapes in samples and errors, which grow it.
func shardOutputSize(lines []ShardLine, keyLen int) int {
	const fixed = len(`{"index":,"key":,"sample":"","result":,"error":""}`) + 1 + 20 // names, the newline, the widest index
	n := 0
	for i := range lines {
		l := &lines[i]
		n += fixed + keyLen + len(l.Result) + len(l.Sample) + len(l.Error)
	}
	return n
}

// jsonString is s as a JSON string, without HTML escaping.
func jsonString(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func taskIDOf(ctx context.Context) string {
	id, _ := asynq.GetTaskID(ctx)
	return id
}

func outcomeOf(err error) string {
	if err == nil {
		return "ok"
	}
	var ge *sandbox.GuestError
	if errors.As(err, &ge) {
		return guestOutcome(ge.Kind)
	}
	return "error"
}

func resultBytes(res *sandbox.Result) int {
	if res == nil {
		return 0
	}
	return len(res.Stdout)
}
