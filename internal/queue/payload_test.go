package queue

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// payloadSamples are payloads the one-pass decoder takes and ones it must
// leave to the strict decoder.
var payloadSamples = []string{
	`{"guest":"langid","data":"aGVsbG8="}`,
	` { "guest" : "langid" , "data" : "" , "params" : { "k" : "3", "a}" : "[ü" } } `,
	"{\"guest\":\"ocr\",\r\n\t\"input\":\"s3://b/k.png\",\"output\":\"s3://b/o.json\",\"batch\":\"b1\"}",
	`{"guest":"wordcount","data":"eA==","params":{}}`,
	` { "guest" : "langid" , "data" : "" , "params" : { "k" : "3", "a}" : "[\"" } } `,
	`{"guest":"langid","data":"eA==","params":{"k":"1","k":"2"}}`,
	"{\"guest\":\"langid\",\"data\":\"eA==\",\"batch\":\"\xff\"}",
	"{\"guest\":\"langid\",\"data\":\"eA==\",\"batch\":\"a\tb\"}",
	`{"guest":"a","guest":"b","data":"eA=="}`,
	`{"guest":"langid","data":null}`,
	`{}`,
	`{"Guest":"langid","data":"eA=="}`,
	`{"gu\u0065st":"langid","data":"eA=="}`,
	`{"guest":"langid","data":"eA==","extra":1}`,
	`{"guest":"langid","data":"eA=="} {}`,
	`{"guest":"langid","data":"eA=="}]`,
	`{"guest":"langid","params":{"k":"3"},"data":"eA=="`,
	`{"guest":"langid","params":[1,{"x":"}"}],"data":"eA=="}`,
	`{"guest":"langid","data":"eA==","batch":true}`,
	`{"guest":"langid","data":"eA==","params":{"k":3}}`,
	`null`,
	`[]`,
	`"guest"`,
	`12`,
	``,
	`{"guest":"langid","data":"not base64!"}`,
	`{"guest":"Bad Name","data":"eA=="}`,
}

// checkSameDecoding fails unless the one-pass decoder, where it decodes b,
// agrees with the strict two-pass decoder: the same payload, valid or not.
// (Where it does not, DecodePayload is the strict decoder.)
func checkSameDecoding(t *testing.T, b []byte) {
	t.Helper()
	p, ok := decodePlainPayload(b)
	if !ok {
		return
	}
	invalid := p.Validate()
	want, err := decodePayloadStrict(b)
	if (err == nil) != (invalid == nil) {
		t.Fatalf("%q: decoded in one pass (validation: %v), strict decoding says %v", b, invalid, err)
	}
	if err == nil && !reflect.DeepEqual(p, want) {
		t.Fatalf("%q: one pass gives %+v, strict decoding %+v", b, p, want)
	}
}

// producerSamples are how many of payloadSamples, from the first, are what
// producers write: those must take the one pass.
const producerSamples = 4

func TestDecodePayloadOnePass(t *testing.T) {
	t.Parallel()
	for i, s := range payloadSamples {
		checkSameDecoding(t, []byte(s))
		if _, ok := decodePlainPayload([]byte(s)); i < producerSamples && !ok {
			t.Errorf("%q: not decoded in one pass", s)
		}
	}
}

func FuzzDecodePayloadOnePass(f *testing.F) {
	for _, s := range payloadSamples {
		f.Add([]byte(s))
	}
	f.Fuzz(checkSameDecoding)
}

func BenchmarkDecodePayload(b *testing.B) {
	body := []byte(`{"guest":"langid","data":"VGhlIGxpYnJhcnkgd2lsbCBiZSBjbG9zZWQgbmV4dCB3ZWVrIHdoaWxlIHRoZSByb29mIGlzIGJlaW5nIHJlcGFpcmVkLg=="}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodePayload(body); err != nil {
			b.Fatal(err)
		}
	}
}

func TestShardPayload(t *testing.T) {
	t.Parallel()
	const base = `{"guest":"langid","input":"s3://data/a.jsonl","output":"s3://out/a.jsonl","shard":`
	ok := `{"format":"jsonl","field":"text","column":-1,"start":100,"end":900,"first":7,"count":12,"etag":"abc"}`
	p, err := DecodePayload([]byte(base + ok + "}"))
	if err != nil || p.Shard == nil || p.Shard.Field != "text" || p.Shard.Start != 100 || p.Shard.End != 900 || p.Shard.First != 7 || p.Shard.Count != 12 {
		t.Fatalf("decode = %+v, %v", p, err)
	}
	again, err := DecodePayload(mustEncode(t, p))
	if err != nil || !reflect.DeepEqual(again, p) {
		t.Fatalf("round trip = %+v, %v", again, err)
	}
	for _, bad := range []struct{ shard, want string }{
		{`{"format":"xml","start":0,"end":10,"count":1}`, `format "xml"`},
		{`{"format":"jsonl","start":10,"end":10,"count":1}`, "empty"},
		{`{"format":"jsonl","start":-1,"end":10,"count":1}`, "negative"},
		{`{"format":"jsonl","start":0,"end":10,"count":0}`, "want at least one"},
		{`{"format":"jsonl","start":0,"end":300000000,"count":1}`, "at most"},
		{`{"format":"csv","column":-2,"start":0,"end":10,"count":1}`, "CSV column -2"},
	} {
		if _, err := DecodePayload([]byte(base + bad.shard + "}")); err == nil || !errors.Is(err, ErrInvalidPayload) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("shard %s: %v, want an invalid payload saying %q", bad.shard, err, bad.want)
		}
	}
	if _, err := DecodePayload([]byte(`{"guest":"langid","data":"eA==","shard":` + ok + `}`)); err == nil || !strings.Contains(err.Error(), "a shard needs an S3 input and output") {
		t.Errorf("an inline shard: %v", err)
	}
}

func mustEncode(t *testing.T, p *Payload) []byte {
	t.Helper()
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
