#include "src/dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#if HWY_ARCH_X86
#include <cpuid.h>
#endif

#include <atomic>
#include <vector>

#include "hwy/targets.h"
#include "src/kernels.h"

namespace bnorm {
namespace {

// Names a cap may use, best first. AVX3_BF16 is AVX3's kernels with the CPU's
// own bf16 rounding (CpuRoundedBF16): bnorm's own target, since Highway 1.0.3
// has none with AVX512_BF16.
struct NamedTarget {
  const char* name;
  int64_t target;  // Highway's target bit
  bool cpu_rounded_bf16;
};
constexpr NamedTarget kNamedTargets[] = {
    {"AVX3_DL", HWY_AVX3_DL, false}, {"AVX3_BF16", HWY_AVX3, true}, {"AVX3", HWY_AVX3, false},
    {"AVX2", HWY_AVX2, false},       {"SSE4", HWY_SSE4, false},     {"SSSE3", HWY_SSSE3, false},
    {"SCALAR", HWY_SCALAR, false},
};
constexpr size_t kNumRanks = sizeof(kNamedTargets) / sizeof(kNamedTargets[0]);

// A compiled target's rank in kNamedTargets. A target not listed there (none
// on x86 with Highway 1.0.3) ranks with the best, so that a cap below it
// leaves it out.
size_t RankOf(int64_t target, bool cpu_rounded_bf16) {
  for (size_t rank = 0; rank < kNumRanks; ++rank) {
    const NamedTarget& t = kNamedTargets[rank];
    if (t.target == target && t.cpu_rounded_bf16 == cpu_rounded_bf16) return rank;
  }
  return 0;
}

const char* NameOf(int64_t target, bool cpu_rounded_bf16) {
  for (const NamedTarget& t : kNamedTargets) {
    if (t.target == target && t.cpu_rounded_bf16 == cpu_rounded_bf16) return t.name;
  }
  return hwy::TargetName(target);
}

// Looks a cap up by name: its rank, 0 (the best) for no cap, -1 for an
// unknown name.
int64_t ParseCap(const char* name) {
  if (name == nullptr || name[0] == '\0' || strcasecmp(name, "BEST") == 0) return 0;
  for (size_t rank = 0; rank < kNumRanks; ++rank) {
    if (strcasecmp(name, kNamedTargets[rank].name) == 0) return static_cast<int64_t>(rank);
  }
  return -1;
}

// CPUID.(EAX=7, ECX=1):EAX bit 5. Asked only where AVX3 runs, so the OS
// already saves the AVX-512 registers.
bool CpuHasAVX512BF16() {
#if HWY_ARCH_X86
  unsigned eax, ebx, ecx, edx;
  return __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) && (eax & (1u << 5)) != 0;
#else
  return false;
#endif
}

struct RankedKernels {
  size_t rank;
  TargetKernels kernels;
};

struct Targets {
  std::vector<RankedKernels> runnable;  // best first
  Targets() {
    const int64_t supported = hwy::SupportedTargets();
    for (size_t i = 0; i < kNumCompiledTargets; ++i) {
      const KernelTable<float>* f32 = CompiledKernels<float>::kTables[i];
      // The scalar fallback runs everywhere, whatever SupportedTargets says.
      if (f32 == nullptr || ((f32->target & supported) == 0 && f32->target != HWY_SCALAR)) continue;
      const auto add = [&](bool cpu_rounded_bf16, const KernelTable<bf16>* bf16_kernels) {
        runnable.push_back({RankOf(f32->target, cpu_rounded_bf16),
                            {NameOf(f32->target, cpu_rounded_bf16),
                             {f32, bf16_kernels, CompiledKernels<f16>::kTables[i]}}});
      };
      if (f32->target == HWY_AVX3 && kCpuRoundedBF16Table != nullptr && CpuHasAVX512BF16()) {
        add(true, kCpuRoundedBF16Table);
      }
      add(false, CompiledKernels<bf16>::kTables[i]);
    }
  }
};

const Targets& GetTargets() {
  static const Targets targets;
  return targets;
}

const TargetKernels* BestWithin(int64_t cap_rank) {
  const Targets& targets = GetTargets();
  for (const RankedKernels& entry : targets.runnable) {
    if (entry.rank >= static_cast<size_t>(cap_rank)) return &entry.kernels;
  }
  return &targets.runnable.back().kernels;
}

std::atomic<const TargetKernels*>& Active() {
  // The initial cap comes from the environment, read once.
  static std::atomic<const TargetKernels*> active{[] {
    const char* name = getenv("BNORM_MAX_ISA");
    const int64_t cap = ParseCap(name);
    if (cap < 0) {
      // No call to return an error from: say it once rather than run silently uncapped.
      fprintf(stderr, "bnorm: BNORM_MAX_ISA=%s is not a target name; no cap applied\n", name);
    }
    return BestWithin(cap < 0 ? 0 : cap);
  }()};
  return active;
}

}  // namespace

const TargetKernels& ActiveKernels() { return *Active().load(std::memory_order_acquire); }

size_t NumAvailableTargets() { return GetTargets().runnable.size(); }

const char* AvailableTargetName(size_t index) {
  const Targets& targets = GetTargets();
  return index < targets.runnable.size() ? targets.runnable[index].kernels.name : "";
}

bool SetMaxTarget(const char* name) {
  const int64_t cap = ParseCap(name);
  if (cap < 0) return false;
  Active().store(BestWithin(cap), std::memory_order_release);
  return true;
}

}  // namespace bnorm
