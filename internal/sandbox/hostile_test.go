package sandbox_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/hostile"
	"github.com/wasmjobs/wasmjobs/internal/sandbox"
)

// TestHostileGuests runs the hostile-guest suite through one runtime with the
// default limits: each guest must fail as its header says, as a GuestError.
// The nn-* guests need the WASI-NN host module and run in the e2e suite.
func TestHostileGuests(t *testing.T) {
	rt := newRuntime(t, sandbox.Config{})
	for _, g := range hostile.Load(t) {
		if strings.HasPrefix(g.Name, "nn-") {
			continue
		}
		t.Run(g.Name, func(t *testing.T) {
			ctx := context.Background()
			const timeout = 5 * time.Second
			start := time.Now()
			err := func() error {
				m, err := rt.Compile(ctx, g.Wasm, "")
				if err != nil {
					return err
				}
				_, err = rt.Run(ctx, m, sandbox.RunOptions{Stdin: []byte(g.Input), Params: g.Params, Timeout: timeout})
				return err
			}()
			// A deadline holds whatever the guest does between checks.
			if d := time.Since(start); strings.Contains(g.Expect, "deadline") && d > 2*timeout {
				t.Errorf("stopped after %s, deadline %s", d.Round(time.Millisecond), timeout)
			}
			var ge *sandbox.GuestError
			if !errors.As(err, &ge) {
				t.Fatalf("err = %v, want a *GuestError containing %q", err, g.Expect)
			}
			msg := ge.Error()
			if !strings.Contains(msg, g.Expect) {
				t.Fatalf("reason %q does not contain %q", msg, g.Expect)
			}
			if strings.Contains(ge.Detail, "\n") {
				t.Errorf("detail is not one line: %q", ge.Detail)
			}
			t.Logf("%s", firstN(msg, 200))
		})
	}
}

func firstN(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
