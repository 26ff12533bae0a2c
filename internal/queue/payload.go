package queue

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/wasmjobs/wasmjobs/internal/records"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
)

// MaxInlineBytes is the largest input that may travel inside the payload
// (the Data field) instead of in S3.
const MaxInlineBytes = 64 << 10

// ErrInvalidPayload is wrapped by every payload validation error.
var ErrInvalidPayload = errors.New("invalid job payload")

// Payload is the JSON body of a wasmjobs task. Exactly one of Input and Data
// is set.
type Payload struct {
	// Guest is a registered guest name or a digest "sha256:<64 hex>".
	Guest string `json:"guest"`
	// Input is the input object as an s3://bucket/key URL.
	Input string `json:"input,omitempty"`
	// Data is a small input carried inline (base64 in JSON), at most
	// MaxInlineBytes. A non-nil empty Data is an empty inline input and
	// travels as "data": "".
	Data []byte `json:"data,omitzero"`
	// Output is the output object as an s3://bucket/key URL. When empty, a
	// job with an S3 input writes to the worker's default output location and
	// an inline job returns its result through asynq's result writer.
	Output string `json:"output,omitempty"`
	// Params are handed to the guest as argv key=value pairs and as the JSON
	// environment variable WASMJOBS_PARAMS.
	Params map[string]string `json:"params,omitempty"`
	// Batch is the id of the dataset run this job belongs to, if any.
	Batch string `json:"batch,omitempty"`
	// Shard makes the job one shard of a record file: the guest runs on
	// each record of Input's byte range, and Output gets one JSON line per
	// record. Record batches' planners write it.
	Shard *Shard `json:"shard,omitempty"`
}

// Shard is the part of a record file one job runs: bytes [Start, End) of
// the input object, version ETag, holding Count records, the first being
// the batch's record First.
type Shard struct {
	records.Config
	Start int64  `json:"start"`
	End   int64  `json:"end"`
	First int64  `json:"first"`
	Count int64  `json:"count"`
	ETag  string `json:"etag,omitempty"`
}

// MaxShardBytes bounds a shard's byte range.
const MaxShardBytes = 256 << 20

func (s *Shard) validate() error {
	if err := s.Config.Validate(); err != nil {
		return err
	}
	switch {
	case s.Start < 0 || s.End <= s.Start:
		return fmt.Errorf("byte range %d-%d is empty or negative", s.Start, s.End)
	case s.End-s.Start > MaxShardBytes:
		return fmt.Errorf("byte range of %d bytes, at most %d allowed", s.End-s.Start, MaxShardBytes)
	case s.Count <= 0 || s.First < 0:
		return fmt.Errorf("%d records from %d: want at least one", s.Count, s.First)
	case len(s.Field) > 256 || len(s.Member) > 32 || len(s.ETag) > 256:
		return errors.New("field, member or etag too long")
	}
	return nil
}

var (
	guestNameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	guestDigestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	paramKeyRE    = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
)

// maxParams bounds the number of parameters of one job.
const maxParams = 64

// maxParamValue bounds the length of one parameter value.
const maxParamValue = 4096

