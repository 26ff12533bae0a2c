package nn

// PeakInstanceBytes is the most tensor and model bytes one released instance
// of m held at once.
func (m *Module) PeakInstanceBytes() uint64 { return m.peakHeld.Load() }
