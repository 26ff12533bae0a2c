package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const sessionCookie = "wasmjobs_session"

// auth checks tokens in constant time and mints session cookie values: the
// cookie carries an HMAC of the token, never the token itself.
type auth struct {
	token   []byte
	session string
}

func newAuth(token string) *auth {
	if token == "" {
		return nil
	}
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("wasmjobs web session v1"))
	return &auth{token: []byte(token), session: hex.EncodeToString(m.Sum(nil))}
}

func (a *auth) tokenOK(got string) bool {
	return subtle.ConstantTimeCompare([]byte(got), a.token) == 1
}

func (a *auth) allowed(r *http.Request) bool {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		return ok && a.tokenOK(tok)
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		return subtle.ConstantTimeCompare([]byte(c.Value), []byte(a.session)) == 1
	}
	return false
}

// require wraps next: unauthenticated API calls get 401 JSON, browsers are
// sent to the login page.
func (a *auth) require(next http.Handler) http.Handler {
	if a == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.allowed(r) {
			next.ServeHTTP(w, r)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/metrics" || r.URL.Path == "/readyz" ||
			!strings.Contains(r.Header.Get("Accept"), "text/html") {
			w.Header().Set("WWW-Authenticate", `Bearer realm="wasmjobs"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "a valid token is required (Authorization: Bearer <token>)")
			return
		}
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
	})
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>wasmjobs · sign in</title><link rel="stylesheet" href="/static/style.css"></head>
<body><main class="narrow"><h1>wasmjobs</h1>
{{if .Failed}}<p class="error">That token is not right.</p>{{end}}
<form method="post" action="/login"><input type="hidden" name="next" value="{{.Next}}">
<label>Token <input type="password" name="token" id="token" autofocus required></label>
<button type="submit" id="signin">Sign in</button></form></main></body></html>`))

func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return "/"
	}
	return next
}

func (a *auth) login(w http.ResponseWriter, r *http.Request) {
	if a == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	data := struct {
		Next   string
		Failed bool
	}{Next: safeNext(r.FormValue("next"))}
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
		if a.tokenOK(r.PostFormValue("token")) {
			http.SetCookie(w, &http.Cookie{
				Name: sessionCookie, Value: a.session, Path: "/", HttpOnly: true, Secure: true,
				SameSite: http.SameSiteStrictMode, Expires: time.Now().Add(12 * time.Hour),
			})
			http.Redirect(w, r, data.Next, http.StatusSeeOther)
			return
		}
		data.Failed = true
		w.WriteHeader(http.StatusUnauthorized)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = loginPage.Execute(w, data)
}

func (a *auth) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
