package jobs_test

import (
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
