// The kernel tables compiled into this library, one per SIMD target.
#ifndef BNORM_SRC_KERNELS_H_
#define BNORM_SRC_KERNELS_H_

#include <stddef.h>

#include "src/kernel_table.h"

namespace bnorm {

// Best target first; entries are null for targets not compiled.
extern const KernelTable<float>* const kCompiledKernelsF32[];
extern const size_t kNumCompiledKernelsF32;

}  // namespace bnorm

#endif  // BNORM_SRC_KERNELS_H_
