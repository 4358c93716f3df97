// The kernel tables compiled into this library: for each element type, one
// per SIMD target, in the same target order for every type.
#ifndef BNORM_SRC_KERNELS_H_
#define BNORM_SRC_KERNELS_H_

#include <stddef.h>

#include "hwy/highway.h"
#include "src/element_types.h"
#include "src/kernel_table.h"

namespace bnorm {

// Entries of each list: Highway's dynamic target slots plus the fallback.
constexpr size_t kNumCompiledTargets = HWY_MAX_DYNAMIC_TARGETS + 1;

template <typename T>
struct CompiledKernels {
  // Best target first; entries are null for targets not compiled.
  static const KernelTable<T>* const kTables[kNumCompiledTargets];
};

template <>
const KernelTable<float>* const CompiledKernels<float>::kTables[kNumCompiledTargets];
template <>
const KernelTable<bf16>* const CompiledKernels<bf16>::kTables[kNumCompiledTargets];
template <>
const KernelTable<f16>* const CompiledKernels<f16>::kTables[kNumCompiledTargets];

// The AVX3 target's bf16 kernels with the CPU's rounding (CpuRoundedBF16),
// for CPUs with AVX512_BF16; null where AVX3 was not compiled.
extern const KernelTable<bf16>* const kCpuRoundedBF16Table;

}  // namespace bnorm

#endif  // BNORM_SRC_KERNELS_H_
