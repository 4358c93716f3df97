// Choice of the SIMD target that bnorm's calls use, independent of Highway's
// process-wide selection (which other Highway users in the process share).
#ifndef BNORM_SRC_DISPATCH_H_
#define BNORM_SRC_DISPATCH_H_

#include <stddef.h>

#include <tuple>

#include "src/element_types.h"
#include "src/kernel_table.h"

namespace bnorm {

// One target's kernels for every element type.
struct TargetKernels {
  const char* name;  // as bnorm_active_target gives it
  std::tuple<const KernelTable<float>*, const KernelTable<bf16>*, const KernelTable<f16>*> tables;

  template <typename T>
  const KernelTable<T>& For() const {
    return *std::get<const KernelTable<T>*>(tables);
  }
};

// The kernels for the best target this CPU runs within the current cap. Load
// it once per call, so a call runs on one target even if the cap changes.
const TargetKernels& ActiveKernels();

// Targets compiled in and runnable on this CPU, best first; the last is the
// scalar fallback.
size_t NumAvailableTargets();
const char* AvailableTargetName(size_t index);

// Caps the target at the one named (case-insensitive; a name in dispatch.cc's
// kNamedTargets, runnable here or not). nullptr, "" or "BEST" lifts the cap.
// Returns false for an unknown name, leaving the cap as it was.
bool SetMaxTarget(const char* name);

}  // namespace bnorm

#endif  // BNORM_SRC_DISPATCH_H_
