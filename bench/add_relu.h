// The unfused residual block's extra passes (the bnorm_then_addrelu rows):
// what a program does around a batch norm call without a fused residual, as
// straightforward loops the compiler vectorizes. Not bnorm code: bnorm's
// fused calls do this inside their own pass over memory.
#ifndef BNORM_BENCH_ADD_RELU_H_
#define BNORM_BENCH_ADD_RELU_H_

#include <cstdint>

namespace bnorm_bench {

// y = max(y + residual, 0), in place over n floats, with `threads` OpenMP
// threads: PyTorch's `out += identity; out = relu(out)` (ReLU in place).
// Reads y and residual, writes y.
void AddReluInPlace(float* y, const float* residual, int64_t n, int threads);

// g = dy where y > 0, else 0: ReLU's backward from its output y. The add
// before the ReLU passes g unchanged to both its inputs, so g is both the
// residual's gradient and the batch norm's output gradient. Reads dy and y,
// writes g.
void ReluBackward(const float* dy, const float* y, float* g, int64_t n, int threads);

}  // namespace bnorm_bench

#endif  // BNORM_BENCH_ADD_RELU_H_
