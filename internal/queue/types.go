package queue

// Task types, stable strings shared with the Node client and the workers.
const (
	// TypeImage is the asynq task type of image jobs.
	TypeImage = "wasm:image"
	// TypeText is the asynq task type of text jobs.
	TypeText = "wasm:text"
	// TypeBatch is the task type of a batch plan: a worker lists the batch's
	// input prefix and enqueues one job per object.
	TypeBatch = "wasm:batch"
)

// TaskType maps a job kind, "image" or "text", to its task type; a task
// type (TypeImage, TypeText) maps to itself. false means neither.
func TaskType(kind string) (string, bool) {
	switch kind {
	case "image", TypeImage:
		return TypeImage, true
	case "text", TypeText:
		return TypeText, true
	}
	return "", false
}
