// Package httpguard holds the checks every HTTP endpoint wasmjobs serves
// applies, the web server's and a worker's metrics endpoint alike: the bind
// check (no token, no listening beyond loopback), the Host and same-origin
// checks and the body limit ([Wrap]), bearer tokens compared in constant time
// ([RequireToken]), the JSON error body, and connection timeouts
// ([NewServer]).
package httpguard
