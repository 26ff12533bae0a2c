package sandbox

import (
	"bytes"
	"math/rand"
	"testing"
)

// TestFakeRandomIsWazeroStream: guests get the bytes wazero's default
// source gives (math/rand seeded with 42), in reads of any size.
func TestFakeRandomIsWazeroStream(t *testing.T) {
	t.Parallel()
	want := make([]byte, 1000)
	if _, err := rand.New(rand.NewSource(42)).Read(want); err != nil {
		t.Fatal(err)
	}
	var got []byte
	f := &fakeRandom{}
	for _, n := range []int{1, 7, 8, 3, 64, 0, 917} {
		b := make([]byte, n)
		if _, err := f.Read(b); err != nil {
			t.Fatal(err)
		}
		got = append(got, b...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("stream differs from rand.New(rand.NewSource(42))")
	}
}
