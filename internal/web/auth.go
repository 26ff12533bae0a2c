package web

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/httpguard"
)

const (
	sessionCookie = "wasmjobs_session"
	sessionTTL    = 12 * time.Hour
	// maxSessions bounds the session table; when it is full the session
	// closest to expiry makes room.
	maxSessions   = 10000
	maxLoginBytes = 4 << 10
)

// auth checks tokens in constant time and keeps the signed-in browsers'
// sessions: a cookie carries a random session id, never the token, and the
// server can revoke it (logout).
type auth struct {
	token    string
	sessions *sessions
}

func newAuth(token string) *auth {
	if token == "" {
		return nil
	}
	return &auth{token: token, sessions: newSessions(maxSessions, sessionTTL)}
}

func (a *auth) tokenOK(got string) bool {
	return httpguard.TokenOK(got, a.token)
}

func (a *auth) allowed(r *http.Request) bool {
	if r.Header.Get("Authorization") != "" {
		return httpguard.BearerOK(r, a.token)
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		return a.sessions.valid(c.Value)
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
		if strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/metrics" ||
			!strings.Contains(r.Header.Get("Accept"), "text/html") {
			httpguard.Unauthorized(w)
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

// safeNext keeps a post-login redirect on this site: a path starting with
// one slash, printable ASCII only (browsers drop tabs and newlines, which
// turns "/\t/evil.example" into "//evil.example"), no backslash (read as a
// slash), and no scheme, host or encoded leading slashes. Anything else
// goes to "/".
func safeNext(next string) string {
	if len(next) == 0 || len(next) > 2048 || next[0] != '/' {
		return "/"
	}
	for i := 0; i < len(next); i++ {
		if c := next[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" ||
		!strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") || strings.ContainsAny(u.Path, "\\\x00\t\r\n") {
		return "/"
	}
	return next
}

func (a *auth) login(w http.ResponseWriter, r *http.Request) {
	if a == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	// The body limit comes before anything parses the form.
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBytes)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "login form: "+http.StatusText(http.StatusRequestEntityTooLarge), http.StatusRequestEntityTooLarge)
		return
	}
	data := struct {
		Next   string
		Failed bool
	}{Next: safeNext(r.FormValue("next"))}
	if r.Method == http.MethodPost {
		if a.tokenOK(r.PostFormValue("token")) {
			id, err := a.sessions.create()
			if err != nil {
				http.Error(w, "cannot start a session", http.StatusInternalServerError)
				return
			}
			http.SetCookie(w, &http.Cookie{
				Name: sessionCookie, Value: id, Path: "/", HttpOnly: true, Secure: true,
				SameSite: http.SameSiteStrictMode, Expires: time.Now().Add(sessionTTL),
			})
			http.Redirect(w, r, data.Next, http.StatusSeeOther)
			return
		}
		data.Failed = true
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if data.Failed {
		w.WriteHeader(http.StatusUnauthorized)
	}
	_ = loginPage.Execute(w, data)
}

// logout revokes the session on the server, not only in the browser, so a
// copied cookie stops working too.
func (a *auth) logout(w http.ResponseWriter, r *http.Request) {
	if a != nil {
		if c, err := r.Cookie(sessionCookie); err == nil {
			a.sessions.revoke(c.Value)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
