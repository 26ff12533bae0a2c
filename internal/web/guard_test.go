package web_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/wasmjobs/wasmjobs/internal/httpguard"
	"github.com/wasmjobs/wasmjobs/internal/web"
	"github.com/wasmjobs/wasmjobs/jobs"
)

// send is do with full control over headers.
func (e *env) send(t *testing.T, method, path, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 20 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const jobBody = `{"type":"text","job":{"guest":"hello","data":"QWRh"}}`

// TestCrossSiteWrites: without a token (the loopback default), a page on
// another site cannot post jobs or batches, start a batch through the form,
// or press asynqmon's buttons; a same-origin page and a non-browser client
// can.
func TestCrossSiteWrites(t *testing.T) {
	e := newEnv(t, web.Config{})
	if _, err := e.client.EnqueueText(context.Background(), jobs.Payload{Guest: "hello", Data: []byte("x")}, jobs.Queue("victim")); err != nil {
		t.Fatal(err)
	}
	json := map[string]string{"Content-Type": "application/json"}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	batchForm := "guest=hello&type=text&input=s3://" + e.bucket + "/in/"
	for _, c := range []struct {
		name, method, path, body string
		hdr                      map[string]string
	}{
		{"text/plain job", "POST", "/api/v1/jobs", jobBody, map[string]string{"Content-Type": "text/plain"}},
		{"no content type", "POST", "/api/v1/jobs", jobBody, nil},
		{"text/plain batch", "POST", "/api/v1/batches", `{"guest":"hello","type":"text","input":"s3://` + e.bucket + `/in/"}`, map[string]string{"Content-Type": "text/plain;charset=utf-8"}},
		{"cross-site job", "POST", "/api/v1/jobs", jobBody, with(json, "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")},
		{"same-site job", "POST", "/api/v1/jobs", jobBody, with(json, "Sec-Fetch-Site", "same-site", "Origin", "http://other.localhost")},
		{"old browser, foreign Origin", "POST", "/api/v1/jobs", jobBody, with(json, "Origin", "https://evil.example")},
		{"null Origin", "POST", "/api/v1/jobs", jobBody, with(json, "Origin", "null")},
		{"batch form", "POST", "/batches", batchForm, with(form, "Sec-Fetch-Site", "cross-site")},
		{"asynqmon pause", "POST", "/monitoring/api/queues/victim:pause", "", map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"asynqmon delete all", "DELETE", "/monitoring/api/queues/victim/pending_tasks:delete_all", "", map[string]string{"Origin": "https://evil.example"}},
		{"asynqmon delete queue", "DELETE", "/monitoring/api/queues/victim?force=true", "", map[string]string{"Sec-Fetch-Site": "cross-site"}},
	} {
		code, body := e.send(t, c.method, c.path, c.body, c.hdr)
		if code < 400 || code >= 500 {
			t.Errorf("%s: %s %s → %d %s, want it refused", c.name, c.method, c.path, code, body)
		}
	}
	insp := asynq.NewInspector(e.redis)
	defer insp.Close()
	info, err := insp.GetQueueInfo("victim")
	if err != nil || info.Paused || info.Pending != 1 {
		t.Fatalf("queue after cross-site actions: %+v, %v; want unpaused with its task", info, err)
	}
	if all, _ := e.client.ListBatches(context.Background(), 10); len(all) != 0 {
		t.Fatalf("a cross-site request started batches: %v", all)
	}

	// The dashboard's own requests and non-browser clients still work.
	for _, c := range []struct {
		name string
		hdr  map[string]string
	}{
		{"curl", json},
		{"same-origin page", with(json, "Sec-Fetch-Site", "same-origin", "Origin", e.url)},
		{"old browser, same Origin", with(json, "Origin", e.url)},
	} {
		if code, body := e.send(t, "POST", "/api/v1/jobs", jobBody, c.hdr); code != http.StatusCreated {
			t.Errorf("%s: POST job → %d %s, want 201", c.name, code, body)
		}
	}
	if code, body := e.send(t, "POST", "/monitoring/api/queues/victim:pause", "", map[string]string{"Sec-Fetch-Site": "same-origin"}); code >= 300 {
		t.Errorf("same-origin pause: %d %s", code, body)
	}
	if info, _ := insp.GetQueueInfo("victim"); info == nil || !info.Paused {
		t.Errorf("same-origin pause did not pause the queue")
	}
	if code, body := e.send(t, "POST", "/batches", batchForm, with(form, "Sec-Fetch-Site", "same-origin")); code != http.StatusSeeOther {
		t.Errorf("same-origin batch form: %d %s", code, body)
	}
}

// TestHostCheck: DNS rebinding (a foreign name resolving to 127.0.0.1)
// cannot read anything from a server without a token; loopback names, IP
// literals and the configured names can.
func TestHostCheck(t *testing.T) {
	e := newEnv(t, web.Config{AllowedHosts: []string{"jobs.example.com"}})
	port := e.url[strings.LastIndex(e.url, ":")+1:]
	paths := []string{"/", "/api/v1/batches", "/monitoring/", "/monitoring/api/queues", "/metrics", "/readyz"}
	for _, host := range []string{"evil.example", "evil.example:" + port, "localhost.evil.example", "jobs.example.com.evil.example", "127.0.0.1.nip.io:" + port} {
		for _, p := range paths {
			if code, body := e.send(t, "GET", p, "", map[string]string{"Host": host}); code != http.StatusMisdirectedRequest {
				t.Errorf("Host %s GET %s → %d %.80s, want 421", host, p, code, body)
			}
		}
	}
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LOCALHOST.", "app.localhost:" + port, "[::1]:" + port, "jobs.example.com", "Jobs.Example.Com:443"} {
		if code, body := e.send(t, "GET", "/api/v1/batches", "", map[string]string{"Host": host}); code != http.StatusOK {
			t.Errorf("Host %s → %d %s, want 200", host, code, body)
		}
	}
	if code, _ := e.send(t, "GET", "/healthz", "", map[string]string{"Host": "anything.example"}); code != http.StatusOK {
		t.Errorf("/healthz under any name: %d", code)
	}
	// Behind a proxy, writes from the public origin are trusted.
	if code, body := e.send(t, "POST", "/api/v1/jobs", jobBody, map[string]string{"Content-Type": "application/json",
		"Origin": "https://jobs.example.com", "Host": "127.0.0.1:" + port}); code != http.StatusCreated {
		t.Errorf("write from the allowed public origin: %d %s", code, body)
	}

	// A server on a name: that name works; with a token and no list, any
	// name does (the token protects it, and a wildcard bind has no names).
	named := newEnv(t, web.Config{Addr: "wasmjobs.internal:8080", Insecure: true})
	if code, _ := named.send(t, "GET", "/api/v1/batches", "", map[string]string{"Host": "wasmjobs.internal:8080"}); code != http.StatusOK {
		t.Errorf("bound name: %d", code)
	}
	if code, _ := named.send(t, "GET", "/api/v1/batches", "", map[string]string{"Host": "localhost"}); code != http.StatusMisdirectedRequest {
		t.Errorf("localhost on a server bound to a name: %d", code)
	}
	tok := newEnv(t, web.Config{Addr: ":8080", Token: token})
	if code, _ := tok.send(t, "GET", "/api/v1/batches", "", map[string]string{"Host": "wasmjobs-web.svc", "Authorization": "Bearer " + token}); code != http.StatusOK {
		t.Errorf("token server under its service name: %d", code)
	}
}

