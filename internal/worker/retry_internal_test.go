package worker

import (
	"errors"
	"testing"
	"time"

	"github.com/hibiken/asynq"
)

func TestRetryDelay(t *testing.T) {
	task := asynq.NewTask("wasm:text", nil)
	if d := retryDelay(3, asynq.ErrLeaseExpired, task); d != 0 {
		t.Errorf("after an expired lease: %v, want 0", d)
	}
	transient := errors.New("dial tcp: connection refused")
	for n := range 25 {
		want := time.Second << n
		for range 20 {
			d := retryDelay(n, transient, task)
			if cap := asynq.DefaultRetryDelayFunc(n, transient, task); d > cap+30*time.Second*time.Duration(n+1) {
				t.Fatalf("retry %d: %v, past asynq's own backoff", n, d)
			}
			if n < 10 && (d < want/2 || d > want*3/2) {
				t.Fatalf("retry %d: %v, want %v ± 50%%", n, d, want)
			}
		}
	}
}
