package fasttext

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/wasmjobs/wasmjobs/internal/nn"
)

func u8(s string) nn.Tensor {
	return nn.Tensor{Type: nn.U8, Dims: []uint32{uint32(len(s))}, Data: []byte(s)}
}

func i32(v int32) nn.Tensor {
	return nn.Tensor{Type: nn.I32, Dims: []uint32{1}, Data: binary.LittleEndian.AppendUint32(nil, uint32(v))}
}

func TestBackendLID(t *testing.T) {
	t.Parallel()
	lidModel(t)
	ctx := context.Background()
	b := New()
	if b.Name() != "fasttext" {
		t.Fatalf("Name = %q", b.Name())
	}
	g, err := b.LoadFile(ctx, lidPath)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ec, err := g.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	tests := []struct {
		k     *int32
		wantN int
	}{{nil, DefaultK}, {ptr(int32(3)), 3}, {ptr(int32(0)), 1}, {ptr(int32(-7)), 1}, {ptr(int32(1000)), 176}}
	text := "Der Zug fährt jeden Morgen um halb acht in die Stadt."
	for _, tt := range tests {
		if err := ec.SetInput(0, u8(text)); err != nil {
			t.Fatal(err)
		}
		if tt.k != nil {
			if err := ec.SetInput(1, i32(*tt.k)); err != nil {
				t.Fatal(err)
			}
		}
		if err := ec.Compute(ctx); err != nil {
			t.Fatal(err)
		}
		// Hierarchical softmax drops labels below exp(score) = 1e-5 even
		// with threshold 0, as fastText does, so k=1000 gives fewer than 176.
		want := lid.Predict(text, tt.wantN, 0)
		if len(want) > tt.wantN || (tt.wantN <= 5 && len(want) != tt.wantN) {
			t.Fatalf("k=%d: Predict gave %d", tt.wantN, len(want))
		}
		tt.wantN = len(want)
		probs, err := ec.Output(0)
		if err != nil {
			t.Fatal(err)
		}
		labels, err := ec.Output(1)
		if err != nil {
			t.Fatal(err)
		}
		if probs.Type != nn.F32 || len(probs.Dims) != 1 || int(probs.Dims[0]) != tt.wantN || len(probs.Data) != 4*tt.wantN {
			t.Fatalf("k=%d: output 0 = %v %v (%d bytes)", tt.wantN, probs.Type, probs.Dims, len(probs.Data))
		}
		names := strings.Split(string(labels.Data), "\n")
		if labels.Type != nn.U8 || len(names) != tt.wantN || int(labels.Dims[0]) != len(labels.Data) {
			t.Fatalf("k=%d: output 1 = %q", tt.wantN, labels.Data)
		}
		for i, p := range want {
			got := math.Float32frombits(binary.LittleEndian.Uint32(probs.Data[4*i:]))
			if names[i] != p.Label || got != p.Prob {
				t.Fatalf("k=%d #%d: %s %v, want %s %v", tt.wantN, i, names[i], got, p.Label, p.Prob)
			}
		}
		if names[0] != "__label__de" {
			t.Errorf("top label %q", names[0])
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestBackendErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := New()
	if _, err := b.LoadBytes(ctx, []byte("not a model")); !errors.Is(err, nn.ErrInvalidEncoding) || !errors.Is(err, ErrNotFastText) {
		t.Errorf("LoadBytes(garbage): %v", err)
	}
	good := encodeModel(tinyModel(LossHS))
	if _, err := b.LoadBytes(ctx, good[:len(good)-1]); !errors.Is(err, nn.ErrInvalidArgument) || !errors.Is(err, ErrCorrupt) {
		t.Errorf("LoadBytes(truncated): %v", err)
	}
	cbow := tinyModel(LossHS)
	cbow.args.Model = ModelCBOW
	if _, err := b.LoadBytes(ctx, encodeModel(cbow)); !errors.Is(err, nn.ErrUnsupported) {
		t.Errorf("LoadBytes(cbow): %v", err)
	}
	if _, err := b.LoadFile(ctx, "testdata/missing.ftz"); !errors.Is(err, nn.ErrNotFound) {
		t.Errorf("LoadFile(missing): %v", err)
	}

	g, err := b.LoadBytes(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := g.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	if err := ec.Compute(ctx); !errors.Is(err, nn.ErrInvalidArgument) {
		t.Errorf("Compute before SetInput: %v", err)
	}
	if _, err := ec.Output(0); !errors.Is(err, nn.ErrInvalidArgument) {
		t.Errorf("Output before Compute: %v", err)
	}
	bad := []struct {
		index uint32
		t     nn.Tensor
	}{
		{0, nn.Tensor{Type: nn.F32, Dims: []uint32{4}, Data: make([]byte, 4)}},
		{0, nn.Tensor{Type: nn.U8, Dims: []uint32{5}, Data: []byte("abc")}},
		{0, nn.Tensor{Type: nn.U8, Dims: []uint32{1 << 31, 1 << 31}, Data: nil}},
		{1, nn.Tensor{Type: nn.I64, Dims: []uint32{1}, Data: make([]byte, 8)}},
		{1, nn.Tensor{Type: nn.I32, Dims: []uint32{2}, Data: make([]byte, 8)}},
		{2, u8("x")},
	}
	for _, tt := range bad {
		if err := ec.SetInput(tt.index, tt.t); !errors.Is(err, nn.ErrInvalidArgument) {
			t.Errorf("SetInput(%d, %v %v): %v", tt.index, tt.t.Type, tt.t.Dims, err)
		}
	}
	if err := ec.SetInput(0, nn.Tensor{Type: nn.U8, Dims: []uint32{1, 3}, Data: []byte("a b")}); err != nil {
		t.Fatalf("2-D text: %v", err)
	}
	if err := ec.Compute(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := ec.Output(2); !errors.Is(err, nn.ErrInvalidArgument) {
		t.Errorf("Output(2): %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := ec.Compute(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("Compute(cancelled): %v", err)
	}
}

// TestBackendConcurrent shares one graph between goroutines, each with its
// own context, under -race.
func TestBackendConcurrent(t *testing.T) {
	t.Parallel()
	g, err := New().LoadBytes(context.Background(), encodeModel(quantTiny(true)))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	for i := range 8 {
		go func() {
			ec, err := g.NewContext()
			if err == nil {
				for range 100 {
					if err = ec.SetInput(0, u8(strings.Repeat("a b ", i))); err != nil {
						break
					}
					if err = ec.Compute(context.Background()); err != nil {
						break
					}
				}
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
