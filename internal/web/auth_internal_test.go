package web

import (
	"testing"
	"time"
)

func TestSessionsBounded(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_000_000, 0)
	s := newSessions(3, time.Hour)
	s.now = func() time.Time { return now }
	var ids []string
	for range 5 {
		id, err := s.create()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		now = now.Add(time.Minute)
	}
	if n := s.len(); n != 3 {
		t.Fatalf("%d sessions kept, want the bound 3", n)
	}
	if s.valid(ids[0]) || s.valid(ids[1]) || !s.valid(ids[4]) {
		t.Fatal("a full table must drop the oldest sessions first")
	}
	now = now.Add(2 * time.Hour)
	if s.valid(ids[4]) {
		t.Fatal("expired session still valid")
	}
	if s.valid("") {
		t.Fatal("empty id valid")
	}
}
