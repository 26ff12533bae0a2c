package jobs_test

import (
	"encoding/json"
	"testing"

	"github.com/wasmjobs/wasmjobs/jobs"
)

func FuzzDecodePayload(f *testing.F) {
	for _, v := range loadVectors(f) {
		// The 64 KiB boundary vectors would make every mutation and every
		// minimization slow; TestPayloadVectors covers them.
		if v.DataRepeat == nil {
			f.Add(v.payloadBytes(f))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := jobs.DecodePayload(b)
		if err != nil {
			if p != nil {
				t.Fatalf("DecodePayload returned both %+v and %v", p, err)
			}
			return
		}
		checkRoundTrip(t, p)
	})
}

func FuzzParseObjectURL(f *testing.F) {
	for _, v := range loadVectors(f) {
		var p jobs.Payload
		if v.PayloadRaw == nil && v.DataRepeat == nil && v.ParamRepeat == nil && v.Payload != nil {
			_ = json.Unmarshal(v.Payload, &p) // wrong JSON types just add no seed
		}
		for _, s := range []string{p.Input, p.Output} {
			if s != "" {
				f.Add(s)
			}
		}
	}
	for _, s := range []string{"s3://", "s3://abc/", "s3://abc//", "s3://a/b/c", "s3://abc/\u0080", "s3://abc/\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := jobs.ParseObjectURL(s)
		if err != nil {
			if u != (jobs.ObjectURL{}) {
				t.Fatalf("ParseObjectURL(%q) returned both %+v and %v", s, u, err)
			}
			return
		}
		if u.Bucket == "" || u.Key == "" {
			t.Fatalf("ParseObjectURL(%q) = %+v: empty bucket or key", s, u)
		}
		str := u.String()
		if str != s {
			t.Fatalf("ParseObjectURL(%q).String() = %q", s, str)
		}
		v, err := jobs.ParseObjectURL(str)
		if err != nil || v != u {
			t.Fatalf("ParseObjectURL(%q) = %+v, %v; want %+v", str, v, err, u)
		}
		// Every object URL is also a prefix URL naming the same place.
		w, err := jobs.ParsePrefixURL(s)
		if err != nil || w != u {
			t.Fatalf("ParsePrefixURL(%q) = %+v, %v; want %+v", s, w, err, u)
		}
	})
}
