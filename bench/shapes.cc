#include "shapes.h"

namespace bnorm_bench {

std::string LogicalShape::Name() const {
  std::string name = std::to_string(n) + "x" + std::to_string(c);
  if (rank == 4) name += "x" + std::to_string(h) + "x" + std::to_string(w);
  return name;
}

const char* LayoutName(Layout layout) { return layout == Layout::kNCHW ? "nchw" : "nhwc"; }

const char* ModeName(Mode mode) {
  switch (mode) {
    case Mode::kInference:
      return "infer";
    case Mode::kTraining:
      return "train";
    case Mode::kBackward:
      return "bwd";
  }
  return "?";
}

const char* PolicyName(Policy policy) { return policy == Policy::kCold ? "cold" : "hot"; }

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "f32";
    case DType::kBF16:
      return "bf16";
    case DType::kF16:
      return "f16";
  }
  return "?";
}

int64_t ElementBytes(DType dtype) { return dtype == DType::kF32 ? 4 : 2; }

bnorm_dtype ToBnormDType(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return BNORM_DTYPE_F32;
    case DType::kBF16:
      return BNORM_DTYPE_BF16;
    case DType::kF16:
      return BNORM_DTYPE_F16;
  }
  return BNORM_DTYPE_F32;
}

const std::vector<LogicalShape>& ShapeTable() {
  static const std::vector<LogicalShape> table = {
      // ResNet-50 training batch.
      {32, 64, 112, 112, 4},
      {32, 256, 56, 56, 4},
      {32, 512, 28, 28, 4},
      {32, 1024, 14, 14, 4},
      {32, 2048, 7, 7, 4},
      // Batch 1 (inference serving).
      {1, 64, 112, 112, 4},
      {1, 256, 56, 56, 4},
      {1, 2048, 7, 7, 4},
      // BatchNorm1d: rank 2.
      {256, 1024, 1, 1, 2},
      {4096, 512, 1, 1, 2},
      // Few channels (image input).
      {8, 3, 224, 224, 4},
      // Odd sizes: no dimension a multiple of a vector length.
      {4, 32, 17, 17, 4},
  };
  return table;
}

bnorm_shape ToBnormShape(const LogicalShape& s, Layout layout) {
  bnorm_shape shape{};
  shape.rank = s.rank;
  if (s.rank == 2) {
    shape.dims[0] = s.n;
    shape.dims[1] = s.c;
  } else if (layout == Layout::kNCHW) {
    shape.dims[0] = s.n;
    shape.dims[1] = s.c;
    shape.dims[2] = s.h;
    shape.dims[3] = s.w;
  } else {
    shape.dims[0] = s.n;
    shape.dims[1] = s.h;
    shape.dims[2] = s.w;
    shape.dims[3] = s.c;
  }
  return shape;
}

int64_t TensorsTouched(Mode mode) { return mode == Mode::kBackward ? 3 : 2; }

int64_t MinimalBytes(const LogicalShape& s, Mode mode, DType dtype) {
  return TensorsTouched(mode) * s.Elements() * ElementBytes(dtype);
}

int64_t ResidualTensorsTouched(Mode mode) { return mode == Mode::kBackward ? 5 : 3; }

int64_t ResidualMinimalBytes(const LogicalShape& s, Mode mode) {
  return ResidualTensorsTouched(mode) * s.Elements() * static_cast<int64_t>(sizeof(float));
}

}  // namespace bnorm_bench
