// Compiles the kernel families once per SIMD target (Highway's
// foreach_target) for one element type, and lists one KernelTable per target
// for dispatch.cc to choose from. Included by kernels_<type>.cc, which defines
// BNORM_KERNEL_ELEMENT first: one translation unit per element type, so that
// the three compile in parallel. kernels_bf16.cc also defines
// BNORM_CPU_ROUNDED_BF16_KERNELS for the AVX3 table of CpuRoundedBF16.
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

#if HWY_TARGET == HWY_AVX3 && defined(BNORM_CPU_ROUNDED_BF16_KERNELS)
// The bf16 kernels again with the CPU's rounding (CpuRoundedBF16), for CPUs
// with AVX512_BF16; called with bf16 pointers, which hold the same bits.
template <typename Arg>
struct BF16Argument {
  using type = Arg;
  static Arg Cast(Arg arg) { return arg; }
};
template <>
struct BF16Argument<const CpuRoundedBF16*> {
  using type = const bf16*;
  static const CpuRoundedBF16* Cast(const bf16* p) { return static_cast<const CpuRoundedBF16*>(p); }
};
template <>
struct BF16Argument<CpuRoundedBF16*> {
  using type = bf16*;
  static CpuRoundedBF16* Cast(bf16* p) { return static_cast<CpuRoundedBF16*>(p); }
};

template <auto kKernel>
struct CalledWithBF16;
template <typename... Args, void (*kKernel)(Args...)>
struct CalledWithBF16<kKernel> {
  static void Call(typename BF16Argument<Args>::type... args) {
    kKernel(BF16Argument<Args>::Cast(args)...);
  }
};

constexpr KernelTable<bf16> kCpuRoundedBF16Kernels = {
    HWY_TARGET,
    &CalledWithBF16<&NormalizeSpan<CpuRoundedBF16>>::Call,
    &CalledWithBF16<&NormalizeRows<CpuRoundedBF16>>::Call,
    &CalledWithBF16<&NormalizeRun<CpuRoundedBF16>>::Call,
    // The statistics and sums write no elements: the bf16 kernels serve.
    &MomentsSpan<bf16>,
    &MomentsRows<bf16>,
    &MomentsRun<bf16>,
    &GradSumsSpan<bf16>,
    &GradSumsRows<bf16>,
    &GradSumsRun<bf16>,
    &CalledWithBF16<&BackwardSpan<CpuRoundedBF16>>::Call,
    &CalledWithBF16<&BackwardRows<CpuRoundedBF16>>::Call,
    &CalledWithBF16<&BackwardRun<CpuRoundedBF16>>::Call,
};
#endif

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

#ifdef BNORM_CPU_ROUNDED_BF16_KERNELS
#if HWY_TARGETS & HWY_AVX3
const KernelTable<bf16>* const kCpuRoundedBF16Table = &N_AVX3::kCpuRoundedBF16Kernels;
#else
const KernelTable<bf16>* const kCpuRoundedBF16Table = nullptr;
#endif
#endif

}  // namespace bnorm
#endif  // HWY_ONCE
