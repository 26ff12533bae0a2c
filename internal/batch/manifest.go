package batch

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/blob"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
)

// ManifestWriter is the part of blob.Store manifests are written with.
type ManifestWriter interface {
	PutStream(ctx context.Context, u s3url.ObjectURL, r io.Reader, contentType string) error
}

// WriteManifest writes <output>/_manifest.jsonl (one line per input
// object) and <output>/_summary.json (the batch record), streaming the
// items so that memory stays flat. An output access refuses is not
// written to; the error wraps s3url.ErrAccessDenied.
func WriteManifest(ctx context.Context, c *Client, w ManifestWriter, id string, access Access) error {
	st, err := c.BatchStatus(ctx, id)
	if err != nil {
		return err
	}
	if err := access.checkOutputPrefix(st.Spec); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	merge := st.Spec.Records != nil && st.Spec.Records.Merge
	var shards []Item // for the merge, filled before pw closes
	go func() {
		bw := bufio.NewWriterSize(pw, 64<<10)
		enc := json.NewEncoder(bw)
		for it, err := range c.BatchItems(ctx, id) {
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			// A manifest line is an Item without the job's id and the
			// input's size; a shard's line has its object and records.
			line := Item{Key: it.Key, Status: it.Status, Output: it.Output, Error: it.Error, DurationMS: it.DurationMS,
				Object: it.Object, Start: it.Start, End: it.End, First: it.First, Records: it.Records, RecordErrors: it.RecordErrors, Log: it.Log}
			if it.Status != ItemDone {
				line.Output = ""
			}
			if merge && it.Records > 0 {
				shards = append(shards, line)
			}
			if err := enc.Encode(line); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.CloseWithError(bw.Flush())
	}()
	if err := w.PutStream(ctx, st.Spec.OutputObject(s3url.ManifestName), pr, "application/x-ndjson"); err != nil {
		pr.CloseWithError(err)
		return fmt.Errorf("batch %s: manifest: %w", id, err)
	}
	if merge {
		if err := mergeShards(ctx, w, st, shards); err != nil {
			return fmt.Errorf("batch %s: merge: %w", id, err)
		}
	}
	sum, _ := json.MarshalIndent(st, "", "  ")
	if err := w.PutStream(ctx, st.Spec.OutputObject(s3url.SummaryName), bytes.NewReader(sum), "application/json"); err != nil {
		return fmt.Errorf("batch %s: summary: %w", id, err)
	}
	return c.SetBatchManifestWritten(ctx, id)
}

// Composer joins objects on the server; blob.Store is one.
type Composer interface {
	Compose(ctx context.Context, dst s3url.ObjectURL, srcs []s3url.ObjectURL) error
	Stat(ctx context.Context, u s3url.ObjectURL) (blob.ObjectInfo, error)
	OpenReader(ctx context.Context, u s3url.ObjectURL) (io.ReadCloser, error)
}

// mergeShards joins the outputs of a record batch's shards, in record
// order, into MergedName. When every shard is done and S3 allows it (every
// output but the last at least 5 MiB), the server composes them and
// nothing is downloaded; otherwise the outputs are streamed through, and
// a shard that did not finish gets one error line per record, so that
// every record of the batch has its line.
func mergeShards(ctx context.Context, w ManifestWriter, st *Status, shards []Item) error {
	cw, ok := w.(Composer)
	if !ok {
		return errors.New("the store cannot read the shard outputs")
	}
	slices.SortFunc(shards, func(a, b Item) int { return cmp.Compare(a.First, b.First) })
	dst := st.Spec.OutputObject(MergedName)
	var srcs []s3url.ObjectURL
	var sizes []int64
	whole := true
	for _, sh := range shards {
		if sh.Status != ItemDone {
			whole = false
			break
		}
		u, err := s3url.ParseObjectURL(sh.Output)
		if err != nil {
			return err
		}
		info, err := cw.Stat(ctx, u)
		if err != nil {
			return err
		}
		srcs, sizes = append(srcs, u), append(sizes, info.Size)
	}
	if whole && blob.CanCompose(sizes) {
		return cw.Compose(ctx, dst, srcs)
	}
	pr, pw := io.Pipe()
	go func() {
		bw := bufio.NewWriterSize(pw, 64<<10)
		for _, sh := range shards {
			if sh.Status == ItemDone {
				u, err := s3url.ParseObjectURL(sh.Output)
				if err != nil {
					pw.CloseWithError(err)
					return
				}
				rc, err := cw.OpenReader(ctx, u)
				if err != nil {
					pw.CloseWithError(err)
					return
				}
				_, err = io.Copy(bw, rc)
				rc.Close()
				if err != nil {
					pw.CloseWithError(err)
					return
				}
				continue
			}
			reason := "the shard " + sh.Status
			if sh.Error != "" {
				reason += ": " + sh.Error
			}
			line, _ := json.Marshal(map[string]any{"key": sh.Object, "error": reason})
			for i := range sh.Records {
				fmt.Fprintf(bw, `{"index":%d,%s`+"\n", sh.First+i, line[1:])
			}
		}
		pw.CloseWithError(bw.Flush())
	}()
	if err := w.PutStream(ctx, dst, pr, "application/x-ndjson"); err != nil {
		pr.CloseWithError(err)
		return err
	}
	return nil
}

// Recorder implements the worker's batch recorder on Redis, writing the manifest
// when the last item of a batch finishes.
type Recorder struct {
	Client *Client
	Store  ManifestWriter
	Logger *slog.Logger
	// Access is what the manifest may be written to (the worker's output
	// allow-list). The zero value allows every bucket but the default
	// guest registry's.
	Access Access
	// ManifestGrace is how long Reconcile leaves a finished batch's
	// manifest to the worker writing it before writing it itself
	// (default 30 s).
	ManifestGrace time.Duration
	// AuditInterval is how long a running batch must go without an item
	// ending before Reconcile checks that its pending items' jobs still
	// exist (default 5 minutes).
	AuditInterval time.Duration

	auditMu   sync.Mutex
	lastAudit time.Time
}

// Canceled reports whether the batch was canceled.
func (r *Recorder) Canceled(ctx context.Context, batchID string) (bool, error) {
	return r.Client.BatchCancelRequested(ctx, batchID)
}

// Finished records the outcome and writes the manifest if it was the last.
func (r *Recorder) Finished(ctx context.Context, batchID string, it Item) error {
	n, err := r.finish(ctx, batchID, it)
	switch {
	case err != nil || n == itemRecorded:
		return err
	case n != itemFinishedBatch:
		// A repeated report (the job retried after a failed manifest write),
		// or one in a batch that ended without it, must still get the
		// manifest written.
		st, err := r.Client.BatchStatus(ctx, batchID)
		if err != nil || st.Finished.IsZero() || st.ManifestWritten {
			return err
		}
	}
	return r.batchEnded(ctx, batchID)
}

// unknownItemWait bounds how long finish waits for the planner to record
// an item.
const unknownItemWait = time.Second

// finish records the outcome, waiting for an item the batch has no record
// of yet: the planner records a chunk's items just after enqueueing their
// jobs, so a quick job can report first. Without the wait its job would
// fail and come back only after asynq's retry delay (15 s or more),
// holding up the end of the batch.
func (r *Recorder) finish(ctx context.Context, batchID string, it Item) (int64, error) {
	var waited time.Duration
	for delay := 5 * time.Millisecond; ; delay *= 2 {
		n, err := r.Client.finishItem(ctx, batchID, it)
		if !errors.Is(err, ErrBatchItemUnknown) || waited >= unknownItemWait {
			return n, err
		}
		select {
		case <-ctx.Done():
			return n, err
		case <-time.After(delay):
			waited += delay
		}
	}
}

// Cancel cancels batch id (Client.CancelBatch) and, when that finished it,
// writes its manifest. It returns how many pending jobs it canceled and
// whether the batch finished.
func Cancel(ctx context.Context, c *Client, w ManifestWriter, id string, access Access) (int, bool, error) {
	n, finished, err := c.CancelBatch(ctx, id)
	if err == nil && finished {
		err = EnsureManifest(ctx, c, w, id, access)
	}
	return n, finished, err
}

// EnsureManifest writes the manifest of a finished batch unless it was
// written already.
func EnsureManifest(ctx context.Context, c *Client, w ManifestWriter, id string, access Access) error {
	st, err := c.BatchStatus(ctx, id)
	if err != nil || st.Finished.IsZero() || st.ManifestWritten {
		return err
	}
	return WriteManifest(ctx, c, w, id, access)
}

func (r *Recorder) batchEnded(ctx context.Context, batchID string) error {
	start := time.Now()
	err := WriteManifest(ctx, r.Client, r.Store, batchID, r.Access)
	if errors.Is(err, s3url.ErrAccessDenied) {
		// Retrying the job would not change the allow-list: the batch
		// keeps the reason and stays without a manifest.
		if r.Logger != nil {
			r.Logger.Warn("batch finished; manifest not written", "batch", batchID, "err", err)
		}
		return r.Client.SetBatchError(ctx, batchID, "manifest not written: "+err.Error())
	}
	if err != nil {
		return err
	}
	if r.Logger != nil {
		r.Logger.Info("batch finished; manifest written", "batch", batchID, "took", time.Since(start))
	}
	return nil
}
