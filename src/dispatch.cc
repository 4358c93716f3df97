#include "src/dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include <atomic>
#include <vector>

#include "hwy/targets.h"
#include "src/kernels.h"

namespace bnorm {
namespace {

// Names a cap may use. Highway's lower target bits are better targets.
struct NamedTarget {
  const char* name;
  int64_t target;
};
constexpr NamedTarget kNamedTargets[] = {
    {"AVX3_DL", HWY_AVX3_DL}, {"AVX3", HWY_AVX3},   {"AVX2", HWY_AVX2},
    {"SSE4", HWY_SSE4},       {"SSSE3", HWY_SSSE3}, {"SCALAR", HWY_SCALAR},
};

// Looks a cap up by name: 0 for no cap, -1 for an unknown name.
int64_t ParseCap(const char* name) {
  if (name == nullptr || name[0] == '\0' || strcasecmp(name, "BEST") == 0) return 0;
  for (const NamedTarget& t : kNamedTargets) {
    if (strcasecmp(name, t.name) == 0) return t.target;
  }
  return -1;
}

struct Targets {
  std::vector<TargetKernels> runnable;  // best first
  Targets() {
    const int64_t supported = hwy::SupportedTargets();
    for (size_t i = 0; i < kNumCompiledTargets; ++i) {
      const KernelTable<float>* f32 = CompiledKernels<float>::kTables[i];
      // The scalar fallback runs everywhere, whatever SupportedTargets says.
      if (f32 == nullptr || ((f32->target & supported) == 0 && f32->target != HWY_SCALAR)) continue;
      runnable.push_back(TargetKernels{
          f32->target, {f32, CompiledKernels<bf16>::kTables[i], CompiledKernels<f16>::kTables[i]}});
    }
  }
};

const Targets& GetTargets() {
  static const Targets targets;
  return targets;
}

const TargetKernels* BestWithin(int64_t cap) {
  const Targets& targets = GetTargets();
  for (const TargetKernels& kernels : targets.runnable) {
    if (cap == 0 || kernels.target >= cap) return &kernels;
  }
  return &targets.runnable.back();
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
  return index < targets.runnable.size() ? TargetName(targets.runnable[index].target) : "";
}

bool SetMaxTarget(const char* name) {
  const int64_t cap = ParseCap(name);
  if (cap < 0) return false;
  Active().store(BestWithin(cap), std::memory_order_release);
  return true;
}

const char* TargetName(int64_t target) {
  for (const NamedTarget& t : kNamedTargets) {
    if (t.target == target) return t.name;
  }
  return hwy::TargetName(target);
}

}  // namespace bnorm
