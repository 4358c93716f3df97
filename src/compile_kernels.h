// Compiles the kernel families once per SIMD target (Highway's
// foreach_target) for one element type, and lists one KernelTable per target
// for dispatch.cc to choose from. Included by kernels_<type>.cc, which defines
// BNORM_KERNEL_ELEMENT first: one translation unit per element type, so that
// the three compile in parallel.
#ifndef BNORM_KERNEL_ELEMENT
#error "define BNORM_KERNEL_ELEMENT before including compile_kernels.h"
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/compile_kernels.h"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "src/accumulate-inl.h"
#include "src/backward-inl.h"
#include "src/element_types.h"
#include "src/kernel_table.h"
#include "src/kernels.h"
#include "src/normalize-inl.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {

// A constant, not a function returning one: reading it runs no code compiled
// for this target, so it is safe to inspect on a CPU that lacks the target.
constexpr KernelTable<BNORM_KERNEL_ELEMENT> kKernels = {
    HWY_TARGET,
    &NormalizeSpan<BNORM_KERNEL_ELEMENT>,
    &NormalizeRows<BNORM_KERNEL_ELEMENT>,
    &NormalizeRun<BNORM_KERNEL_ELEMENT>,
    &MomentsSpan<BNORM_KERNEL_ELEMENT>,
    &MomentsRows<BNORM_KERNEL_ELEMENT>,
    &MomentsRun<BNORM_KERNEL_ELEMENT>,
    &GradSumsSpan<BNORM_KERNEL_ELEMENT>,
    &GradSumsRows<BNORM_KERNEL_ELEMENT>,
    &GradSumsRun<BNORM_KERNEL_ELEMENT>,
    &BackwardSpan<BNORM_KERNEL_ELEMENT>,
    &BackwardRows<BNORM_KERNEL_ELEMENT>,
    &BackwardRun<BNORM_KERNEL_ELEMENT>,
};

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace bnorm {

// Highway's own order: best target first, null where a target was not
// compiled, the scalar fallback last.
template <>
const KernelTable<BNORM_KERNEL_ELEMENT>* const CompiledKernels<BNORM_KERNEL_ELEMENT>::kTables[] = {
    HWY_CHOOSE_TARGET_LIST(kKernels), HWY_CHOOSE_FALLBACK(kKernels)};

}  // namespace bnorm
#endif  // HWY_ONCE
