package httpguard_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wasmjobs/wasmjobs/internal/httpguard"
)

func TestCheckBind(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr, token string
		insecure    bool
		refused     bool
	}{
		{"127.0.0.1:8080", "", false, false},
		{"localhost:8080", "", false, false},
		{"[::1]:8080", "", false, false},
		{":8080", "", false, true},
		{"0.0.0.0:8080", "", false, true},
		{"example.com:80", "", false, true},
		{":8080", "tok", false, false},
		{":8080", "", true, false},
	}
	for _, tt := range tests {
		err := httpguard.CheckBind(tt.addr, tt.token, tt.insecure)
		if got := errors.Is(err, httpguard.ErrInsecureBind); got != tt.refused {
			t.Errorf("CheckBind(%q, token %t, insecure %t) = %v, want refused %t", tt.addr, tt.token != "", tt.insecure, err, tt.refused)
		}
	}
}

func TestRequireToken(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	h := httpguard.RequireToken("secret", ok)
	for auth, want := range map[string]int{"": 401, "Bearer wrong": 401, "secret": 401, "Basic secret": 401, "Bearer secret": 200} {
		req := httptest.NewRequest("GET", "/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Authorization %q: %d, want %d", auth, rec.Code, want)
		}
		if want == 401 && (rec.Header().Get("WWW-Authenticate") == "" || !strings.Contains(rec.Body.String(), `"code":"unauthorized"`)) {
			t.Errorf("Authorization %q: 401 without the challenge or the JSON error: %v %s", auth, rec.Header(), rec.Body)
		}
	}
	rec := httptest.NewRecorder()
	httpguard.RequireToken("", ok).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Errorf("no token: %d, want everything through", rec.Code)
	}
}
