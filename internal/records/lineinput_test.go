package records

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
	"unicode/utf8"
)

// lineInputByMap is lineInput as it was first written, with a map of the
// object's members: the reference objectField and its fast paths are held
// to.
func lineInputByMap(rec *Record, text []byte, c Config) {
	if !utf8.Valid(text) {
		rec.Err = "not valid UTF-8"
		return
	}
	if !json.Valid(text) {
		rec.Err = "not valid JSON"
		return
	}
	v := text
	if c.Field != "" {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(text, &obj); err != nil {
			rec.Err = "not a JSON object, so it has no field " + strconv.Quote(c.Field)
			return
		}
		f, ok := obj[c.Field]
		if !ok {
			rec.Err = "no field " + strconv.Quote(c.Field)
			return
		}
		v = f
	}
	rec.Value = compact(v)
	var s string
	if json.Unmarshal(v, &s) == nil {
		rec.Input = []byte(s)
	} else {
		rec.Input = rec.Value
	}
}

var lineInputSeeds = []string{
	`{"text":"hello"}`, ` { "text" : "a b" , "n" : 1 } `, `{"n":1}`, `{"text":"x","text":"y"}`,
	`{"te\u0078t":"escaped key"}`, `{"text":"say \"hi\"\n"}`, `{"text":{"nested":[1,{"text":"no"}]}}`,
	`{"a":"}","text":[1, 2 ,3]}`, `null`, `"text"`, `[{"text":"x"}]`, `{}`, `{"text":null}`, `{"text":-1.5e3}`,
	`{"a":"\\","text":"after backslash"}`, `{"text":"é\u00e9"}`, `{bad`, "{\"text\":\"\xff\"}", `{"text":true}`,
}

func TestLineInputMatchesMap(t *testing.T) {
	for _, s := range lineInputSeeds {
		checkLineInput(t, []byte(s), "text")
		checkLineInput(t, []byte(s), "")
	}
}

func FuzzLineInput(f *testing.F) {
	for _, s := range lineInputSeeds {
		f.Add([]byte(s), "text")
	}
	f.Fuzz(func(t *testing.T, text []byte, field string) { checkLineInput(t, text, field) })
}

func checkLineInput(t *testing.T, text []byte, field string) {
	t.Helper()
	c := Config{Format: JSONL, Field: field}
	var got, want Record
	lineInput(&got, text, c)
	lineInputByMap(&want, text, c)
	if got.Err != want.Err || !bytes.Equal(got.Value, want.Value) || !bytes.Equal(got.Input, want.Input) {
		t.Fatalf("%q field %q: got {%q %q %q}, want {%q %q %q}", text, field, got.Value, got.Input, got.Err, want.Value, want.Input, want.Err)
	}
}