// TestLoginRedirectStaysOnSite: hostile next values after a successful
// login all land on "/".
func TestLoginRedirectStaysOnSite(t *testing.T) {
	e := newEnv(t, web.Config{Token: token})
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	login := func(next string) string {
		t.Helper()
		resp, err := noFollow.PostForm(e.url+"/login", url.Values{"token": {token}, "next": {next}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("login next=%q: %d", next, resp.StatusCode)
		}
		return resp.Header.Get("Location")
	}
	for _, next := range []string{
		"/\t/evil.example", "/\n/evil.example", "/\r/evil.example", "\t//evil.example", "/ /evil.example",
		"//evil.example", "///evil.example", "/\\evil.example", "\\\\evil.example", "/\\/evil.example",
		"/%2F/evil.example", "/%2f%2fevil.example", "/%5Cevil.example", "/%09/evil.example", "/%0a/evil.example",
		"https://evil.example", "http:evil.example", "javascript:alert(1)", "evil.example", "",
		"/\x00/evil.example", "/\u3000/evil.example", "\u2215\u2215evil.example", "/\x7f/evil.example",
		"https:/\\evil.example", "//user@evil.example",
	} {
		if loc := login(next); loc != "/" {
			t.Errorf("next=%q → Location %q, want /", next, loc)
		}
	}
	for _, next := range []string{"/batches/b1", "/monitoring/", "/batches/b1?limit=5", "/a/b/c"} {
		if loc := login(next); loc != next {
			t.Errorf("next=%q → Location %q, want it kept", next, loc)
		}
	}
}

// TestLogoutRevokesSession: a session cookie stops working on the server
// after logout, even when replayed.
func TestLogoutRevokesSession(t *testing.T) {
	e := newEnv(t, web.Config{Token: token})
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	signIn := func() *http.Cookie {
		resp, err := noFollow.PostForm(e.url+"/login", url.Values{"token": {token}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if len(resp.Cookies()) != 1 {
			t.Fatalf("login cookies: %v", resp.Cookies())
		}
		return resp.Cookies()[0]
	}
	get := func(c *http.Cookie) int {
		req, _ := http.NewRequest("GET", e.url+"/api/v1/batches", nil)
		req.AddCookie(c)
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	a, b := signIn(), signIn()
	if a.Value == b.Value {
		t.Fatalf("two logins share a session id")
	}
	if get(a) != http.StatusOK || get(b) != http.StatusOK {
		t.Fatal("sessions do not work")
	}
	req, _ := http.NewRequest("POST", e.url+"/logout", nil)
	req.AddCookie(a)
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code := get(a); code != http.StatusUnauthorized {
		t.Errorf("replayed cookie after logout: %d, want 401", code)
	}
	if code := get(b); code != http.StatusOK {
		t.Errorf("the other session after logout: %d, want 200", code)
	}
	if code := get(&http.Cookie{Name: a.Name, Value: strings.Repeat("0", 64)}); code != http.StatusUnauthorized {
		t.Errorf("made-up session id: %d", code)
	}
}

// TestLoginBodyLimit: the login form is limited before it is parsed, so a
// huge form is refused rather than read.
func TestLoginBodyLimit(t *testing.T) {
	e := newEnv(t, web.Config{Token: token})
	body := "pad=" + strings.Repeat("x", 64<<10) + "&token=" + token + "&next=/"
	code, _ := e.send(t, "POST", "/login", body, map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if code != http.StatusRequestEntityTooLarge {
		t.Fatalf("64 KiB login form: %d, want 413", code)
	}
}

// TestSlowClients: a client trickling its body or idling on a keep-alive
// connection is cut off by the server's timeouts.
func TestSlowClients(t *testing.T) {
	e := newEnv(t, web.Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv, err := web.New(web.Config{Addr: addr, Redis: e.redis, Store: mustStore(t),
		Timeouts: httpguard.Timeouts{Read: 500 * time.Millisecond, Idle: 500 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	expectServerCloses(t, addr, "POST /api/v1/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
	expectServerCloses(t, addr, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
}

// expectServerCloses writes req on a fresh connection, never sends more,
// and fails unless the server ends the connection within 5 s.
func expectServerCloses(t *testing.T, addr, req string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = conn.SetReadDeadline(start.Add(5 * time.Second))
	_, err = io.Copy(io.Discard, bufio.NewReader(conn))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("%q: connection still open after %v", strings.SplitN(req, "\r\n", 2)[0], time.Since(start))
	}
}
