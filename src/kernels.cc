// Compiles the kernel families once per SIMD target (Highway's foreach_target)
// and lists one KernelTable per target for dispatch.cc to choose from.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/kernels.cc"
#include "src/kernels.h"

#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "src/accumulate-inl.h"
#include "src/backward-inl.h"
#include "src/kernel_table.h"
#include "src/normalize-inl.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {

// A constant, not a function returning one: reading it runs no code compiled
// for this target, so it is safe to inspect on a CPU that lacks the target.
const KernelTable<float> kKernelsF32 = {
    HWY_TARGET,           &NormalizeSpan<float>, &NormalizeRows<float>,
    &MomentsSpan<float>,  &MomentsRows<float>,   &GradSumsSpan<float>,
    &GradSumsRows<float>, &BackwardSpan<float>,  &BackwardRows<float>,
};

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace bnorm {

// Highway's own order: best target first, null where a target was not
// compiled, the scalar fallback last.
const KernelTable<float>* const kCompiledKernelsF32[] = {HWY_CHOOSE_TARGET_LIST(kKernelsF32),
                                                         HWY_CHOOSE_FALLBACK(kKernelsF32)};
const size_t kNumCompiledKernelsF32 = sizeof(kCompiledKernelsF32) / sizeof(kCompiledKernelsF32[0]);

}  // namespace bnorm
#endif  // HWY_ONCE