// Validate reports the first problem with p, wrapped in ErrInvalidPayload.
func (p *Payload) Validate() error {
	if err := ValidateGuestRef(p.Guest); err != nil {
		return err
	}
	switch {
	case p.Input != "" && p.Data != nil:
		return fmt.Errorf("%w: both input and data are set; give exactly one", ErrInvalidPayload)
	case p.Input == "" && p.Data == nil:
		return fmt.Errorf("%w: neither input nor data is set; give exactly one", ErrInvalidPayload)
	case p.Input != "":
		if _, err := s3url.ParseObjectURL(p.Input); err != nil {
			return fmt.Errorf("%w: input: %w", ErrInvalidPayload, err)
		}
	case len(p.Data) > MaxInlineBytes:
		return fmt.Errorf("%w: inline data is %d bytes, more than the %d allowed; upload it to S3 and pass its s3:// URL as input", ErrInvalidPayload, len(p.Data), MaxInlineBytes)
	}
	if p.Output != "" {
		if _, err := s3url.ParseObjectURL(p.Output); err != nil {
			return fmt.Errorf("%w: output: %w", ErrInvalidPayload, err)
		}
	}
	if len(p.Params) > maxParams {
		return fmt.Errorf("%w: %d params, at most %d allowed", ErrInvalidPayload, len(p.Params), maxParams)
	}
	for k, v := range p.Params {
		if !paramKeyRE.MatchString(k) {
			return fmt.Errorf("%w: param name %q: use 1-64 letters, digits, '_', '.' or '-'", ErrInvalidPayload, k)
		}
		if len(v) > maxParamValue {
			return fmt.Errorf("%w: param %q is %d bytes, at most %d allowed", ErrInvalidPayload, k, len(v), maxParamValue)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return fmt.Errorf("%w: param %q contains a NUL byte", ErrInvalidPayload, k)
		}
		// JSON would silently replace invalid bytes with U+FFFD.
		if !utf8.ValidString(v) {
			return fmt.Errorf("%w: param %q is not valid UTF-8", ErrInvalidPayload, k)
		}
	}
	if p.Shard != nil {
		if p.Input == "" || p.Output == "" {
			return fmt.Errorf("%w: a shard needs an S3 input and output", ErrInvalidPayload)
		}
		if err := p.Shard.validate(); err != nil {
			return fmt.Errorf("%w: shard: %w", ErrInvalidPayload, err)
		}
	}
	if len(p.Batch) > 128 {
		return fmt.Errorf("%w: batch id longer than 128 bytes", ErrInvalidPayload)
	}
	if !utf8.ValidString(p.Batch) {
		return fmt.Errorf("%w: batch id is not valid UTF-8", ErrInvalidPayload)
	}
	return nil
}

// ValidateGuestRef checks a guest reference: a name of lowercase letters,
// digits, '.', '_' and '-' (at most 63), or a digest "sha256:<64 hex>".
func ValidateGuestRef(ref string) error {
	switch {
	case ref == "":
		return fmt.Errorf("%w: guest is empty; name a registered guest or a sha256:<hex> digest", ErrInvalidPayload)
	case strings.HasPrefix(ref, "sha256:"):
		if !guestDigestRE.MatchString(ref) {
			return fmt.Errorf("%w: guest digest %q: want sha256: followed by 64 lowercase hex digits", ErrInvalidPayload, ref)
		}
	case !guestNameRE.MatchString(ref):
		return fmt.Errorf("%w: guest name %q: use 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit", ErrInvalidPayload, ref)
	}
	return nil
}

