package web

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/queue"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
)

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	// recordsEnd is the index of a shard's last record.
	"recordsEnd": func(first, n int64) int64 { return first + n - 1 },
}).ParseFS(assets, "templates/*.html"))

// presignFor is how long links on batch pages stay valid.
const presignFor = time.Hour

type pageData struct {
	Title    string
	Auth     bool
	ReadOnly bool
	Error    string
}

func (s *Server) pageRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", s.batchesPage)
	mux.HandleFunc("POST /batches", s.writeGuard(s.startBatchForm))
	mux.HandleFunc("GET /batches/{id}", s.batchPage)
	mux.HandleFunc("POST /batches/{id}/cancel", s.writeGuard(s.cancelBatchForm))
	mux.HandleFunc("POST /batches/{id}/retry-failed", s.writeGuard(s.retryFailedForm))
	mux.HandleFunc("GET /jobs", s.findJob)
	mux.HandleFunc("GET /jobs/{queue}/{id}", s.jobPage)
}

// findJob is the batches page's job lookup: on to the job's page.
func (s *Server) findJob(w http.ResponseWriter, r *http.Request) {
	q, id := r.URL.Query().Get("queue"), r.URL.Query().Get("id")
	if q == "" {
		q = "default"
	}
	if id == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/jobs/"+url.PathEscape(q)+"/"+url.PathEscape(id), http.StatusSeeOther)
}

// maxPageResult bounds the result a job's page shows.
const maxPageResult = 64 << 10

// jobPage shows one job: its state, last failure, result and log.
func (s *Server) jobPage(w http.ResponseWriter, r *http.Request) {
	v, err := s.task(r.Context(), r.PathValue("queue"), r.PathValue("id"))
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound):
		http.Error(w, "no such job (never enqueued, or its retention ran out)", http.StatusNotFound)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	if len(v.Result) > maxPageResult {
		v.Result = append(v.Result[:maxPageResult:maxPageResult], "…"...)
	}
	if len(v.ResultText) > maxPageResult {
		v.ResultText = v.ResultText[:maxPageResult] + "…"
	}
	s.render(w, http.StatusOK, "job.html", struct {
		pageData
		Job *TaskView
	}{pageData{Title: "Job " + v.ID, Auth: s.auth != nil, ReadOnly: s.cfg.ReadOnly}, v})
}

// cancelBatchForm is the batch page's Cancel button: the API's cancel,
// then back to the page with what it did.
func (s *Server) cancelBatchForm(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	n, _, err := batch.Cancel(r.Context(), s.batches, s.cfg.Store, id, batch.Access{})
	s.backToBatch(w, r, id, fmt.Sprintf("Canceled: %d pending jobs removed; running ones finish.", n), err)
}

// retryFailedForm is the batch page's Retry failed button.
func (s *Server) retryFailedForm(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	n, err := s.batches.RetryFailed(r.Context(), id)
	s.backToBatch(w, r, id, fmt.Sprintf("%d failed jobs queued again.", n), err)
}

// backToBatch sends the browser back to the batch's page with a note (the
// error's, if any).
func (s *Server) backToBatch(w http.ResponseWriter, r *http.Request, id, note string, err error) {
	if err != nil {
		note = "Failed: " + err.Error()
	}
	http.Redirect(w, r, "/batches/"+url.PathEscape(id)+"?note="+url.QueryEscape(note), http.StatusSeeOther)
}

func (s *Server) render(w http.ResponseWriter, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, data); err != nil {
		s.cfg.Logger.Error("render page", "page", name, "err", err)
	}
}

func (s *Server) batchesPage(w http.ResponseWriter, r *http.Request) {
	s.renderBatches(w, r, http.StatusOK, "")
}

func (s *Server) renderBatches(w http.ResponseWriter, r *http.Request, status int, msg string) {
	all, err := s.batches.ListBatches(r.Context(), 100)
	if err != nil {
		msg, status = "Redis is not reachable: "+err.Error(), http.StatusServiceUnavailable
	}
	s.render(w, status, "batches.html", struct {
		pageData
		Batches []*batch.Status
	}{pageData{Title: "Batches", Auth: s.auth != nil, ReadOnly: s.cfg.ReadOnly, Error: msg}, all})
}

