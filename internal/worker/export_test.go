package worker

import "github.com/wasmjobs/wasmjobs/internal/sandbox"

// Runtime is the worker's sandbox runtime, for running a guest directly.
func (w *Worker) Runtime() *sandbox.Runtime { return w.rt }

// GuestRunTotals are the guest-run histogram's sum (seconds) and count over
// all guests and outcomes.
func (m *Metrics) GuestRunTotals() (seconds float64, runs uint64) {
	families, err := m.reg.Gather()
	if err != nil {
		return 0, 0
	}
	for _, f := range families {
		if f.GetName() != "wasmjobs_guest_run_seconds" {
			continue
		}
		for _, mt := range f.GetMetric() {
			seconds += mt.GetHistogram().GetSampleSum()
			runs += mt.GetHistogram().GetSampleCount()
		}
	}
	return seconds, runs
}

// GuestSlots is how many guests the worker runs at once.
func (w *Worker) GuestSlots() int { return cap(w.jobs.slots) }
