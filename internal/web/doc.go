// Package web serves wasmjobs over HTTP: the asynq dashboard (asynqmon)
// under /monitoring/, batch pages, the REST API under /api/v1, Prometheus
// metrics, and health checks — all behind one token when one is set.
//
// # Notes
//
//   - With a token, every route but /healthz needs it (and /readyz answers
//     without it with its status only): API clients send
//     "Authorization: Bearer <token>", browsers sign in once on /login and
//     carry an HttpOnly, Secure, SameSite=Strict session cookie.
//   - Without a token the server refuses to listen on anything but loopback
//     unless told it is fine (Config.Insecure).
//   - Token or not, httpguard.Wrap runs first: the Host must name the server (DNS
//     rebinding), browser writes must be same-origin, bodies are bounded;
//     JSON bodies must be sent as application/json. Sessions are random ids
//     kept in the process, so logout revokes them.
package web