func (s *Server) startBatchForm(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	spec := batch.Spec{
		Input: r.PostFormValue("input"), Guest: r.PostFormValue("guest"), Type: r.PostFormValue("type"),
		Output: r.PostFormValue("output"), Include: r.PostFormValue("include"),
	}
	if f := r.PostFormValue("records"); f != "" {
		spec.Records = &batch.RecordsSpec{Format: f, Merge: r.PostFormValue("merge") != ""}
		// One box: the JSON lines field, the CSV column or the tar member.
		switch sel := r.PostFormValue("select"); f {
		case "jsonl":
			spec.Records.Field = sel
		case "csv":
			spec.Records.Column = sel
		case "tar":
			spec.Records.Member = sel
		}
	}
	st, err := s.batches.StartBatch(r.Context(), spec)
	if err != nil {
		status := http.StatusServiceUnavailable
		if errors.Is(err, queue.ErrInvalidPayload) {
			status = http.StatusBadRequest
		}
		s.renderBatches(w, r, status, err.Error())
		return
	}
	http.Redirect(w, r, "/batches/"+st.ID, http.StatusSeeOther)
}

// pageScan is how many of a batch's items its page reads for the failures
// and outputs it lists.
const pageScan = 20000

// truncateNote bounds the note a page shows (it comes from the URL; the
// template escapes it).
func truncateNote(s string) string {
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

type outputLink struct {
	batch.Item
	URL string
}

func (s *Server) batchPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	st, err := s.batches.BatchStatus(ctx, r.PathValue("id"))
	if err != nil {
		status := http.StatusServiceUnavailable
		if errors.Is(err, batch.ErrNotFound) {
			status = http.StatusNotFound
		}
		http.Error(w, err.Error(), status)
		return
	}
	limit := 50
	if n, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && n > 0 && n <= 1000 {
		limit = n
	}
	var failures []batch.Item
	var outputs []outputLink
	scanned, partial := 0, false
	for it, err := range s.batches.BatchItems(ctx, st.ID) {
		if err != nil {
			break
		}
		// A view reads at most pageScan items: a batch of millions would
		// otherwise be read whole for a page of a few dozen rows.
		if scanned++; scanned > pageScan {
			partial = true
			break
		}
		switch {
		case it.Status == batch.ItemFailed && len(failures) < limit:
			failures = append(failures, it)
		case it.Status == batch.ItemDone && len(outputs) < limit:
			link := outputLink{Item: it}
			if u, err := s3url.ParseObjectURL(it.Output); err == nil {
				link.URL, _ = s.cfg.Store.PresignGet(ctx, u, presignFor)
			}
			outputs = append(outputs, link)
		}
		if len(failures) >= limit && len(outputs) >= limit {
			break
		}
	}
	data := struct {
		pageData
		Batch                   *batch.Status
		Finished                bool
		Failures                []batch.Item
		Outputs                 []outputLink
		ManifestURL, SummaryURL string
		MergedURL               string
		Note                    string
		Partial                 bool
		Scanned                 int
	}{pageData: pageData{Title: "Batch " + st.ID, Auth: s.auth != nil, ReadOnly: s.cfg.ReadOnly}, Batch: st,
		Finished: !st.Finished.IsZero(), Failures: failures, Outputs: outputs, Note: truncateNote(r.URL.Query().Get("note")), Partial: partial, Scanned: pageScan}
	if st.ManifestWritten {
		data.ManifestURL, _ = s.cfg.Store.PresignGet(ctx, st.Spec.OutputObject(s3url.ManifestName), presignFor)
		data.SummaryURL, _ = s.cfg.Store.PresignGet(ctx, st.Spec.OutputObject(s3url.SummaryName), presignFor)
		if st.Spec.Records != nil && st.Spec.Records.Merge {
			data.MergedURL, _ = s.cfg.Store.PresignGet(ctx, st.Spec.OutputObject(batch.MergedName), presignFor)
		}
	}
	s.render(w, http.StatusOK, "batch.html", data)
}
