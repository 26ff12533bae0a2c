package web

import (
	"errors"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/queue"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
)

var pages = template.Must(template.ParseFS(assets, "templates/*.html"))

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
	for it, err := range s.batches.BatchItems(ctx, st.ID) {
		if err != nil {
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
	}{pageData: pageData{Title: "Batch " + st.ID, Auth: s.auth != nil, ReadOnly: s.cfg.ReadOnly}, Batch: st,
		Finished: !st.Finished.IsZero(), Failures: failures, Outputs: outputs}
	if st.ManifestWritten {
		data.ManifestURL, _ = s.cfg.Store.PresignGet(ctx, st.Spec.OutputObject(s3url.ManifestName), presignFor)
		data.SummaryURL, _ = s.cfg.Store.PresignGet(ctx, st.Spec.OutputObject(s3url.SummaryName), presignFor)
	}
	s.render(w, http.StatusOK, "batch.html", data)
}
