package queue

import (
	"reflect"
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