// DecodePayload parses and validates a task payload: exactly one JSON object
// with only the documented keys, spelled exactly.
func DecodePayload(b []byte) (*Payload, error) {
	p, ok := decodePlainPayload(b)
	if !ok {
		return decodePayloadStrict(b)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// decodePlainPayload decodes b in one pass if it is what every producer
// writes: a JSON object whose keys are payload fields, each once, spelled
// exactly and without escapes, and whose values are strings without escapes
// or control characters (and valid UTF-8), params an object of such strings.
// Anything else is left to decodePayloadStrict (ok is false), which accepts
// the same payloads as this and explains what is wrong with the others; this
// one spares the workers encoding/json's reflection on every job.
func decodePlainPayload(b []byte) (*Payload, bool) {
	var p Payload
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		return nil, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return &p, skipSpace(b, i+1) == len(b)
	}
	var seen uint8
	for {
		key, j, ok := plainString(b, i)
		if !ok {
			return nil, false
		}
		if i = skipSpace(b, j); i == len(b) || b[i] != ':' {
			return nil, false
		}
		i = skipSpace(b, i+1)
		bit := payloadFieldBit(key)
		if bit == 0 || seen&bit != 0 {
			return nil, false
		}
		seen |= bit
		if bit == fieldShard {
			return nil, false // an object: decodePayloadStrict reads it
		}
		if bit == fieldParams {
			if p.Params, j, ok = plainParams(b, i); !ok {
				return nil, false
			}
		} else {
			v, end, ok := plainString(b, i)
			if !ok {
				return nil, false
			}
			j = end
			switch bit {
			case fieldGuest:
				p.Guest = string(v)
			case fieldInput:
				p.Input = string(v)
			case fieldOutput:
				p.Output = string(v)
			case fieldBatch:
				p.Batch = string(v)
			case fieldData:
				// As encoding/json decodes a []byte.
				data := make([]byte, base64.StdEncoding.DecodedLen(len(v)))
				n, err := base64.StdEncoding.Decode(data, v)
				if err != nil {
					return nil, false
				}
				p.Data = data[:n]
			}
		}
		if i = skipSpace(b, j); i == len(b) {
			return nil, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return &p, skipSpace(b, i+1) == len(b)
		default:
			return nil, false
		}
	}
}

// The payload's fields, as bits of a set.
const (
	fieldGuest uint8 = 1 << iota
	fieldInput
	fieldData
	fieldOutput
	fieldParams
	fieldBatch
	fieldShard
)

// payloadFieldBit is the bit of the payload field named key (its JSON name,
// exactly; encoding/json alone would also take "Guest" or "INPUT"), or 0.
func payloadFieldBit(key []byte) uint8 {
	switch string(key) {
	case "guest":
		return fieldGuest
	case "input":
		return fieldInput
	case "data":
		return fieldData
	case "output":
		return fieldOutput
	case "params":
		return fieldParams
	case "batch":
		return fieldBatch
	case "shard":
		return fieldShard
	}
	return 0
}

// plainParams decodes the object of plain strings at b[i], returning the
// index past it.
func plainParams(b []byte, i int) (map[string]string, int, bool) {
	if i == len(b) || b[i] != '{' {
		return nil, 0, false
	}
	m := map[string]string{} // as encoding/json makes it, also for {}
	if i = skipSpace(b, i+1); i < len(b) && b[i] == '}' {
		return m, i + 1, true
	}
	for {
		k, j, ok := plainString(b, i)
		if !ok {
			return nil, 0, false
		}
		if i = skipSpace(b, j); i == len(b) || b[i] != ':' {
			return nil, 0, false
		}
		v, j, ok := plainString(b, skipSpace(b, i+1))
		if !ok {
			return nil, 0, false
		}
		m[string(k)] = string(v) // a repeated key: the last wins, as in encoding/json
		if i = skipSpace(b, j); i == len(b) {
			return nil, 0, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return m, i + 1, true
		default:
			return nil, 0, false
		}
	}
}

// plainString returns the contents of the JSON string at b[i] and the index
// past it, if it has no escapes and no control characters and is valid
// UTF-8 (encoding/json would replace invalid bytes with U+FFFD).
func plainString(b []byte, i int) ([]byte, int, bool) {
	if i == len(b) || b[i] != '"' {
		return nil, 0, false
	}
	ascii := true
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			s := b[i+1 : j]
			return s, j + 1, ascii || utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return nil, 0, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, 0, false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// decodePayloadStrict is DecodePayload in two passes: the keys, exactly,
// then the fields.
func decodePayloadStrict(b []byte) (*Payload, error) {
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&fields); err != nil {
		return nil, fmt.Errorf("%w: not a JSON job object: %w", ErrInvalidPayload, err)
	}
	if fields == nil {
		return nil, fmt.Errorf("%w: not a JSON job object: null", ErrInvalidPayload)
	}
	// dec.More would miss a stray '}' or ']'.
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrInvalidPayload)
	}
	for k := range fields {
		if payloadFieldBit([]byte(k)) == 0 {
			return nil, fmt.Errorf("%w: unknown field %q", ErrInvalidPayload, k)
		}
	}
	var p Payload
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%w: not a JSON job object: %w", ErrInvalidPayload, err)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// Encode validates p and returns its JSON encoding.
func (p *Payload) Encode() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(p)
}
