// No C++ exception may cross the C ABI. Valid and invalid arguments alike are
// handled without one, so BNORM_ERR_INTERNAL cannot be provoked from outside:
// this test drives the C API layer's translation from the inside.
#include <gtest/gtest.h>

#include <new>
#include <stdexcept>

#include "bnorm/bnorm.h"
#include "capi/error.h"

namespace bnorm {
namespace {

TEST(GuardedCallTest, PassesStatusThrough) {
  EXPECT_EQ(GuardedCall([] { return Succeed(); }), BNORM_OK);
  EXPECT_STREQ(bnorm_last_error(), "");
  EXPECT_EQ(GuardedCall([] { return Fail(BNORM_ERR_INVALID_SHAPE, "rank is %d", 9); }),
            BNORM_ERR_INVALID_SHAPE);
  EXPECT_STREQ(bnorm_last_error(), "rank is 9");
}

TEST(GuardedCallTest, ExceptionIsInternalError) {
  EXPECT_EQ(GuardedCall([]() -> bnorm_status { throw std::logic_error("plan out of range"); }),
            BNORM_ERR_INTERNAL);
  EXPECT_STREQ(bnorm_last_error(), "internal error: plan out of range");
  EXPECT_EQ(GuardedCall([]() -> bnorm_status { throw 42; }), BNORM_ERR_INTERNAL);
  EXPECT_STREQ(bnorm_last_error(), "internal error: unknown exception");
}

TEST(GuardedCallTest, BadAllocIsOutOfMemory) {
  EXPECT_EQ(GuardedCall([]() -> bnorm_status { throw std::bad_alloc(); }), BNORM_ERR_OUT_OF_MEMORY);
  EXPECT_STREQ(bnorm_last_error(), "out of memory");
}

TEST(GuardedCallTest, LongMessagesAreTruncatedNotOverrun) {
  const std::string long_text(5000, 'x');
  EXPECT_EQ(GuardedCall([&] { return Fail(BNORM_ERR_INTERNAL, "%s", long_text.c_str()); }),
            BNORM_ERR_INTERNAL);
  const std::string message = bnorm_last_error();
  EXPECT_GT(message.size(), 100u);
  EXPECT_LT(message.size(), long_text.size());
}

}  // namespace
}  // namespace bnorm
