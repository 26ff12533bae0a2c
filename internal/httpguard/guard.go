package httpguard

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// maxAnyBodyBytes bounds every request body, asynqmon's included; handlers
// that parse a body set a tighter limit of their own.
const maxAnyBodyBytes = 1 << 20

// Config says which requests an endpoint accepts before auth.
type Config struct {
	// Addr is the listen address; its host name (when it is one) is allowed
	// as a Host, and a loopback or wildcard bind allows the loopback names.
	Addr string
	// AllowedHosts are further host names (no port) browsers may use to reach
	// the server, e.g. the public name a reverse proxy forwards. "*" allows
	// any. Origins https://NAME and http://NAME are trusted for writes.
	AllowedHosts []string
	// Token is the server's token. With a token and no AllowedHosts any Host
	// is accepted (the token, not the name, protects the server); without a
	// token only the names above and IP literals are.
	Token string
}

// Wrap wraps h with the checks every wasmjobs endpoint applies before auth:
//   - the Host header must name this server (DNS rebinding turns any web page
//     into a reader of an unauthenticated server otherwise);
//   - a state-changing request (any method but GET, HEAD, OPTIONS) from a
//     browser must come from the same origin (Sec-Fetch-Site, else Origin),
//     so no other page the operator visits can post jobs or press asynqmon's
//     buttons;
//   - no request body is larger than 1 MiB.
//
// /healthz is exempt from the Host check, so that probes can use any name.
func Wrap(cfg Config, h http.Handler) http.Handler {
	hosts := newHostPolicy(cfg)
	cop := http.NewCrossOriginProtection()
	for _, name := range cfg.AllowedHosts {
		if name != "*" {
			_ = cop.AddTrustedOrigin("https://" + name)
			_ = cop.AddTrustedOrigin("http://" + name)
		}
	}
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, http.StatusForbidden, "cross_origin", "cross-origin "+r.Method+" refused: this server only accepts writes from its own pages or from non-browser clients")
	}))
	inner := cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxAnyBodyBytes)
		}
		h.ServeHTTP(w, r)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" && !hosts.allows(r.Host) {
			WriteError(w, http.StatusMisdirectedRequest, "host_not_allowed",
				"host "+quoteHost(r.Host)+" is not one this server answers to; add it with --allowed-hosts")
			return
		}
		inner.ServeHTTP(w, r)
	})
}

type hostPolicy struct {
	any      bool
	names    map[string]bool
	loopback bool
}

func newHostPolicy(cfg Config) *hostPolicy {
	p := &hostPolicy{names: map[string]bool{}, any: cfg.Token != "" && len(cfg.AllowedHosts) == 0}
	for _, name := range cfg.AllowedHosts {
		if name == "*" {
			p.any = true
		}
		p.names[normalizeHost(name)] = true
	}
	bind, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		bind = cfg.Addr
	}
	bind = normalizeHost(bind)
	ip := net.ParseIP(bind)
	switch {
	case bind == "" || ip != nil && ip.IsUnspecified():
		p.loopback = true // a wildcard bind includes loopback
	case ip != nil:
		p.loopback = ip.IsLoopback()
	case isLoopbackName(bind):
		p.loopback = true
	default:
		p.names[bind] = true
	}
	return p
}

// allows reports whether a request's Host names this server. IP literals
// are always accepted: DNS rebinding needs a name.
func (p *hostPolicy) allows(hostport string) bool {
	if p.any {
		return true
	}
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	host = normalizeHost(host)
	if host == "" || net.ParseIP(host) != nil {
		return true
	}
	return p.names[host] || p.loopback && isLoopbackName(host)
}

func normalizeHost(h string) string {
	h = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(h, "]"), "["), ".")
	return strings.ToLower(h)
}

// isLoopbackName: browsers resolve localhost and *.localhost to loopback
// themselves, so these names cannot be rebound.
func isLoopbackName(h string) bool {
	return h == "localhost" || strings.HasSuffix(h, ".localhost")
}

func quoteHost(h string) string {
	if len(h) > 100 {
		h = h[:100]
	}
	return `"` + strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' {
			return '?'
		}
		return r
	}, h) + `"`
}

// Timeouts bound how long a client may hold a connection. Zero fields take
// the defaults.
type Timeouts struct {
	// ReadHeader defaults to 10 s.
	ReadHeader time.Duration
	// Read, the whole request with its body, defaults to 1 min.
	Read time.Duration
	// Write, from the end of the request headers to the end of the response,
	// defaults to 5 min: no route streams (the pages and asynqmon poll), and
	// a slow asynqmon listing of a big queue still fits.
	Write time.Duration
	// Idle, a keep-alive connection between requests, defaults to 2 min.
	Idle time.Duration
}

func (t Timeouts) withDefaults() Timeouts {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.ReadHeader, 10*time.Second)
	def(&t.Read, time.Minute)
	def(&t.Write, 5*time.Minute)
	def(&t.Idle, 2*time.Minute)
	return t
}

// NewServer returns an http.Server for h with t's timeouts, so a slow or
// idle client cannot hold a connection open for good.
func NewServer(h http.Handler, t Timeouts) *http.Server {
	t = t.withDefaults()
	return &http.Server{Handler: h, ReadHeaderTimeout: t.ReadHeader, ReadTimeout: t.Read, WriteTimeout: t.Write, IdleTimeout: t.Idle}
}

// ErrInsecureBind means a server was asked to listen beyond loopback
// without a token.
var ErrInsecureBind = errors.New("refusing to serve without a token on a non-loopback address")

// CheckBind returns an error wrapping ErrInsecureBind when a server without
// a token would listen on addr beyond loopback and insecure is not set. Every
// endpoint wasmjobs serves applies it.
func CheckBind(addr, token string, insecure bool) error {
	if token == "" && !insecure && !loopback(addr) {
		return fmt.Errorf("%w %s: set WASMJOBS_TOKEN, or pass --insecure if something in front of it does auth", ErrInsecureBind, addr)
	}
	return nil
}

func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// TokenOK reports whether got is token, in constant time.
func TokenOK(got, token string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

// BearerOK reports whether r carries "Authorization: Bearer <token>".
func BearerOK(r *http.Request, token string) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && TokenOK(tok, token)
}

// RequireToken wraps h so that every request needs "Authorization: Bearer
// <token>" (compared in constant time); others get Unauthorized. An empty
// token lets everything through.
func RequireToken(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if BearerOK(r, token) {
			h.ServeHTTP(w, r)
			return
		}
		Unauthorized(w)
	})
}

// Unauthorized answers 401 with a Bearer challenge and a JSON error.
func Unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="wasmjobs"`)
	WriteError(w, http.StatusUnauthorized, "unauthorized", "a valid token is required (Authorization: Bearer <token>)")
}

// apiError is the JSON error body: {"error": {"code": ..., "message": ...}}.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// WriteError writes the JSON error body every wasmjobs endpoint uses:
// {"error": {"code": code, "message": msg}}.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]apiError{"error": {Code: code, Message: msg}})
}
