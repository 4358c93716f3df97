// Arithmetic on a float vector's lanes in double precision, for results that
// must stay exact where float arithmetic would cancel (the 16-bit types'
// backward: see GradPrecision in kernel_table.h).
#if defined(BNORM_SRC_DOUBLE_LANES_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef BNORM_SRC_DOUBLE_LANES_INL_H_
#undef BNORM_SRC_DOUBLE_LANES_INL_H_
#else
#define BNORM_SRC_DOUBLE_LANES_INL_H_
#endif

#include <stddef.h>

#include <type_traits>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Whether D's lanes are double rather than float.
template <class D>
constexpr bool IsDoubleLanes() {
  return std::is_same<hn::TFromD<D>, double>::value;
}

// Evaluates f(dw, first_lane, widen) on d's lanes in double, a double vector
// at a time, and returns the results rounded to float, to nearest. widen(v)
// gives the lanes [first_lane, first_lane + Lanes(dw)) of a float vector of d
// as doubles (exactly). A single lane is converted by casts: Highway's scalar
// DemoteTo turns infinity into the largest float.
template <class D, class F>
HWY_INLINE hn::Vec<D> EvaluateInDouble(D d, const F& f) {
  if constexpr (hn::MaxLanes(D()) == 1) {
    const hn::Rebind<double, D> dw;
    const auto widen = [dw](hn::Vec<D> v)
                           HWY_ATTR { return hn::Set(dw, static_cast<double>(hn::GetLane(v))); };
    return hn::Set(d, static_cast<float>(hn::GetLane(f(dw, size_t{0}, widen))));
  } else {
#if HWY_TARGET != HWY_SCALAR  // whose vectors are all single lanes
    const hn::Half<D> dh;
    const hn::RepartitionToWide<D> dw;
    const auto lower = f(dw, size_t{0}, [&](hn::Vec<D> v) HWY_ATTR {
      return hn::PromoteTo(dw, hn::LowerHalf(dh, v));
    });
    const auto upper = f(dw, hn::Lanes(dw), [&](hn::Vec<D> v) HWY_ATTR {
      return hn::PromoteTo(dw, hn::UpperHalf(dh, v));
    });
    return hn::Combine(d, hn::DemoteTo(dh, upper), hn::DemoteTo(dh, lower));
#endif
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#endif  // BNORM_SRC_DOUBLE_LANES_INL_H_
