package bnorm

// WithDtype sets the tensor dtype, which the []float32 API never changes, so
// the tests can reach BNORM_ERR_UNSUPPORTED through the binding's own path.
func WithDtype(d Descriptor, dtype int32) Descriptor {
	d.dtype = dtype
	return d
}
