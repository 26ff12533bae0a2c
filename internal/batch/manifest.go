package batch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/s3url"
	"github.com/wasmjobs/wasmjobs/internal/worker"
	"github.com/wasmjobs/wasmjobs/jobs"
)

// ManifestWriter is the part of blob.Store manifests are written with.
type ManifestWriter interface {
	PutStream(ctx context.Context, u jobs.ObjectURL, r io.Reader, contentType string) error
}

// ManifestLine is one line of _manifest.jsonl.
type ManifestLine struct {
	Key        string `json:"key"`
	Status     string `json:"status"`
	Output     string `json:"output,omitempty"`
	Error      string `json:"error,omitempty"`
	DurationMS int64  `json:"duration_ms,omitempty"`
}

// WriteManifest writes <output>/_manifest.jsonl (one line per input
// object) and <output>/_summary.json (the batch record), streaming the
// items so that memory stays flat. An output access refuses is not
// written to; the error wraps s3url.ErrAccessDenied.
func WriteManifest(ctx context.Context, c *jobs.Client, w ManifestWriter, id string, access Access) error {
	st, err := c.BatchStatus(ctx, id)
	if err != nil {
		return err
	}
	if err := access.checkOutputPrefix(st.Spec); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		bw := bufio.NewWriterSize(pw, 64<<10)
		enc := json.NewEncoder(bw)
		for it, err := range c.BatchItems(ctx, id) {
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			line := ManifestLine{Key: it.Key, Status: it.Status, Output: it.Output, Error: it.Error, DurationMS: it.DurationMS}
			if it.Status != jobs.ItemDone {
				line.Output = ""
			}
			if err := enc.Encode(line); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.CloseWithError(bw.Flush())
	}()
	if err := w.PutStream(ctx, st.Spec.OutputObject(jobs.ManifestName), pr, "application/x-ndjson"); err != nil {
		pr.CloseWithError(err)
		return fmt.Errorf("batch %s: manifest: %w", id, err)
	}
	sum, _ := json.MarshalIndent(st, "", "  ")
	if err := w.PutStream(ctx, st.Spec.OutputObject(jobs.SummaryName), bytes.NewReader(sum), "application/json"); err != nil {
		return fmt.Errorf("batch %s: summary: %w", id, err)
	}
	return c.SetBatchManifestWritten(ctx, id)
}

// Recorder implements worker.BatchRecorder on Redis, writing the manifest
// when the last item of a batch finishes.
type Recorder struct {
	Client *jobs.Client
	Store  ManifestWriter
	Logger *slog.Logger
	// Access is what the manifest may be written to (the worker's output
	// allow-list). The zero value allows every bucket but the default
	// guest registry's.
	Access Access
}

var _ worker.BatchRecorder = (*Recorder)(nil)

// Canceled reports whether the batch was canceled.
func (r *Recorder) Canceled(ctx context.Context, batchID string) (bool, error) {
	return r.Client.BatchCancelRequested(ctx, batchID)
}

// Finished records the outcome and writes the manifest if it was the last.
func (r *Recorder) Finished(ctx context.Context, batchID string, o worker.BatchOutcome) error {
	finished, err := r.Client.FinishBatchItem(ctx, batchID, jobs.BatchItem{
		Key: o.Key, Status: o.Status, TaskID: o.TaskID, Output: o.Output, Error: o.Error,
		DurationMS: o.Duration.Milliseconds(),
	})
	if err != nil {
		return err
	}
	if !finished {
		// A repeated report (the job retried after a failed manifest write)
		// must still get the manifest written.
		st, err := r.Client.BatchStatus(ctx, batchID)
		if err != nil || st.Finished.IsZero() || st.ManifestWritten {
			return err
		}
	}
	return r.batchEnded(ctx, batchID)
}

// EnsureManifest writes the manifest of a finished batch unless it was
// written already.
func EnsureManifest(ctx context.Context, c *jobs.Client, w ManifestWriter, id string, access Access) error {
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
