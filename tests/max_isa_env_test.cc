// Run by ctest once per value of BNORM_MAX_ISA: the variable caps the target
// the library starts with, the way bnorm_set_max_target does.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <string>
#include <vector>

#include "bnorm/bnorm.h"
#include "tests/test_support.h"

namespace bnorm_test {
namespace {

TEST(MaxIsaEnvironmentTest, CapsTheStartingTarget) {
  const char* env = getenv("BNORM_MAX_ISA");
  ASSERT_NE(env, nullptr) << "run through ctest, which sets BNORM_MAX_ISA";
  const std::string cap = env;
  const std::vector<std::string> targets = RunnableTargets();
  const std::vector<std::string> order = {"AVX3_DL", "AVX3_BF16", "AVX3",  "AVX2",
                                          "SSE4",    "SSSE3",     "SCALAR"};
  const auto cap_rank = std::find(order.begin(), order.end(), cap);
  std::string want = targets.front();  // an unknown name is ignored, with a warning
  if (cap_rank != order.end()) {
    for (auto t = cap_rank; t != order.end(); ++t) {
      if (std::find(targets.begin(), targets.end(), *t) != targets.end()) {
        want = *t;
        break;
      }
    }
  }
  EXPECT_EQ(std::string(bnorm_active_target()), want) << "BNORM_MAX_ISA=" << cap;

  // The call still overrides the variable.
  ASSERT_EQ(bnorm_set_max_target(nullptr), BNORM_OK);
  EXPECT_EQ(std::string(bnorm_active_target()), targets.front());
}

}  // namespace
}  // namespace bnorm_test
