package jobs_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"strings"
	"testing"

	"github.com/wasmjobs/wasmjobs/jobs"
)

// payloadVector is one entry of testdata/payload_vectors.json; the file's
// comment documents the fields.
type payloadVector struct {
	Name        string          `json:"name"`
	Type        string          `json:"type"`
	Payload     json.RawMessage `json:"payload"`
	PayloadRaw  *string         `json:"payload_raw"`
	DataRepeat  *repeat         `json:"data_repeat"`
	ParamRepeat *repeat         `json:"param_repeat"`
	DecodeOnly  bool            `json:"decode_only"`
	Valid       bool            `json:"valid"`
	Error       string          `json:"error"`
}

type repeat struct {
	Key   string `json:"key"`
	Byte  byte   `json:"byte"`
	Count int    `json:"count"`
}

// loadVectors reads the shared payload vectors.
func loadVectors(tb testing.TB) []payloadVector {
	tb.Helper()
	b, err := os.ReadFile("testdata/payload_vectors.json")
	if err != nil {
		tb.Fatal(err)
	}
	var file struct {
		Comment json.RawMessage `json:"comment"`
		Vectors []payloadVector `json:"vectors"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields() // a typo in the file must not silently drop a field
	if err := dec.Decode(&file); err != nil {
		tb.Fatalf("payload_vectors.json: %v", err)
	}
	if len(file.Vectors) == 0 {
		tb.Fatal("payload_vectors.json has no vectors")
	}
	return file.Vectors
}

// payloadBytes returns the exact payload bytes of v, with repeats expanded.
func (v payloadVector) payloadBytes(tb testing.TB) []byte {
	tb.Helper()
	if v.PayloadRaw != nil {
		if v.Payload != nil || v.DataRepeat != nil || v.ParamRepeat != nil {
			tb.Fatalf("%s: payload_raw excludes payload and repeats", v.Name)
		}
		return []byte(*v.PayloadRaw)
	}
	if v.Payload == nil {
		tb.Fatalf("%s: neither payload nor payload_raw", v.Name)
	}
	if v.DataRepeat == nil && v.ParamRepeat == nil {
		return v.Payload
	}
	var obj map[string]any
	if err := json.Unmarshal(v.Payload, &obj); err != nil {
		tb.Fatalf("%s: %v", v.Name, err)
	}
	if r := v.DataRepeat; r != nil {
		obj["data"] = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{r.Byte}, r.Count))
	}
	if r := v.ParamRepeat; r != nil {
		params, _ := obj["params"].(map[string]any)
		if params == nil {
			params = map[string]any{}
		}
		params[r.Key] = strings.Repeat(string(rune(r.Byte)), r.Count)
		obj["params"] = params
	}
	b, err := json.Marshal(obj)
	if err != nil {
		tb.Fatalf("%s: %v", v.Name, err)
	}
	return b
}

// checkVerdict fails unless err matches the vector's valid and error fields.
func checkVerdict(tb testing.TB, v payloadVector, what string, err error) {
	tb.Helper()
	switch {
	case v.Valid && err != nil:
		tb.Errorf("%s: want valid, got %v", what, err)
	case !v.Valid && err == nil:
		tb.Errorf("%s: want an error containing %q, got none", what, v.Error)
	case !v.Valid && !errors.Is(err, jobs.ErrInvalidPayload):
		tb.Errorf("%s: %v does not wrap ErrInvalidPayload", what, err)
	case !v.Valid && !strings.Contains(err.Error(), v.Error):
		tb.Errorf("%s: error %q does not contain %q", what, err, v.Error)
	}
}

func TestPayloadVectors(t *testing.T) {
	t.Parallel()
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			if !v.Valid && v.Error == "" {
				t.Fatal("invalid vector without an error substring")
			}
			body := v.payloadBytes(t)

			// What a worker does with a received task: check the type, then
			// decode the payload.
			var err error
			if v.Type != jobs.TypeImage && v.Type != jobs.TypeText {
				if _, derr := jobs.DecodePayload(body); derr != nil {
					t.Errorf("payload of an unknown-type vector should be valid on its own: %v", derr)
				}
				_, _, err = jobs.NewTask(v.Type, jobs.Payload{Guest: "hello", Data: []byte("hi")})
			} else {
				var p *jobs.Payload
				p, err = jobs.DecodePayload(body)
				if err == nil {
					checkRoundTrip(t, p)
				}
			}
			checkVerdict(t, v, "DecodePayload", err)

			if v.DecodeOnly {
				return
			}
			// What a producer does: build the typed payload and the task.
			var p jobs.Payload
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatalf("vector is not decode_only but does not unmarshal into Payload: %v", err)
			}
			task, _, err := jobs.NewTask(v.Type, p)
			checkVerdict(t, v, "NewTask", err)
			if err == nil {
				if task.Type() != v.Type {
					t.Errorf("task type %q, want %q", task.Type(), v.Type)
				}
				got, err := jobs.DecodePayload(task.Payload())
				if err != nil {
					t.Fatalf("NewTask built a payload DecodePayload rejects: %v\n%s", err, task.Payload())
				}
				if !payloadsEqual(got, &p) {
					t.Errorf("NewTask payload decodes to %+v, want %+v", got, p)
				}
			}
		})
	}
}

// checkRoundTrip fails unless p encodes and decodes back to an equal payload.
func checkRoundTrip(tb testing.TB, p *jobs.Payload) {
	tb.Helper()
	b, err := p.Encode()
	if err != nil {
		tb.Fatalf("Encode of a decoded payload %+v: %v", p, err)
	}
	q, err := jobs.DecodePayload(b)
	if err != nil {
		tb.Fatalf("DecodePayload of Encode output %s: %v", b, err)
	}
	if !payloadsEqual(p, q) {
		tb.Fatalf("round trip changed the payload:\n got %+v\nwant %+v\nJSON %s", q, p, b)
	}
}

// payloadsEqual compares payloads by meaning: nil and empty Params are the
// same, but nil Data (no inline input) and empty Data (an empty inline input)
// are not.
func payloadsEqual(a, b *jobs.Payload) bool {
	return a.Guest == b.Guest && a.Input == b.Input && a.Output == b.Output && a.Batch == b.Batch &&
		(a.Data == nil) == (b.Data == nil) && bytes.Equal(a.Data, b.Data) &&
		maps.Equal(a.Params, b.Params)
}
