package web

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/hibiken/asynq"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/queue"
)

// Stable error codes of the API.
const (
	codeInvalidJSON     = "invalid_json"
	codeInvalidPayload  = "invalid_payload"
	codeTaskIDConflict  = "task_id_conflict"
	codeDuplicateTask   = "duplicate_task"
	codeNotFound        = "not_found"
	codeReadOnly        = "read_only"
	codeUnavailable     = "unavailable"
	codeMediaType       = "unsupported_media_type"
	maxRequestBodyBytes = 256 << 10
)

// JobRequest is the body of POST /api/v1/jobs.
type JobRequest struct {
	// Type is "image" or "text".
	Type    string        `json:"type"`
	Job     queue.Payload `json:"job"`
	Options JobOptions    `json:"options"`
}

// JobOptions are the enqueue options of JobRequest; durations in seconds.
type JobOptions struct {
	Queue            string `json:"queue,omitempty"`
	MaxRetry         *int   `json:"max_retry,omitempty"`
	TimeoutSeconds   int64  `json:"timeout_seconds,omitempty"`
	ProcessInSeconds int64  `json:"process_in_seconds,omitempty"`
	RetentionSeconds int64  `json:"retention_seconds,omitempty"`
	UniqueSeconds    int64  `json:"unique_seconds,omitempty"`
	TaskID           string `json:"task_id,omitempty"`
}

func (o JobOptions) asynq() ([]asynq.Option, error) {
	var opts []asynq.Option
	if o.Queue != "" {
		opts = append(opts, asynq.Queue(o.Queue))
	}
	if o.MaxRetry != nil {
		if *o.MaxRetry < 0 {
			return nil, errors.New("max_retry must not be negative")
		}
		opts = append(opts, asynq.MaxRetry(*o.MaxRetry))
	}
	for name, v := range map[string]int64{"timeout_seconds": o.TimeoutSeconds, "process_in_seconds": o.ProcessInSeconds,
		"retention_seconds": o.RetentionSeconds, "unique_seconds": o.UniqueSeconds} {
		if v < 0 || v > 365*24*3600 {
			return nil, fmt.Errorf("%s must be between 0 and one year", name)
		}
	}
	sec := func(n int64) time.Duration { return time.Duration(n) * time.Second }
	if o.TimeoutSeconds > 0 {
		opts = append(opts, asynq.Timeout(sec(o.TimeoutSeconds)))
	}
	if o.ProcessInSeconds > 0 {
		opts = append(opts, asynq.ProcessIn(sec(o.ProcessInSeconds)))
	}
	if o.RetentionSeconds > 0 {
		opts = append(opts, asynq.Retention(sec(o.RetentionSeconds)))
	}
	if o.UniqueSeconds > 0 {
		opts = append(opts, asynq.Unique(sec(o.UniqueSeconds)))
	}
	if o.TaskID != "" {
		if len(o.TaskID) > 128 {
			return nil, errors.New("task_id longer than 128 bytes")
		}
		opts = append(opts, asynq.TaskID(o.TaskID))
	}
	return opts, nil
}

