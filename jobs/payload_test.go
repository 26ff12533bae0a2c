package jobs_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/wasmjobs/wasmjobs/jobs"
)

// retentionOf returns the Retention among opts, or 0 and false.
func retentionOf(tb testing.TB, opts []jobs.Option) (time.Duration, bool) {
	tb.Helper()
	var d time.Duration
	found := false
	for _, o := range opts {
		if o.Type() == asynq.RetentionOpt {
			if found {
				tb.Fatalf("more than one Retention option in %v", opts)
			}
			d, found = o.Value().(time.Duration), true
		}
	}
	return d, found
}

func TestNewTaskRetention(t *testing.T) {
	t.Parallel()
	inline := jobs.Payload{Guest: "hello", Data: []byte("hi")}
	withOutput := jobs.Payload{Guest: "hello", Data: []byte("hi"), Output: "s3://results/hi.json"}
	fromS3 := jobs.Payload{Guest: "wordcount", Input: "s3://data/a.txt"}
	emptyInline := jobs.Payload{Guest: "hello", Data: []byte{}}
	tests := []struct {
		name    string
		p       jobs.Payload
		opts    []jobs.Option
		want    time.Duration
		wantSet bool
	}{
		{name: "inline without output gets the default", p: inline, want: jobs.DefaultResultRetention, wantSet: true},
		{name: "empty inline input is inline too", p: emptyInline, want: jobs.DefaultResultRetention, wantSet: true},
		{name: "explicit retention wins", p: inline, opts: []jobs.Option{jobs.Retention(time.Minute)}, want: time.Minute, wantSet: true},
		{name: "explicit zero retention wins", p: inline, opts: []jobs.Option{jobs.Retention(0)}, want: 0, wantSet: true},
		{name: "inline with output gets none", p: withOutput},
		{name: "s3 input gets none", p: fromS3, opts: []jobs.Option{jobs.Queue("q")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, opts, err := jobs.NewTask(jobs.TypeText, tt.p, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			got, set := retentionOf(t, opts)
			if got != tt.want || set != tt.wantSet {
				t.Errorf("retention %v (set %v), want %v (set %v)", got, set, tt.want, tt.wantSet)
			}
		})
	}
}

// NewTask must not write its added option into the caller's slice.
func TestNewTaskDoesNotAliasOptions(t *testing.T) {
	t.Parallel()
	opts := make([]jobs.Option, 1, 4)
	opts[0] = jobs.Queue("q")
	p := jobs.Payload{Guest: "hello", Data: []byte("hi")}
	_, got1, err := jobs.NewTask(jobs.TypeText, p, opts...)
	if err != nil {
		t.Fatal(err)
	}
	_, got2, err := jobs.NewTask(jobs.TypeText, p, opts[:1]...)
	if err != nil {
		t.Fatal(err)
	}
	if len(got1) != 2 || len(got2) != 2 {
		t.Fatalf("got %d and %d options, want 2", len(got1), len(got2))
	}
	if extra := opts[:2][1]; extra != nil {
		t.Errorf("NewTask wrote %v into the caller's backing array", extra)
	}
}

// Go producers can build values that JSON cannot carry faithfully; they are
// rejected instead of silently altered.
func TestValidateGoOnly(t *testing.T) {
	t.Parallel()
	base := func() jobs.Payload { return jobs.Payload{Guest: "hello", Data: []byte("hi")} }
	tests := []struct {
		name    string
		edit    func(*jobs.Payload)
		wantErr string
	}{
		{name: "binary inline data is fine", edit: func(p *jobs.Payload) { p.Data = []byte{0, 0xff, 0xfe, '\n'} }},
		{name: "param value not UTF-8", edit: func(p *jobs.Payload) { p.Params = map[string]string{"k": "a\xffb"} }, wantErr: `param "k" is not valid UTF-8`},
		{name: "batch not UTF-8", edit: func(p *jobs.Payload) { p.Batch = "run-\xff" }, wantErr: "batch id is not valid UTF-8"},
		{name: "empty params map is fine", edit: func(p *jobs.Payload) { p.Params = map[string]string{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := base()
			tt.edit(&p)
			b, err := p.Encode()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				checkRoundTrip(t, &p)
				return
			}
			if err == nil || !errors.Is(err, jobs.ErrInvalidPayload) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Encode = %s, %v; want an ErrInvalidPayload containing %q", b, err, tt.wantErr)
			}
		})
	}
}

// The wire form: snake_case keys, data as padded standard base64, empty
// optional fields left out, an empty inline input kept as "".
func TestEncodeWireForm(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    jobs.Payload
		want string
	}{
		{
			name: "s3",
			p:    jobs.Payload{Guest: "wordcount", Input: "s3://data/a.txt", Params: map[string]string{}},
			want: `{"guest":"wordcount","input":"s3://data/a.txt"}`,
		},
		{
			name: "inline",
			p:    jobs.Payload{Guest: "hello", Data: []byte("hi!"), Output: "s3://out/x", Params: map[string]string{"b": "2", "a": "1"}, Batch: "b1"},
			want: `{"guest":"hello","data":"aGkh","output":"s3://out/x","params":{"a":"1","b":"2"},"batch":"b1"}`,
		},
		{
			name: "empty inline",
			p:    jobs.Payload{Guest: "hello", Data: []byte{}},
			want: `{"guest":"hello","data":""}`,
		},
	}
	for _, tt := range tests {
		got, err := tt.p.Encode()
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if string(got) != tt.want {
			t.Errorf("%s: Encode = %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestValidateGuestRef(t *testing.T) {
	t.Parallel()
	digest := "sha256:" + strings.Repeat("0123456789abcdef", 4)
	tests := []struct {
		ref     string
		wantErr string
	}{
		{ref: "ocr"},
		{ref: "a"},
		{ref: "0"},
		{ref: "langid-v2.1_beta"},
		{ref: strings.Repeat("a", 63)},
		{ref: digest},
		{ref: "sha256"}, // a plain name; only the "sha256:" prefix makes a digest

		{ref: "", wantErr: "guest is empty"},
		{ref: "OCR", wantErr: "guest name"},
		{ref: "my guest", wantErr: "guest name"},
		{ref: strings.Repeat("a", 64), wantErr: "guest name"},
		{ref: "-ocr", wantErr: "guest name"},
		{ref: ".ocr", wantErr: "guest name"},
		{ref: "ocr/v2", wantErr: "guest name"},
		{ref: "ocr\n", wantErr: "guest name"},
		{ref: "sha256:", wantErr: "guest digest"},
		{ref: "sha256:0123abcd", wantErr: "guest digest"},
		{ref: digest + "0", wantErr: "guest digest"},
		{ref: strings.ToUpper(digest[:7]) + digest[7:], wantErr: "guest name"},
		{ref: digest[:7] + strings.ToUpper(digest[7:]), wantErr: "guest digest"},
		{ref: digest[:len(digest)-1] + "g", wantErr: "guest digest"},
		{ref: digest + "\n", wantErr: "guest digest"},
	}
	for _, tt := range tests {
		err := jobs.ValidateGuestRef(tt.ref)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("ValidateGuestRef(%q) = %v, want nil", tt.ref, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ValidateGuestRef(%q) = %v, want error containing %q", tt.ref, err, tt.wantErr)
		case tt.wantErr != "" && !errors.Is(err, jobs.ErrInvalidPayload):
			t.Errorf("ValidateGuestRef(%q) = %v, does not wrap ErrInvalidPayload", tt.ref, err)
		}
	}
}
