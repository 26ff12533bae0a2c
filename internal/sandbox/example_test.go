package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/guests"
	"github.com/wasmjobs/wasmjobs/internal/guests/guesttest"
	"github.com/wasmjobs/wasmjobs/internal/sandbox"
)

// A Runtime compiles a guest once and runs it in a fresh instance per job.
func ExampleRuntime() {
	ctx := context.Background()
	rt, err := sandbox.New(ctx, sandbox.Config{MemoryLimitPages: 256}) // 16 MiB per guest
	if err != nil {
		panic(err)
	}
	defer rt.Close(ctx)

	mod, err := rt.Compile(ctx, guests.Hello, "")
	if err != nil {
		panic(err)
	}
	res, err := rt.Run(ctx, mod, sandbox.RunOptions{Stdin: []byte("Ada"), Timeout: 5 * time.Second})
	if err != nil {
		panic(err)
	}
	fmt.Println(string(res.Stdout))
	// Output: {"greeting":"Hello, Ada!"}
}

// A guest's failure is a *GuestError whose kind says what happened.
func ExampleGuestError() {
	ctx := context.Background()
	rt, _ := sandbox.New(ctx, sandbox.Config{})
	defer rt.Close(ctx)
	mod, _ := rt.Compile(ctx, guesttest.Misbehave, "")

	_, err := rt.Run(ctx, mod, sandbox.RunOptions{Params: map[string]string{"mode": "loop"}, Timeout: 100 * time.Millisecond})
	var ge *sandbox.GuestError
	fmt.Println(errors.As(err, &ge), errors.Is(err, sandbox.ErrTimeout))
	// Output: true true
}
