package bnorm

// WithDtype makes the calls pass dtype whatever their slices' element type,
// so the tests can reach the library's answer to a dtype no Element type has
// through the binding's own path.
func WithDtype(d Descriptor, dtype int32) Descriptor {
	d.forcedDtype = dtype
	return d
}

// PretendLoadedVersion makes the binding believe the loaded library is
// version v, as an older libbnorm.so.1 would report, until restore is called.
// Not for use while other tests run calls concurrently.
func PretendLoadedVersion(v uint32) (restore func()) {
	old := loadedVersion.Swap(v)
	return func() { loadedVersion.Store(old) }
}

// NumPartials is the num_partials MergeStats passes for a partial_stats of
// length float64 values, a whole number of blocks: the int32 limit is out of
// reach of any array a test could allocate.
func NumPartials(d Descriptor, length int) (int32, error) {
	k, err := numPartials("MergeStats", "partial_stats", &d, length)
	return int32(k), err
}

// Targets and SetMaxTarget give the tests the library's SIMD target list and
// cap (process-wide: only for tests that run alone).
var (
	Targets      = targets
	SetMaxTarget = setMaxTarget
)