// TaskView is the API's view of a task.
type TaskView struct {
	ID        string          `json:"id"`
	Queue     string          `json:"queue"`
	Type      string          `json:"type"`
	State     string          `json:"state"`
	MaxRetry  int             `json:"max_retry"`
	Retried   int             `json:"retried"`
	LastError string          `json:"last_error,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	// ResultText holds a result that is not JSON (as text when UTF-8).
	ResultText string `json:"result_text,omitempty"`
	// Log is what the guest of a completed job wrote to stderr (its tail).
	Log string `json:"log,omitempty"`
}

// apiRoute is one route of the API; openapi.json documents each.
type apiRoute struct {
	method, path string
	// write routes are refused by a read-only server.
	write   bool
	handler func(*Server) http.HandlerFunc
}

var apiRouteTable = []apiRoute{
	{"POST", "/api/v1/jobs", true, func(s *Server) http.HandlerFunc { return s.postJob }},
	{"POST", "/api/v1/batches", true, func(s *Server) http.HandlerFunc { return s.postBatch }},
	{"GET", "/api/v1/batches", false, func(s *Server) http.HandlerFunc { return s.listBatches }},
	{"GET", "/api/v1/batches/{id}", false, func(s *Server) http.HandlerFunc { return s.getBatch }},
	{"GET", "/api/v1/batches/{id}/failures", false, func(s *Server) http.HandlerFunc { return s.getBatchFailures }},
	{"POST", "/api/v1/batches/{id}/cancel", true, func(s *Server) http.HandlerFunc { return s.cancelBatch }},
	{"POST", "/api/v1/batches/{id}/retry-failed", true, func(s *Server) http.HandlerFunc { return s.retryFailed }},
	{"GET", "/api/v1/tasks/{queue}/{id}", false, func(s *Server) http.HandlerFunc { return s.getTask }},
	{"GET", "/api/v1/openapi.json", false, func(s *Server) http.HandlerFunc { return serveOpenAPI }},
}

func (s *Server) apiRoutes(mux *http.ServeMux) {
	for _, rt := range apiRouteTable {
		h := rt.handler(s)
		if rt.write {
			h = s.writeGuard(h)
		}
		mux.HandleFunc(rt.method+" "+rt.path, h)
	}
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, codeNotFound, "no such API route: "+r.Method+" "+r.URL.Path)
	})
}

//go:embed openapi.json
var openAPIDoc []byte

// serveOpenAPI serves the API's OpenAPI 3 document.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPIDoc)
}

// cancelBatch stops a batch: no further jobs are planned, its pending jobs
// are deleted and their items canceled; running ones finish. A batch this
// ends gets its manifest.
func (s *Server) cancelBatch(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	n, finished, err := batch.Cancel(r.Context(), s.batches, s.cfg.Store, id, batch.Access{})
	if s.batchError(w, err) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "canceled": n, "finished": finished})
}

// retryFailed runs a batch's failed items again.
func (s *Server) retryFailed(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	n, err := s.batches.RetryFailed(r.Context(), id)
	if s.batchError(w, err) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "retried": n})
}

// batchError answers err (not found, or Redis away) and reports whether
// there was one.
func (s *Server) batchError(w http.ResponseWriter, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, batch.ErrNotFound):
		writeError(w, http.StatusNotFound, codeNotFound, err.Error())
	default:
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, err.Error())
	}
	return true
}

func (s *Server) writeGuard(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.ReadOnly {
			writeError(w, http.StatusForbidden, codeReadOnly, "this server is read-only")
			return
		}
		h(w, r)
	}
}

// decodeBody reads a JSON request body. It insists on Content-Type
// application/json: a page elsewhere can send a text/plain form body to us
// without the browser asking first (no CORS preflight), so JSON in any other
// media type is refused before it is read.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, codeMediaType, "request body: want Content-Type: application/json")
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBodyBytes)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, codeInvalidJSON, "request body: "+err.Error())
		return false
	}
	return true
}

func (s *Server) postJob(w http.ResponseWriter, r *http.Request) {
	var req JobRequest
	if !decodeBody(w, r, &req) {
		return
	}
	typ, ok := queue.TaskType(req.Type)
	if !ok {
		writeError(w, http.StatusBadRequest, codeInvalidPayload, fmt.Sprintf("type %q: want image or text", req.Type))
		return
	}
	if req.Job.Batch != "" {
		// Only a batch's planner makes its jobs; POST /api/v1/batches.
		writeError(w, http.StatusBadRequest, codeInvalidPayload, `job field "batch" is set only by a batch's planner; start a batch with POST /api/v1/batches`)
		return
	}
	opts, err := req.Options.asynq()
	if err != nil {
		writeError(w, http.StatusBadRequest, codeInvalidPayload, "options: "+err.Error())
		return
	}
	info, err := s.queue.Enqueue(r.Context(), typ, req.Job, opts...)
	switch {
	case errors.Is(err, queue.ErrInvalidPayload):
		writeError(w, http.StatusBadRequest, codeInvalidPayload, err.Error())
	case errors.Is(err, asynq.ErrTaskIDConflict):
		writeError(w, http.StatusConflict, codeTaskIDConflict, err.Error())
	case errors.Is(err, asynq.ErrDuplicateTask):
		writeError(w, http.StatusConflict, codeDuplicateTask, err.Error())
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, err.Error())
	default:
		writeJSON(w, http.StatusCreated, map[string]string{"id": info.ID, "queue": info.Queue, "state": info.State.String()})
	}
}

