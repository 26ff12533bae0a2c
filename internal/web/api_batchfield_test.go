package web_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/wasmjobs/wasmjobs/internal/web"
)

// TestJobsAPIRefusesBatchField: callers of POST /api/v1/jobs cannot make a
// job that reports to a batch.
func TestJobsAPIRefusesBatchField(t *testing.T) {
	e := newEnv(t, web.Config{Token: token})
	code, body, _ := e.do(t, "POST", "/api/v1/jobs", token, `{"type":"text","job":{"guest":"hello","data":"QWRh","batch":"b-0123456789abcdef"}}`)
	if code != http.StatusBadRequest || errorCode(t, body) != "invalid_payload" || !strings.Contains(body, "/api/v1/batches") {
		t.Fatalf("POST job with batch: %d %s", code, body)
	}
}
