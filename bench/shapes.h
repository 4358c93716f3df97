// The benchmark's shape table and the names every row is keyed by.
//
// bench/torch_bench.py keeps a copy of this table (SHAPES); change both together.
#ifndef BNORM_BENCH_SHAPES_H_
#define BNORM_BENCH_SHAPES_H_

#include <bnorm/bnorm.h>

#include <cstdint>
#include <string>
#include <vector>

namespace bnorm_bench {

// A tensor shape in PyTorch's logical order: (N, C) or (N, C, H, W).
struct LogicalShape {
  int64_t n, c, h, w;
  int rank;  // 2 (BatchNorm1d) or 4 (BatchNorm2d)

  int64_t Elements() const { return n * c * h * w; }
  // Values each channel's statistics are taken over.
  int64_t ValuesPerChannel() const { return n * h * w; }
  // "32x256x56x56" or "256x1024": the key used in benchmark names and by compare.py.
  std::string Name() const;
};

enum class Layout { kNCHW, kNHWC };
enum class Mode { kInference, kTraining, kBackward };
enum class Policy { kCold, kHot };
// The tensors' element type (bnorm_desc.dtype). Per-channel vectors stay float
// in every dtype, so only the tensor traffic shrinks with the element size.
enum class DType { kF32, kBF16, kF16 };

const char* LayoutName(Layout layout);  // "nchw" / "nhwc"
const char* ModeName(Mode mode);        // "infer" / "train" / "bwd"
const char* PolicyName(Policy policy);  // "cold" / "hot"
const char* DTypeName(DType dtype);     // "f32" / "bf16" / "f16"
int64_t ElementBytes(DType dtype);      // 4 / 2 / 2
bnorm_dtype ToBnormDType(DType dtype);

// The fixed table: ResNet-50 layers, batch 1, BatchNorm1d, few channels, odd sizes.
const std::vector<LogicalShape>& ShapeTable();

// bnorm's dims are in memory order: (N, C, H, W) for NCHW, (N, H, W, C) for NHWC.
// Rank 2 is (N, C) for both layouts: the same memory.
bnorm_shape ToBnormShape(const LogicalShape& s, Layout layout);

// The minimal traffic each mode must cause: forward reads x and writes y
// (8 B/element in f32, 4 in bf16/f16); backward reads x and dy and writes dx
// (12 B/element in f32, 6 in bf16/f16).
int64_t TensorsTouched(Mode mode);
int64_t MinimalBytes(const LogicalShape& s, Mode mode, DType dtype = DType::kF32);

// The same for the residual block (batch norm, + residual, ReLU; f32 only): forward
// reads x and the residual and writes y (12 B/element); backward reads x, dy
// and y (the forward output, whose sign masks dy) and writes dx and
// d_residual (20 B/element).
int64_t ResidualTensorsTouched(Mode mode);
int64_t ResidualMinimalBytes(const LogicalShape& s, Mode mode);

}  // namespace bnorm_bench

#endif  // BNORM_BENCH_SHAPES_H_