func (s *Server) postBatch(w http.ResponseWriter, r *http.Request) {
	var spec batch.Spec
	if !decodeBody(w, r, &spec) {
		return
	}
	st, err := s.batches.StartBatch(r.Context(), spec)
	switch {
	case errors.Is(err, queue.ErrInvalidPayload):
		writeError(w, http.StatusBadRequest, codeInvalidPayload, err.Error())
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, err.Error())
	default:
		writeJSON(w, http.StatusAccepted, st)
	}
}

func (s *Server) listBatches(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	all, err := s.batches.ListBatches(r.Context(), min(max(limit, 0), 500))
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"batches": all})
}

func (s *Server) getBatch(w http.ResponseWriter, r *http.Request) {
	st, err := s.batches.BatchStatus(r.Context(), r.PathValue("id"))
	if !s.batchError(w, err) {
		writeJSON(w, http.StatusOK, st)
	}
}

// batchFailures returns up to limit failed items of a batch.
func (s *Server) batchFailures(r *http.Request, id string, limit int) ([]batch.Item, error) {
	var out []batch.Item
	for it, err := range s.batches.BatchItems(r.Context(), id) {
		if err != nil {
			return nil, err
		}
		if it.Status == batch.ItemFailed {
			out = append(out, it)
			if len(out) >= limit {
				break
			}
		}
	}
	return out, nil
}

func (s *Server) getBatchFailures(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := s.batches.BatchStatus(r.Context(), id); err != nil {
		writeError(w, http.StatusNotFound, codeNotFound, err.Error())
		return
	}
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	items, err := s.batchFailures(r, id, limit)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, err.Error())
		return
	}
	if items == nil {
		items = []batch.Item{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"failures": items})
}

func (s *Server) getTask(w http.ResponseWriter, r *http.Request) {
	v, err := s.task(r.Context(), r.PathValue("queue"), r.PathValue("id"))
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound):
		writeError(w, http.StatusNotFound, codeNotFound, "no such task")
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, err.Error())
	default:
		writeJSON(w, http.StatusOK, v)
	}
}

// task reads a task's view; asynq.ErrTaskNotFound when there is none.
func (s *Server) task(ctx context.Context, q, id string) (*TaskView, error) {
	info, err := s.insp.GetTaskInfo(q, id)
	if errors.Is(err, asynq.ErrQueueNotFound) {
		err = asynq.ErrTaskNotFound
	}
	if err != nil {
		return nil, err
	}
	v := &TaskView{ID: info.ID, Queue: info.Queue, Type: info.Type, State: info.State.String(),
		MaxRetry: info.MaxRetry, Retried: info.Retried, LastError: info.LastErr}
	if len(info.Result) > 0 {
		if json.Valid(info.Result) {
			v.Result = info.Result
		} else if utf8.Valid(info.Result) {
			v.ResultText = string(info.Result)
		}
	}
	if info.State == asynq.TaskStateCompleted {
		if v.Log, err = queue.JobLog(ctx, s.queue.Redis(), q, id); err != nil {
			return nil, err
		}
	}
	return v, nil
}
