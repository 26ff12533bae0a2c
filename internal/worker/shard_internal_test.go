package worker

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
	"unicode/utf8"
)

// setResultByUnmarshal is setResult as it was first written, unmarshalling
// every answer: the reference its fast paths are held to.
func setResultByUnmarshal(l *ShardLine, answer []byte) {
	answer = bytes.TrimSpace(answer)
	if json.Valid(answer) {
		var e struct {
			Error *string `json:"error"`
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(answer, &obj) == nil && len(obj) == 1 && json.Unmarshal(answer, &e) == nil && e.Error != nil {
			l.Error = *e.Error
			return
		}
		var b bytes.Buffer
		if json.Compact(&b, answer) == nil {
			l.Result = b.Bytes()
			return
		}
	}
	if !utf8.Valid(answer) {
		l.Error = "the guest's output is neither JSON nor UTF-8 text (" + strconv.Itoa(len(answer)) + " bytes)"
		return
	}
	l.Result, _ = json.Marshal(string(answer))
}

var answerSeeds = []string{
	`{"languages":[{"lang":"en","prob":0.9812}]}`, `{"error":"bad record"}`, `{"ERROR":"upper"}`, `{"Error":null}`,
	`{"\u0065rror":"escaped"}`, `{"error":"x","more":1}`, `{ "a" : [1, 2] }`, `"just a string"`, `plain text <&>`,
	"\xff\xfe", ` 42 `, `{"text":"say \"hi\"\u2028"}`, `{"error":{"nested":1}}`, ``, `{"eRrOr":"mixed"}`,
}

// encodeByJSON is a ShardLine as encoding/json's Encoder writes it.
func encodeByJSON(t *testing.T, l *ShardLine) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(l); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func checkShardLine(t *testing.T, answer []byte, key, sample string) {
	t.Helper()
	var got, want ShardLine
	setResult(&got, answer)
	setResultByUnmarshal(&want, answer)
	if got.Error != want.Error || !bytes.Equal(got.Result, want.Result) {
		t.Fatalf("setResult(%q) = {%q %q}, want {%q %q}", answer, got.Result, got.Error, want.Result, want.Error)
	}
	got.Index, got.Key, got.Sample = 12345, key, sample
	if line, ref := appendShardLine(nil, &got, jsonString(key)), encodeByJSON(t, &got); !bytes.Equal(line, ref) {
		t.Fatalf("appendShardLine = %s, encoding/json writes %s", line, ref)
	}
}

func TestShardLineMatchesEncodingJSON(t *testing.T) {
	for _, a := range answerSeeds {
		checkShardLine(t, []byte(a), "in/data <1>.jsonl", "")
		checkShardLine(t, []byte(a), "k\n\"q\"\xff", "shard/000001")
	}
}

func FuzzShardLine(f *testing.F) {
	for _, a := range answerSeeds {
		f.Add([]byte(a), "in/data.jsonl", "")
	}
	f.Fuzz(func(t *testing.T, answer []byte, key, sample string) { checkShardLine(t, answer, key, sample) })
}
