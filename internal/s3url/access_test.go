package s3url_test

import (
	"testing"

	"github.com/wasmjobs/wasmjobs/internal/s3url"
)

func TestParseAccessList(t *testing.T) {
	t.Parallel()
	got, err := s3url.ParseAccessList([]string{"data", "s3://media/img/", " ", "logs/2024"})
	if err != nil {
		t.Fatal(err)
	}
	want := []s3url.ObjectURL{{Bucket: "data"}, {Bucket: "media", Key: "img/"}, {Bucket: "logs", Key: "2024"}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %v, want %v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"A", "s3://", "x/y"} {
		if _, err := s3url.ParseAccessList([]string{bad}); err == nil {
			t.Errorf("ParseAccessList(%q) succeeded", bad)
		}
	}
}
