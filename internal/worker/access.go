package worker

import "github.com/wasmjobs/wasmjobs/internal/s3url"

// checkInput refuses an input object jobs may not read.
func (h *handler) checkInput(u s3url.ObjectURL) error {
	return h.cfg.Access.CheckInput(u, h.guestBucket())
}

// checkOutput refuses an output object jobs may not write.
func (h *handler) checkOutput(u s3url.ObjectURL) error {
	return h.cfg.Access.CheckJobOutput(u, h.guestBucket())
}

func (h *handler) guestBucket() string { return h.cfg.Guests.Bucket() }
