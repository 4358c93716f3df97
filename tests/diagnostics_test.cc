// Version, status names, the per-thread last error, and the SIMD target knob.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bnorm/bnorm.h"
#include "tests/test_support.h"

namespace bnorm_test {
namespace {

TEST(VersionTest, LoadedLibraryMatchesHeader) {
  EXPECT_EQ(bnorm_version(), static_cast<uint32_t>(BNORM_VERSION_NUMBER));
  EXPECT_EQ(BNORM_VERSION_NUMBER,
            BNORM_VERSION_MAJOR * 10000 + BNORM_VERSION_MINOR * 100 + BNORM_VERSION_PATCH);
  EXPECT_EQ(std::string(bnorm_version_string()), std::to_string(BNORM_VERSION_MAJOR) + "." +
                                                     std::to_string(BNORM_VERSION_MINOR) + "." +
                                                     std::to_string(BNORM_VERSION_PATCH));
}

TEST(StatusStringTest, NamesEveryStatus) {
  const char* names[] = {"BNORM_OK",
                         "BNORM_ERR_NULL_POINTER",
                         "BNORM_ERR_INVALID_DESCRIPTOR",
                         "BNORM_ERR_INVALID_SHAPE",
                         "BNORM_ERR_FEATURE_MISMATCH",
                         "BNORM_ERR_INVALID_ARGUMENT",
                         "BNORM_ERR_TOO_FEW_VALUES",
                         "BNORM_ERR_ALIASING",
                         "BNORM_ERR_UNSUPPORTED",
                         "BNORM_ERR_OUT_OF_MEMORY",
                         "BNORM_ERR_INTERNAL"};
  for (int s = 0; s <= 10; ++s) {
    const std::string text = bnorm_status_string(static_cast<bnorm_status>(s));
    EXPECT_EQ(text.rfind(names[s], 0), 0u) << text;
  }
  // Values a newer library might return are still printable.
  for (int s : {-1, 11, 1000}) {
    ASSERT_NE(bnorm_status_string(static_cast<bnorm_status>(s)), nullptr);
    EXPECT_NE(std::string(bnorm_status_string(static_cast<bnorm_status>(s))), "");
  }
}

TEST(LastErrorTest, ClearedBySuccessAndKeptPerThread) {
  bnorm_desc d;
  EXPECT_EQ(bnorm_desc_init(&d, -1), BNORM_ERR_INVALID_DESCRIPTOR);
  EXPECT_STREQ(bnorm_last_error(), "num_features is -1; it must be > 0");

  // Another thread has its own message; this one's is unaffected by its calls.
  std::string other_before, other_after;
  std::thread([&] {
    other_before = bnorm_last_error();
    bnorm_desc_init(nullptr, 1);
    other_after = bnorm_last_error();
  }).join();
  EXPECT_EQ(other_before, "");
  EXPECT_EQ(other_after, "desc is NULL");
  EXPECT_STREQ(bnorm_last_error(), "num_features is -1; it must be > 0");

  EXPECT_EQ(bnorm_desc_init(&d, 4), BNORM_OK);
  EXPECT_STREQ(bnorm_last_error(), "");
}

// Best first, as bnorm_target_name documents.
const char* const kTargetOrder[] = {"AVX3_DL", "AVX3_BF16", "AVX3",  "AVX2",
                                    "SSE4",    "SSSE3",     "SCALAR"};

TEST(TargetTest, ListsRunnableTargetsBestFirstEndingWithScalar) {
  const std::vector<std::string> targets = RunnableTargets();
  ASSERT_GE(targets.size(), 1u);
  EXPECT_EQ(targets.back(), "SCALAR");
  EXPECT_EQ(std::set<std::string>(targets.begin(), targets.end()).size(), targets.size());
  size_t rank = 0;
  for (const std::string& t : targets) {
    while (rank < std::size(kTargetOrder) && t != kTargetOrder[rank]) ++rank;
    EXPECT_LT(rank, std::size(kTargetOrder)) << t << " out of order or unknown";
  }
  EXPECT_STREQ(bnorm_target_name(-1), "");
  EXPECT_STREQ(bnorm_target_name(bnorm_target_count()), "");
  std::string list;
  for (const std::string& t : targets) list += t + " ";
  std::cout << "runnable targets: " << list << "; active: " << bnorm_active_target() << "\n";
}

TEST(TargetTest, CapSelectsEachTargetAndBestRemovesIt) {
  const std::string best = bnorm_target_name(0);
  for (const std::string& t : RunnableTargets()) {
    ASSERT_EQ(bnorm_set_max_target(t.c_str()), BNORM_OK);
    EXPECT_EQ(std::string(bnorm_active_target()), t);
  }
  for (const char* no_cap : {static_cast<const char*>(nullptr), "", "BEST"}) {
    ASSERT_EQ(bnorm_set_max_target("SCALAR"), BNORM_OK);
    ASSERT_EQ(bnorm_set_max_target(no_cap), BNORM_OK);
    EXPECT_EQ(std::string(bnorm_active_target()), best);
  }
}

// A cap above what this CPU has is no cap: the best runnable target at or below it.
TEST(TargetTest, CapAboveTheCpuPicksTheBestBelowIt) {
  const std::vector<std::string> targets = RunnableTargets();
  for (const char* cap : kTargetOrder) {
    ASSERT_EQ(bnorm_set_max_target(cap), BNORM_OK) << bnorm_last_error();
    bool at_or_below = false;
    std::string want;
    for (const char* t : kTargetOrder) {
      at_or_below = at_or_below || std::string(t) == cap;
      if (at_or_below && want.empty() &&
          std::find(targets.begin(), targets.end(), t) != targets.end()) {
        want = t;
      }
    }
    EXPECT_EQ(std::string(bnorm_active_target()), want) << "cap " << cap;
  }
  bnorm_set_max_target(nullptr);
}

TEST(TargetTest, UnknownNameIsRejectedAndChangesNothing) {
  const std::string before = bnorm_active_target();
  EXPECT_EQ(bnorm_set_max_target("AVX9"), BNORM_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(bnorm_last_error()).find("\"AVX9\" is not a target name"),
            std::string::npos)
      << bnorm_last_error();
  EXPECT_EQ(std::string(bnorm_active_target()), before);
}

}  // namespace
}  // namespace bnorm_test
