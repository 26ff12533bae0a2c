package jobs

import "github.com/wasmjobs/wasmjobs/internal/queue"

// Task types, stable strings shared with the Node client and the workers.
const (
	// TypeImage is the asynq task type of image jobs.
	TypeImage = queue.TypeImage
	// TypeText is the asynq task type of text jobs.
	TypeText = queue.TypeText
)

// MaxInlineBytes is the largest input that may travel inside the payload
// (the Data field) instead of in S3.
const MaxInlineBytes = queue.MaxInlineBytes

// ErrInvalidPayload is wrapped by every payload validation error.
var ErrInvalidPayload = queue.ErrInvalidPayload

// Payload is the JSON body of a wasmjobs task. Exactly one of Input and Data
// is set. Validate reports its first problem; Encode validates it and
// returns its JSON.
type Payload = queue.Payload

// DecodePayload parses and validates a task payload: exactly one JSON object
// with only the documented keys, spelled exactly.
func DecodePayload(b []byte) (*Payload, error) { return queue.DecodePayload(b) }

// ValidateGuestRef checks a guest reference: a name of lowercase letters,
// digits, '.', '_' and '-' (at most 63), or a digest "sha256:<64 hex>".
func ValidateGuestRef(ref string) error { return queue.ValidateGuestRef(ref) }
