// libFuzzer harness for bnorm's C API (see README.md). Every input is a short
// sequence of calls (input_format.h); each call's status is compared with
// what bnorm.h prescribes (oracle.h), and its memory effects with the buffers
// it may write. Any disagreement aborts with a description of the call.
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bnorm/bnorm.h"
#include "half_types.h"
#include "input_format.h"
#include "oracle.h"

extern "C" const char* bnorm_fuzz_status_string(int32_t value);

namespace bnorm_fuzz {
namespace {

// The largest tensor the library is let loose on. The default, 256 KiB of
// floats, is enough for several threads and reduction chunks and keeps
// executions fast; BNORM_FUZZ_MAX_ELEMENTS raises it, e.g. to 5000000 to reach
// the non-temporal stores the library uses for large outputs (parallel.h).
int64_t max_elements = 64 * 1024;
// BNORM_FUZZ_VERBOSE=1: print every compute call and its status (to see what
// a seed or a crash input does).
bool verbose = false;
// Buffers carved for shapes that must be rejected before any data is read.
constexpr uint64_t kSmallBuffer = 64;
// Untouchable bytes around each region of the arena.
constexpr uint64_t kGuard = 64;
constexpr uint64_t kNone = UINT64_MAX;
// Smaller calls run on one thread whatever num_threads says (the library
// wakes a thread per 64 KiB of traffic), so rerunning them with another
// num_threads would compare a run with itself.
constexpr int64_t kMinThreadedElements = 8 * 1024;

const char* const kStatusNames[] = {"BNORM_OK",
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
constexpr int kNumStatuses = sizeof(kStatusNames) / sizeof(kStatusNames[0]);

// Highway's x86 targets, best first. A cap admits the targets from it on.
const char* const kTargetOrder[] = {"AVX3_DL", "AVX3_BF16", "AVX3",  "AVX2",
                                    "SSE4",    "SSSE3",     "SCALAR"};
constexpr int kNumTargetNames = sizeof(kTargetOrder) / sizeof(kTargetOrder[0]);
constexpr int kNoCap = -1, kUnknownName = -2;

std::vector<std::string> targets;  // bnorm_target_name(i), best first
std::string expected_active;       // the target bnorm_active_target() must name
std::string current_call;          // printed with any failure

[[noreturn]] __attribute__((format(printf, 1, 2))) void Fail(const char* format, ...) {
  fprintf(stderr, "\nbnorm_fuzz: FAILED: ");
  va_list args;
  va_start(args, format);
  vfprintf(stderr, format, args);
  va_end(args);
  fprintf(stderr, "\n  call: %s\n  bnorm_last_error(): \"%s\"\n", current_call.c_str(),
          bnorm_last_error());
  abort();
}

std::string StatusName(int status) {
  return status >= 0 && status < kNumStatuses ? kStatusNames[status]
                                              : "status " + std::to_string(status);
}

std::string Printf(const char* format, ...) __attribute__((format(printf, 1, 2)));
std::string Printf(const char* format, ...) {
  char text[512];
  va_list args;
  va_start(args, format);
  vsnprintf(text, sizeof(text), format, args);
  va_end(args);
  return text;
}

// The rank a cap name gives in kTargetOrder, kNoCap, or kUnknownName.
int CapRank(const char* name, int (*compare)(const char*, const char*)) {
  if (name == nullptr || compare(name, "") == 0 || compare(name, "BEST") == 0) return kNoCap;
  for (int i = 0; i < kNumTargetNames; ++i) {
    if (compare(name, kTargetOrder[i]) == 0) return i;
  }
  return kUnknownName;
}

// The best runnable target a cap of `rank` admits.
std::string BestWithin(int rank) {
  if (rank == kNoCap) return targets.front();
  for (const std::string& t : targets) {
    if (CapRank(t.c_str(), strcmp) >= rank) return t;
  }
  return targets.back();
}

void CheckLastError(bnorm_status status) {
  const char* message = bnorm_last_error();
  if (message == nullptr) Fail("bnorm_last_error() is NULL");
  if ((status == BNORM_OK) != (message[0] == '\0')) {
    Fail("%s, yet bnorm_last_error() is \"%s\"", StatusName(status).c_str(), message);
  }
}

uint64_t NextRandom(uint64_t& state) {  // splitmix64
  uint64_t z = (state += 0x9e3779b97f4a7c15);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

void FillArena(uint8_t* arena, uint64_t size, Fill fill, uint64_t seed) {
  static const float kSpecials[16] = {0.0f,   -0.0f, 1.0f,   -1.0f,   INFINITY, -INFINITY,
                                      NAN,    -NAN,  1e-45f, -1e-45f, FLT_MAX,  -FLT_MAX,
                                      1e-38f, 3.0f,  1e20f,  -2.5f};
  for (uint64_t i = 0; i < size; i += 4) {
    const uint64_t r = NextRandom(seed);
    float f;
    if (fill == Fill::kSane) {
      f = static_cast<float>(r >> 40) * (16.0f / (1 << 24)) - 8.0f;
    } else if (fill == Fill::kRaw) {
      memcpy(&f, &r, sizeof(f));
    } else {
      f = kSpecials[r % 16];
    }
    memcpy(arena + i, &f, std::min<uint64_t>(4, size - i));
  }
}

// A bf16 or f16 tensor's own region: FillArena's floats, split in halves,
// would not be the fill asked for (a sane float's low half is any bf16).
void FillHalves(uint8_t* region, uint64_t bytes, int32_t dtype, Fill fill, uint64_t seed) {
  if (fill == Fill::kRaw) return;
  for (uint64_t i = 0; i + 2 <= bytes; i += 2) {
    const uint64_t r = NextRandom(seed);
    const uint16_t h = fill == Fill::kSane ? SaneHalf(dtype, r) : SpecialHalf(dtype, r);
    memcpy(region + i, &h, sizeof(h));
  }
}

// Whether argument `i` gets a region of its own (and so, a bf16 or f16
// tensor, FillHalves's fill), rather than an earlier argument's pointer or
// an offset from it.
bool HasOwnRegion(const CallSpec& c, int i) {
  const Placement::Kind kind = c.slots[i].kind;
  return kind == Placement::kFresh || kind == Placement::kMisaligned || i == 0;
}

// Where each argument goes in the arena, as offsets from its start.
struct Layout {
  uint64_t offset[kMaxSlots];
  uint64_t bytes[kMaxSlots];  // carved for the argument (its extent when the call may run)
  uint64_t size;
};

bool IsDoubleArray(Extent e) { return e == Extent::kStats || e == Extent::kPartials; }

// bytes: what to carve for an argument of each Extent.
Layout Place(const CallSpec& c, const uint64_t (&bytes)[kNumExtents]) {
  const Signature& sig = SignatureOf(c.op);
  Layout l{};
  uint64_t cursor = kGuard;
  for (int i = 0; i < sig.num_slots; ++i) {
    const Placement& p = c.slots[i];
    l.bytes[i] = bytes[static_cast<int>(sig.slots[i].extent)];
    const bool derived = (p.kind == Placement::kSame || p.kind == Placement::kOffset) && i > 0;
    if (p.kind == Placement::kNull || (derived && l.offset[p.target % i] == kNone)) {
      l.offset[i] = kNone;
      continue;
    }
    if (derived) {
      const int64_t delta = p.kind == Placement::kOffset ? p.delta : 0;
      const uint64_t base = l.offset[p.target % i];
      l.offset[i] = delta < 0 && static_cast<uint64_t>(-delta) > base ? 0 : base + delta;
    } else {
      // A double array misaligned by 1 is misaligned by 4 instead: aligned
      // for a float, not for a double.
      const uint64_t shift = p.kind != Placement::kMisaligned                        ? 0
                             : IsDoubleArray(sig.slots[i].extent) && p.misalign == 1 ? 4
                                                                                     : p.misalign;
      l.offset[i] = (cursor + 63) / 64 * 64 + shift;
      cursor = l.offset[i] + l.bytes[i] + kGuard;
    }
    l.size = std::max({l.size, cursor, l.offset[i] + l.bytes[i] + kGuard});
  }
  l.size = std::max(l.size, cursor);
  return l;
}

const char* OpName(Op op) {
  switch (op) {
    case Op::kInference:
      return "bnorm_forward_inference";
    case Op::kTraining:
      return "bnorm_forward_training";
    case Op::kFoldScaleShift:
      return "bnorm_fold_scale_shift";
    case Op::kForwardScaleShift:
      return "bnorm_forward_scale_shift";
    case Op::kFoldIntoLayer:
      return "bnorm_fold_into_layer";
    case Op::kLocalStats:
      return "bnorm_local_stats";
    case Op::kMergeStats:
      return "bnorm_merge_stats";
    case Op::kForwardNormalize:
      return "bnorm_forward_normalize";
    case Op::kBackwardReduce:
      return "bnorm_backward_reduce";
    case Op::kBackwardElementwise:
      return "bnorm_backward_elementwise";
    case Op::kInferenceResidual:
      return "bnorm_forward_inference_residual";
    case Op::kTrainingResidual:
      return "bnorm_forward_training_residual";
    case Op::kBackwardResidual:
      return "bnorm_backward_residual";
    default:
      return "bnorm_backward";
  }
}

std::string Describe(const CallSpec& c, const Layout& l, void* const* ptrs) {
  const DescSpec& d = c.desc;
  float eps, momentum;
  memcpy(&eps, &d.eps_bits, 4);
  memcpy(&momentum, &d.momentum_bits, 4);
  std::string s = OpName(c.op);
  s += c.desc.null ? " desc=NULL"
                   : Printf(
                         " desc={struct_size=%u num_features=%lld eps=%g momentum=%g "
                         "flags=0x%x layout=%d dtype=%d num_threads=%d}",
                         d.struct_size, static_cast<long long>(d.num_features), eps, momentum,
                         d.flags, d.layout, d.dtype, d.num_threads);
  if (HasShape(c.op)) {
    s += c.shape.null ? " shape=NULL" : Printf(" shape={rank=%d dims=", c.shape.rank);
    for (int i = 0; i < 5 && !c.shape.null; ++i) {
      s += Printf("%s%lld", i ? "," : "", static_cast<long long>(c.shape.dims[i]));
    }
    if (!c.shape.null) s += "}";
  }
  if (c.op == Op::kFoldIntoLayer) {
    s += Printf(" row_length=%lld", static_cast<long long>(c.row_length));
  }
  if (c.op == Op::kMergeStats || c.op == Op::kBackwardElementwise) {
    static const char* const kKinds[] = {"sane", "poked", "count", "special", "raw"};
    s += Printf(" num_partials=%d stats=%s", c.num_partials, kKinds[c.stats.kind]);
    if (c.stats.kind == StatsSpec::kPoked) s += Printf("(%d)", c.stats.pokes);
    if (c.stats.kind == StatsSpec::kCount) {
      s += Printf("(%lld)", static_cast<long long>(c.stats.count));
    }
  }
  s += Printf(" fill=%d arena=%llu bytes:", static_cast<int>(c.fill),
              static_cast<unsigned long long>(l.size));
  const Signature& sig = SignatureOf(c.op);
  for (int i = 0; i < sig.num_slots; ++i) {
    s += ptrs[i] == nullptr ? Printf(" %s=NULL", sig.slots[i].name)
                            : Printf(" %s=+%llu[%llu]", sig.slots[i].name,
                                     static_cast<unsigned long long>(l.offset[i]),
                                     static_cast<unsigned long long>(l.bytes[i]));
  }
  return s;
}

// The arguments an arena byte belongs to, for failure messages.
std::string Owners(const CallSpec& c, const Layout& l, uint64_t byte) {
  const Signature& sig = SignatureOf(c.op);
  std::string owners;
  for (int i = 0; i < sig.num_slots; ++i) {
    if (l.offset[i] != kNone && byte >= l.offset[i] && byte - l.offset[i] < l.bytes[i]) {
      owners += std::string(" ") + sig.slots[i].name;
    }
  }
  return owners.empty() ? " guard" : owners;
}

// The first byte in [begin, end) where a and b differ, or end.
uint64_t FirstDifference(const uint8_t* a, const uint8_t* b, uint64_t begin, uint64_t end) {
  if (memcmp(a + begin, b + begin, end - begin) == 0) return end;
  while (a[begin] == b[begin]) ++begin;
  return begin;
}

// A compute call as passed: the caller's descriptor and shape, and the arena
// its pointer arguments point into.
struct Call {
  const CallSpec& spec;
  const Signature& sig;
  bnorm_desc image;  // the descriptor as the caller filled it in
  size_t desc_bytes;
  std::unique_ptr<uint8_t[]> desc;  // NULL or desc_bytes of image
  bnorm_shape shape;
  Request req;
  Layout layout;
  std::unique_ptr<uint8_t[]> arena;
  void* ptrs[kMaxSlots] = {};
  // The float32 twin of a bf16 or f16 call whose inputs are not bounded
  // (Bounded): its inputs are copies of them.
  bool inputs_unbounded = false;

  explicit Call(const CallSpec& c) : spec(c), sig(SignatureOf(c.op)) {}
  const bnorm_shape* shape_arg() const { return spec.shape.null ? nullptr : &shape; }
  bool IsUsedOutput(int i) const {
    return ptrs[i] != nullptr && sig.slots[i].output && IsUsed(req, sig.slots[i].use);
  }
  bnorm_status Invoke() const {
    const bnorm_desc* d = reinterpret_cast<const bnorm_desc*>(desc.get());
    void* const* p = ptrs;
    auto f = [p](int i) { return static_cast<float*>(p[i]); };
    auto df = [p](int i) { return static_cast<double*>(p[i]); };
    switch (spec.op) {
      case Op::kInference:
        return bnorm_forward_inference(d, shape_arg(), p[0], p[1], f(2), f(3), f(4), f(5));
      case Op::kTraining:
        return bnorm_forward_training(d, shape_arg(), p[0], p[1], f(2), f(3), f(4), f(5), f(6),
                                      f(7));
      case Op::kFoldScaleShift:
        return bnorm_fold_scale_shift(d, f(0), f(1), f(2), f(3), f(4), f(5));
      case Op::kForwardScaleShift:
        return bnorm_forward_scale_shift(d, shape_arg(), p[0], p[1], f(2), f(3));
      case Op::kFoldIntoLayer:
        return bnorm_fold_into_layer(d, spec.row_length, f(0), f(1), f(2), f(3), f(4), f(5), f(6),
                                     f(7));
      case Op::kLocalStats:
        return bnorm_local_stats(d, shape_arg(), p[0], df(1));
      case Op::kMergeStats:
        return bnorm_merge_stats(d, spec.num_partials, df(0), df(1), f(2), f(3), f(4), f(5));
      case Op::kForwardNormalize:
        return bnorm_forward_normalize(d, shape_arg(), p[0], p[1], f(2), f(3), f(4), f(5));
      case Op::kBackwardReduce:
        return bnorm_backward_reduce(d, shape_arg(), p[0], p[1], p[2], f(3), f(4), df(5), f(6),
                                     f(7));
      case Op::kBackwardElementwise:
        return bnorm_backward_elementwise(d, shape_arg(), p[0], p[1], p[2], f(3), f(4), f(5),
                                          spec.num_partials, df(6), p[7]);
      case Op::kInferenceResidual:
        return bnorm_forward_inference_residual(d, shape_arg(), p[0], p[1], p[2], f(3), f(4), f(5),
                                                f(6));
      case Op::kTrainingResidual:
        return bnorm_forward_training_residual(d, shape_arg(), p[0], p[1], p[2], f(3), f(4), f(5),
                                               f(6), f(7), f(8));
      case Op::kBackwardResidual:
        return bnorm_backward_residual(d, shape_arg(), p[0], p[1], p[2], f(3), f(4), f(5), p[6],
                                       p[7], f(8), f(9));
      default:
        return bnorm_backward(d, shape_arg(), p[0], p[1], p[2], f(3), f(4), f(5), p[6], f(7), f(8));
    }
  }
};

// Doubles the stats generators draw from: edge cases of the count checks
// (fractions, negatives, NaN, infinities, 2^53 and beyond, this part's count
// and one less) and of M2.
double SpecialDouble(uint64_t& state, int64_t local) {
  static const double kSpecials[] = {0.0,
                                     -0.0,
                                     1.0,
                                     2.0,
                                     0.5,
                                     -1.0,
                                     NAN,
                                     INFINITY,
                                     -INFINITY,
                                     0x1p53,
                                     0x1p53 + 2,
                                     0x1p53 - 1,
                                     4503599627370495.5,  // 2^52 - 0.5
                                     1e300,
                                     5e-324,
                                     DBL_MAX,
                                     3.0,
                                     -0.5,
                                     -1e-300,
                                     1.5};
  constexpr uint64_t kNum = sizeof(kSpecials) / sizeof(kSpecials[0]);
  const uint64_t r = NextRandom(state) % (kNum + 2);
  if (r == kNum) return static_cast<double>(local);
  if (r == kNum + 1) return static_cast<double>(local) - 1;
  return kSpecials[r];
}

double Uniform(uint64_t& state, double lo, double hi) {
  return lo + (hi - lo) * static_cast<double>(NextRandom(state) >> 11) * 0x1p-53;
}

// Fills num_partials blocks of the exchanged doubles at `out` as `spec`
// says. Stats (bnorm_merge_stats): (count, mean, M2). Grad sums (bnorm_
// backward_elementwise, local = this part's values per channel): (count,
// sum(g), sum(g * (x - mean))).
void FillStats(uint8_t* out, const StatsSpec& spec, uint64_t seed, int64_t channels,
               int32_t num_partials, bool grad_sums, int64_t local) {
  if (spec.kind == StatsSpec::kRaw) return;  // FillArena's random bytes
  uint64_t state = seed ^ 0x6a09e667f3bcc909;
  const uint64_t doubles = static_cast<uint64_t>(channels) * kSplit * num_partials;
  // Counts: every block this part's count (an allgather of equal parts), or
  // a mix of small counts (0 and 1 included) and, for grad sums, counts
  // around this part's.
  const bool equal_parts = grad_sums && (NextRandom(state) & 1);
  for (uint64_t i = 0; i < doubles; i += kSplit) {
    double v[kSplit];
    if (spec.kind == StatsSpec::kSpecial) {
      for (double& d : v) d = SpecialDouble(state, local);
    } else {
      const uint64_t r = NextRandom(state);
      double count;
      if (spec.kind == StatsSpec::kCount) {
        count = static_cast<double>(spec.count);
      } else if (equal_parts) {
        count = static_cast<double>(local);
      } else if ((r & 3) == 0) {
        count = static_cast<double>((r >> 2) % 3);
      } else if (grad_sums) {
        count = static_cast<double>(local) * static_cast<double>((r >> 2) % 3) + (r >> 4) % 2;
      } else {
        count = static_cast<double>(1 + (r >> 2) % 1024);
      }
      const double n = fabs(count) < 1e6 ? fabs(count) : 1e6;  // keeps the values bounded
      v[0] = count;
      if (grad_sums) {
        v[1] = Uniform(state, -8, 8) * n;
        v[2] = Uniform(state, -64, 64) * n;
      } else {
        v[1] = Uniform(state, -8, 8);
        v[2] = Uniform(state, 0, 64) * n;
      }
    }
    memcpy(out + i * sizeof(double), v, sizeof(v));
  }
  if (spec.kind == StatsSpec::kPoked) {
    for (int k = 0; k < spec.pokes; ++k) {
      const double d = SpecialDouble(state, local);
      memcpy(out + NextRandom(state) % doubles * sizeof(double), &d, sizeof(d));
    }
  }
}

// Builds the call and returns what bnorm.h says it must return.
Verdict Prepare(Call& call) {
  const CallSpec& c = call.spec;
  StoreDesc(c.desc, &call.image);
  // A descriptor from an older header is only struct_size bytes long, so
  // ASan reports any read past it.
  call.desc_bytes = IsKnownDescSize(c.desc.struct_size) ? c.desc.struct_size : sizeof(bnorm_desc);
  if (!c.desc.null) {
    call.desc.reset(new uint8_t[call.desc_bytes]);
    memcpy(call.desc.get(), &call.image, call.desc_bytes);
  }
  memset(&call.shape, 0, sizeof(call.shape));
  call.shape.rank = c.shape.rank;
  memcpy(call.shape.dims, c.shape.dims, sizeof(call.shape.dims));

  call.req = HasShape(c.op) ? ModelRequest(call.desc.get(), call.shape_arg())
                            : ModelLayerRequest(call.desc.get(), c.op, c.row_length);
  ModelPartialCount(call.req, c.op, c.num_partials);
  const Request& req = call.req;
  const bool real_vectors = req.status == BNORM_OK && req.channels <= max_elements;
  // Values per channel in the tensor or the weights (a row each), and two
  // per double of the exchanged arrays.
  int64_t per_channel = HasShape(c.op) ? req.count : c.op == Op::kFoldIntoLayer ? c.row_length : 1;
  if (c.op == Op::kLocalStats || c.op == Op::kBackwardReduce) {
    per_channel = std::max<int64_t>(per_channel, 2 * kSplit);
  }
  if (req.partials_bytes > 0) {
    per_channel = std::max<int64_t>(per_channel, int64_t{2} * kSplit * req.num_partials);
  }
  const bool real = real_vectors && per_channel <= max_elements / req.channels;
  const uint64_t extent_bytes[kNumExtents] = {
      real_vectors ? req.vector_bytes : kSmallBuffer, real ? req.tensor_bytes : kSmallBuffer,
      real ? req.weight_bytes : kSmallBuffer, real ? req.stats_bytes : kSmallBuffer,
      real ? req.partials_bytes : kSmallBuffer};
  const Layout& layout = call.layout = Place(c, extent_bytes);
  call.arena.reset(new uint8_t[layout.size]);
  uint8_t* arena = call.arena.get();
  FillArena(arena, layout.size, c.fill, c.seed);
  for (int i = 0; i < call.sig.num_slots; ++i) {
    if (layout.offset[i] != kNone) call.ptrs[i] = arena + layout.offset[i];
    if (req.status == BNORM_OK && req.dtype != BNORM_DTYPE_F32 && HasOwnRegion(c, i) &&
        call.sig.slots[i].extent == Extent::kTensor && call.ptrs[i] != nullptr) {
      FillHalves(arena + layout.offset[i], layout.bytes[i], req.dtype, c.fill, c.seed + 977 * i);
    }
  }
  const int var = call.sig.variance;
  if (c.fill == Fill::kSane && var >= 0 && call.ptrs[var] != nullptr) {
    // Variances are >= 0 in sane data, so sane inputs have finite outputs.
    for (uint64_t i = 0; i + 4 <= layout.bytes[var]; i += 4) {
      float v;
      memcpy(&v, arena + layout.offset[var] + i, 4);
      v = fabsf(v);
      memcpy(arena + layout.offset[var] + i, &v, 4);
    }
  }
  const int partials = PartialsSlot(c.op);
  if (real && partials >= 0 && call.ptrs[partials] != nullptr &&
      IsUsed(req, call.sig.slots[partials].use)) {
    FillStats(static_cast<uint8_t*>(call.ptrs[partials]), c.stats, c.seed, req.channels,
              req.num_partials, c.op == Op::kBackwardElementwise, req.count);
  }

  bnorm_status expected = req.status;
  if (expected == BNORM_OK) expected = ModelPointers(req, c.op, call.ptrs);
  // Arrays longer than int64 bytes (per-channel arrays, or a block of the
  // split phases, of a huge num_features) cannot exist, so bnorm.h has no
  // verdict on their overlaps; bnorm_fold_scale_shift has no shape to
  // reject them.
  bool unreal_arrays = false;
  for (int i = 0; i < call.sig.num_slots && req.status == BNORM_OK; ++i) {
    unreal_arrays = unreal_arrays || SlotBytes(req, call.sig.slots[i]) > INT64_MAX;
  }
  if (real) return expected == BNORM_OK ? ModelValues(req, c.op, call.ptrs) : Verdict{expected};
  if (!unreal_arrays && expected != BNORM_OK) return Verdict{expected};
  // A valid shape (or num_features, weight count, num_partials) larger than
  // the buffers: with the first argument (x, mean, weights or partial_stats,
  // always required) NULL the call must stop at the pointer checks without
  // reading anything.
  call.ptrs[0] = nullptr;
  return Verdict{ModelPointers(req, c.op, call.ptrs)};
}

void CheckUnchangedExceptOutputs(const Call& call, const std::vector<uint8_t>& before) {
  std::vector<std::pair<uint64_t, uint64_t>> outputs;  // [begin, end) in the arena
  for (int i = 0; i < call.sig.num_slots; ++i) {
    if (!call.IsUsedOutput(i)) continue;
    const uint64_t begin = call.layout.offset[i];
    outputs.emplace_back(begin, begin + SlotBytes(call.req, call.sig.slots[i]));
  }
  outputs.emplace_back(call.layout.size, call.layout.size);
  std::sort(outputs.begin(), outputs.end());
  uint64_t gap = 0;
  for (const auto& [begin, end] : outputs) {
    const uint64_t i =
        begin > gap ? FirstDifference(call.arena.get(), before.data(), gap, begin) : gap;
    if (i < begin) {
      Fail("wrote arena byte %llu (%s), outside its outputs", static_cast<unsigned long long>(i),
           Owners(call.spec, call.layout, i).c_str());
    }
    gap = std::max(gap, end);
  }
}

// Whether every bf16 or f16 tensor input the call reads holds FillHalves's
// fill: one placed on an earlier argument (at an offset past its end, say)
// reads other bytes, such as FillArena's floats, whose halves are any bit
// pattern of the type, NaN and infinity included.
bool HalfInputsFilled(const Call& call) {
  if (call.req.dtype == BNORM_DTYPE_F32) return true;
  for (int i = 0; i < call.sig.num_slots; ++i) {
    const Slot& s = call.sig.slots[i];
    if (call.ptrs[i] != nullptr && !s.output && s.extent == Extent::kTensor &&
        IsUsed(call.req, s.use) && !HasOwnRegion(call.spec, i)) {
      return false;
    }
  }
  return true;
}

// Whether the call's inputs are bounded: sane fill (bf16 and f16 tensors
// too), sane exchanged blocks (when read), and no argument overlapping
// another (the in-place pair excepted) or var doubling as mean.
bool Bounded(const Call& call) {
  const int partials = PartialsSlot(call.spec.op);
  if (partials >= 0 && IsUsed(call.req, call.sig.slots[partials].use) &&
      call.spec.stats.kind != StatsSpec::kSane) {
    return false;
  }
  return call.spec.fill == Fill::kSane && !call.inputs_unbounded &&
         !AnyOverlap(call.req, call.spec.op, call.ptrs) && HalfInputsFilled(call);
}

// Bounded inputs and any valid eps give bounded outputs.
void CheckFinite(const Call& call) {
  if (!Bounded(call)) return;
  for (int i = 0; i < call.sig.num_slots; ++i) {
    if (!call.IsUsedOutput(i)) continue;
    const bool doubles = IsDoubleArray(call.sig.slots[i].extent);
    const uint64_t size = doubles ? sizeof(double) : sizeof(float);
    for (uint64_t b = 0; b < SlotBytes(call.req, call.sig.slots[i]); b += size) {
      double v;
      if (doubles) {
        memcpy(&v, call.arena.get() + call.layout.offset[i] + b, sizeof(v));
      } else {
        float f;
        memcpy(&f, call.arena.get() + call.layout.offset[i] + b, sizeof(f));
        v = f;
      }
      if (!isfinite(v)) {
        Fail("%s[%llu] is %g from finite inputs", call.sig.slots[i].name,
             static_cast<unsigned long long>(b / size), v);
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Results against a reference, for bounded inputs: the split phases of
// float32 calls (and of bf16 and f16 calls' float32 twins), and the backward
// calls of bf16 and f16, which compute in double and so are held to the
// reference rather than to their twin (see CheckHalfBackwardValues). The
// reference computes in long double from the inputs as they were before the
// call (`before`, so in-place calls are covered), tensors widened exactly
// from the call's dtype; the float32 tolerances allow for the library's float
// arithmetic with room to spare, and catch a value summed into the wrong
// channel, a missed or repeated element, or a wrong formula.

using Bytes = std::vector<uint8_t>;
using Wide = long double;

float FloatAt(const uint8_t* arena, const Call& call, int slot, uint64_t index) {
  float v;
  memcpy(&v, arena + call.layout.offset[slot] + index * sizeof(float), sizeof(v));
  return v;
}
double DoubleAt(const uint8_t* arena, const Call& call, int slot, uint64_t index) {
  double v;
  memcpy(&v, arena + call.layout.offset[slot] + index * sizeof(double), sizeof(v));
  return v;
}
uint16_t HalfAt(const uint8_t* arena, const Call& call, int slot, uint64_t index) {
  uint16_t v;
  memcpy(&v, arena + call.layout.offset[slot] + index * sizeof(v), sizeof(v));
  return v;
}

// Element `index` of tensor bytes `data` in the call's dtype, widened exactly.
Wide ElementOf(const Call& call, const uint8_t* data, uint64_t index) {
  if (call.req.dtype == BNORM_DTYPE_F32) {
    float v;
    memcpy(&v, data + index * sizeof(v), sizeof(v));
    return v;
  }
  uint16_t h;
  memcpy(&h, data + index * sizeof(h), sizeof(h));
  return HalfToFloat(call.req.dtype, h);
}
Wide TensorAt(const uint8_t* arena, const Call& call, int slot, uint64_t index) {
  return ElementOf(call, arena + call.layout.offset[slot], index);
}

void Expect(bool ok, const char* what, uint64_t index, Wide got, Wide want, Wide tolerance) {
  if (!ok) {
    Fail("%s[%llu] is %.17Lg; the reference gives %.17Lg (tolerance %.3Lg)", what,
         static_cast<unsigned long long>(index), got, want, tolerance);
  }
}
void ExpectNear(const char* what, uint64_t index, Wide got, Wide want, Wide tolerance) {
  Expect(fabsl(got - want) <= tolerance, what, index, got, want, tolerance);
}

// g: dy, zeroed where y <= 0 with a fused ReLU (NaN passes). x, dy and y are
// slots 0 to 2 of every backward call.
Wide Gradient(const uint8_t* before, const Call& call, uint64_t j) {
  const Wide dy = TensorAt(before, call, 1, j);
  return call.req.relu && TensorAt(before, call, 2, j) <= 0 ? 0 : dy;
}

// x - mean, the per-channel mean in `mean_slot`.
Wide Centered(const uint8_t* before, const Call& call, int mean_slot, uint64_t j) {
  return TensorAt(before, call, 0, j) - FloatAt(before, call, mean_slot, ChannelOf(call.req, j));
}

void CheckLocalStatsValues(const Call& call, const Bytes& before) {
  const Request& r = call.req;
  const uint64_t channels = r.channels, elements = r.count * channels;
  const Wide n = r.count;
  std::vector<Wide> sum(channels), squares(channels);
  for (uint64_t j = 0; j < elements; ++j)
    sum[ChannelOf(r, j)] += FloatAt(before.data(), call, 0, j);
  for (uint64_t j = 0; j < elements; ++j) {
    const int64_t c = ChannelOf(r, j);
    const Wide d = FloatAt(before.data(), call, 0, j) - sum[c] / n;
    squares[c] += d * d;
  }
  const uint8_t* after = call.arena.get();
  for (uint64_t c = 0; c < channels; ++c) {
    const double count = DoubleAt(after, call, 1, 3 * c),
                 mean = DoubleAt(after, call, 1, 3 * c + 1),
                 m2 = DoubleAt(after, call, 1, 3 * c + 2);
    Expect(count == r.count, "partial_stats count", c, count, n, 0);
    ExpectNear("partial_stats mean", c, mean, sum[c] / n, 1e-5);
    Expect(m2 >= 0, "partial_stats M2", c, m2, squares[c], 0);
    ExpectNear("partial_stats M2", c, m2, squares[c], 1e-5 * (squares[c] + n));
  }
}

void CheckMergeValues(const Call& call, const Bytes& before) {
  const Request& r = call.req;
  const uint64_t channels = r.channels;
  const uint8_t* after = call.arena.get();
  const Wide m = r.momentum;
  for (uint64_t c = 0; c < channels; ++c) {
    double counted = 0;  // as a caller adds the counts, in block order
    Wide n = 0, sum = 0;
    for (int32_t i = 0; i < r.num_partials; ++i) {
      const uint64_t at = (i * channels + c) * kSplit;
      const double count = DoubleAt(before.data(), call, 0, at);
      counted += count;
      n += count;
      if (count != 0) sum += count * DoubleAt(before.data(), call, 0, at + 1);
    }
    const Wide mean = sum / n;
    Wide m2 = 0;
    for (int32_t i = 0; i < r.num_partials; ++i) {
      const uint64_t at = (i * channels + c) * kSplit;
      const double count = DoubleAt(before.data(), call, 0, at);
      if (count == 0) continue;
      const Wide d = DoubleAt(before.data(), call, 0, at + 1) - mean;
      m2 += DoubleAt(before.data(), call, 0, at + 2) + count * d * d;
    }
    if (call.ptrs[1] != nullptr) {
      const double merged_count = DoubleAt(after, call, 1, 3 * c);
      Expect(merged_count == counted, "merged_stats count", c, merged_count, counted, 0);
      ExpectNear("merged_stats mean", c, DoubleAt(after, call, 1, 3 * c + 1), mean,
                 1e-12 * (1 + fabsl(mean)));
      ExpectNear("merged_stats M2", c, DoubleAt(after, call, 1, 3 * c + 2), m2, 1e-11 * (1 + m2));
    }
    const Wide invstd = 1 / sqrtl(m2 / n + static_cast<Wide>(r.eps));
    if (call.ptrs[2] != nullptr) {
      ExpectNear("mean", c, FloatAt(after, call, 2, c), mean, 2e-7 * fabsl(mean) + 1e-12);
    }
    if (call.ptrs[3] != nullptr) {
      ExpectNear("invstd", c, FloatAt(after, call, 3, c), invstd, 1e-6 * invstd);
    }
    if (r.track) {
      const Wide old_mean = FloatAt(before.data(), call, 4, c);
      const Wide old_var = FloatAt(before.data(), call, 5, c);
      const Wide unbiased = m2 / (n - 1);
      ExpectNear("running_mean", c, FloatAt(after, call, 4, c), (1 - m) * old_mean + m * mean,
                 1e-6 * (fabsl((1 - m) * old_mean) + fabsl(m * mean)) + 1e-12);
      ExpectNear("running_var", c, FloatAt(after, call, 5, c), (1 - m) * old_var + m * unbiased,
                 1e-6 * (fabsl((1 - m) * old_var) + fabsl(m * unbiased)) + 1e-12);
    }
  }
}

void CheckForwardNormalizeValues(const Call& call, const Bytes& before) {
  const Request& r = call.req;
  const uint64_t elements = r.count * r.channels;
  for (uint64_t j = 0; j < elements; ++j) {
    const int64_t c = ChannelOf(r, j);
    const Wide gamma = r.affine ? FloatAt(before.data(), call, 2, c) : 1;
    const Wide beta = r.affine ? FloatAt(before.data(), call, 3, c) : 0;
    const Wide centered = FloatAt(before.data(), call, 0, j) - FloatAt(before.data(), call, 4, c);
    const Wide scale = gamma * FloatAt(before.data(), call, 5, c);
    Wide want = centered * scale + beta;
    if (r.relu && want < 0) want = 0;
    ExpectNear("y", j, FloatAt(call.arena.get(), call, 1, j), want,
               1e-5 * (fabsl(centered * scale) + fabsl(beta)) + 1e-30);
  }
}

// Relative tolerance, of the sum of the terms' magnitudes, on a channel's
// backward sums: float32 adds float terms in float blocks; bf16 and f16 add
// exact double terms in double (bnorm.h), within some count * 2^-53, and
// count is at most 2^16 here.
Wide SumTolerance(const Call& call) { return call.req.dtype == BNORM_DTYPE_F32 ? 1e-5 : 1e-9; }

// A channel's backward sums over the whole batch: the count n, sum(g) and
// sum(g * (x - mean)), and, for tolerances, the sums of their terms'
// magnitudes (left 0 where the sums come from exchanged blocks).
struct ChannelSums {
  explicit ChannelSums(uint64_t channels)
      : n(channels), sum(channels), dot(channels), sum_abs(channels), dot_abs(channels) {}
  std::vector<Wide> n, sum, dot, sum_abs, dot_abs;
};

// From the tensors x, dy (and y), with the per-channel mean in `mean_slot`.
ChannelSums SumsOfTensors(const Call& call, const Bytes& before, int mean_slot) {
  const Request& r = call.req;
  ChannelSums s(r.channels);
  std::fill(s.n.begin(), s.n.end(), static_cast<Wide>(r.count));
  for (uint64_t j = 0; j < static_cast<uint64_t>(r.count * r.channels); ++j) {
    const int64_t c = ChannelOf(r, j);
    const Wide g = Gradient(before.data(), call, j);
    const Wide centered = Centered(before.data(), call, mean_slot, j);
    s.sum[c] += g;
    s.dot[c] += g * centered;
    s.sum_abs[c] += fabsl(g);
    s.dot_abs[c] += fabsl(g * centered);
  }
  return s;
}

// From the num_partials blocks of grad sums in `blocks_slot`, added up.
ChannelSums SumsOfBlocks(const Call& call, const Bytes& before, int blocks_slot) {
  const Request& r = call.req;
  const uint64_t channels = r.channels;
  ChannelSums s(channels);
  for (uint64_t c = 0; c < channels; ++c) {
    for (int32_t i = 0; i < r.num_partials; ++i) {
      const uint64_t at = (i * channels + c) * kSplit;
      s.n[c] += DoubleAt(before.data(), call, blocks_slot, at);
      s.sum[c] += DoubleAt(before.data(), call, blocks_slot, at + 1);
      s.dot[c] += DoubleAt(before.data(), call, blocks_slot, at + 2);
    }
  }
  return s;
}

// dx = (g - grad_mean) * a + (x - mean) * b per channel (bnorm.h), with
// a = gamma * invstd, grad_mean = sum(g) / n and
// b = -a * invstd^2 * sum(g * (x - mean)) / n; grad_mean = b = 0 with
// BNORM_FLAG_USE_GLOBAL_STATS.
struct DxCoefficients {
  explicit DxCoefficients(uint64_t channels) : grad_mean(channels), a(channels), b(channels) {}
  std::vector<Wide> grad_mean, a, b;
};

// gamma and invstd are slots 3 and 5 of bnorm_backward, bnorm_backward_
// residual and bnorm_backward_elementwise alike.
DxCoefficients CoefficientsOf(const Call& call, const Bytes& before, const ChannelSums& s) {
  const Request& r = call.req;
  DxCoefficients k(r.channels);
  for (uint64_t c = 0; c < static_cast<uint64_t>(r.channels); ++c) {
    const Wide invstd = FloatAt(before.data(), call, 5, c);
    k.a[c] = (r.affine ? FloatAt(before.data(), call, 3, c) : 1) * invstd;
    if (r.global_stats) continue;
    k.grad_mean[c] = s.sum[c] / s.n[c];
    k.b[c] = -k.a[c] * invstd * invstd * s.dot[c] / s.n[c];
  }
  return k;
}

// A bf16 or f16 output against the reference `want`: within one unit in the
// last place of `want` rounded to the type, with no float32 allowance
// (bnorm.h's promise for the backward calls' dx), a quiet NaN where that is
// a NaN.
void ExpectWithinOneUlp(const Call& call, int slot, uint64_t index, Wide want) {
  const int32_t dtype = call.req.dtype;
  const uint16_t got = HalfAt(call.arena.get(), call, slot, index);
  const uint16_t rounded = RoundToHalf(dtype, want);
  const bool ok = IsHalfNan(dtype, rounded)
                      ? IsQuietHalfNan(dtype, got)
                      : !IsHalfNan(dtype, got) && UlpDistance(got, rounded) <= 1;
  if (!ok) {
    Fail(
        "%s[%llu] is 0x%04x (%.9g); the reference gives %.17Lg, which rounds to 0x%04x (%.9g); "
        "more than 1 ulp apart",
        call.sig.slots[slot].name, static_cast<unsigned long long>(index), got,
        HalfToFloat(dtype, got), want, rounded, HalfToFloat(dtype, rounded));
  }
}

// dx (in `dx_slot`) from the coefficients, element by element: float32 to
// 1e-5 of its terms, bf16 and f16 within one ulp.
void ExpectDx(const Call& call, const Bytes& before, const DxCoefficients& k, int mean_slot,
              int dx_slot) {
  const Request& r = call.req;
  for (uint64_t j = 0; j < static_cast<uint64_t>(r.count * r.channels); ++j) {
    const int64_t c = ChannelOf(r, j);
    const Wide g = Gradient(before.data(), call, j);
    const Wide centered = Centered(before.data(), call, mean_slot, j);
    const Wide want = (g - k.grad_mean[c]) * k.a[c] + centered * k.b[c];
    if (r.dtype != BNORM_DTYPE_F32) {
      ExpectWithinOneUlp(call, dx_slot, j, want);
      continue;
    }
    const Wide terms =
        fabsl(g * k.a[c]) + fabsl(k.grad_mean[c] * k.a[c]) + fabsl(centered * k.b[c]);
    ExpectNear("dx", j, FloatAt(call.arena.get(), call, dx_slot, j), want, 1e-5 * terms + 1e-30);
  }
}

void CheckBackwardReduceValues(const Call& call, const Bytes& before) {
  const Request& r = call.req;
  const ChannelSums s = SumsOfTensors(call, before, 3);
  const Wide tolerance = SumTolerance(call);
  const uint8_t* after = call.arena.get();
  for (uint64_t c = 0; c < static_cast<uint64_t>(r.channels); ++c) {
    const double count = DoubleAt(after, call, 5, 3 * c),
                 g_sum = DoubleAt(after, call, 5, 3 * c + 1),
                 g_dot = DoubleAt(after, call, 5, 3 * c + 2);
    const Wide invstd = FloatAt(before.data(), call, 4, c);
    Expect(count == r.count, "grad_sums count", c, count, r.count, 0);
    ExpectNear("grad_sums sum(g)", c, g_sum, s.sum[c], tolerance * s.sum_abs[c] + 1e-30);
    ExpectNear("grad_sums sum(g * (x - mean))", c, g_dot, s.dot[c],
               tolerance * s.dot_abs[c] + 1e-30);
    // dgamma and dbeta are the same sums, rounded to float.
    if (call.ptrs[6] != nullptr) {
      const Wide want = static_cast<Wide>(g_dot) * invstd;
      ExpectNear("dgamma (against grad_sums)", c, FloatAt(after, call, 6, c), want,
                 2.5e-7 * fabsl(want) + 1e-37);
    }
    if (call.ptrs[7] != nullptr) {
      ExpectNear("dbeta (against grad_sums)", c, FloatAt(after, call, 7, c), g_sum,
                 1.2e-7 * fabs(g_sum) + 1e-37);
    }
  }
}

// dx from the exchanged grad sums (not read with global statistics).
void CheckBackwardElementwiseValues(const Call& call, const Bytes& before) {
  const Request& r = call.req;
  const ChannelSums s = r.global_stats ? ChannelSums(r.channels) : SumsOfBlocks(call, before, 6);
  ExpectDx(call, before, CoefficientsOf(call, before, s), 4, 7);
}

// bnorm_backward and bnorm_backward_residual (dx in slot 6, dgamma and dbeta
// last): dx from the batch's own sums; dgamma = sum(g * (x - mean)) * invstd
// and dbeta = sum(g) to one float rounding past the sums' tolerance.
void CheckBackwardValues(const Call& call, const Bytes& before) {
  const ChannelSums s = SumsOfTensors(call, before, 4);
  if (call.ptrs[6] != nullptr) ExpectDx(call, before, CoefficientsOf(call, before, s), 4, 6);
  const int dgamma = call.sig.num_slots - 2, dbeta = call.sig.num_slots - 1;
  const Wide tolerance = SumTolerance(call);
  const uint8_t* after = call.arena.get();
  for (uint64_t c = 0; c < static_cast<uint64_t>(call.req.channels); ++c) {
    const Wide invstd = FloatAt(before.data(), call, 5, c);
    if (call.ptrs[dgamma] != nullptr) {
      const Wide want = s.dot[c] * invstd;
      ExpectNear("dgamma", c, FloatAt(after, call, dgamma, c), want,
                 1.2e-7 * fabsl(want) + tolerance * s.dot_abs[c] * fabsl(invstd) + 1e-37);
    }
    if (call.ptrs[dbeta] != nullptr) {
      ExpectNear("dbeta", c, FloatAt(after, call, dbeta, c), s.sum[c],
                 1.2e-7 * fabsl(s.sum[c]) + tolerance * s.sum_abs[c] + 1e-37);
    }
  }
}

void CheckSplitValues(const Call& call, const Bytes& before) {
  if (!Bounded(call)) return;
  switch (call.spec.op) {
    case Op::kLocalStats:
      return CheckLocalStatsValues(call, before);
    case Op::kMergeStats:
      return CheckMergeValues(call, before);
    case Op::kForwardNormalize:
      return CheckForwardNormalizeValues(call, before);
    case Op::kBackwardReduce:
      return CheckBackwardReduceValues(call, before);
    case Op::kBackwardElementwise:
      return CheckBackwardElementwiseValues(call, before);
    default:
      return;
  }
}

// The backward calls of bf16 and f16 against the reference (bnorm.h: they
// compute their sums, coefficients and dx in double, so they are not their
// float32 twin's, which CheckAgainstFloatTwin no longer requires): dx within
// one ulp of the type, the sums and dgamma, dbeta to double accuracy and one
// float rounding.
void CheckHalfBackwardValues(const Call& call, const Bytes& before) {
  switch (call.spec.op) {
    case Op::kBackward:
    case Op::kBackwardResidual:
      if (Bounded(call)) CheckBackwardValues(call, before);
      return;
    case Op::kBackwardReduce:
    case Op::kBackwardElementwise:
      return CheckSplitValues(call, before);
    default:
      return;  // the forward calls are their twin's, bit for bit
  }
}

// A copy of per-channel float argument `slot` as it was, or none (NULL).
std::vector<float> CopyVector(const Call& call, const Bytes& before, int slot) {
  if (call.ptrs[slot] == nullptr || !IsUsed(call.req, call.sig.slots[slot].use)) return {};
  std::vector<float> v(call.req.channels);
  memcpy(v.data(), before.data() + call.layout.offset[slot], v.size() * sizeof(float));
  return v;
}
float* DataOrNull(std::vector<float>& v) { return v.empty() ? nullptr : v.data(); }

// bnorm_merge_stats, accepted: the same blocks merged again give bit-identical
// results; merged_stats in place (== partial_stats) and apart give the same;
// and merged_stats is itself a valid partial whose merge alone gives the same
// statistics.
void CheckMerge(Call& call, const Bytes& before) {
  const Request& r = call.req;
  uint8_t* arena = call.arena.get();
  const Bytes first(arena, arena + call.layout.size);
  // Again, from the same bytes.
  memcpy(arena, before.data(), call.layout.size);
  if (call.Invoke() != BNORM_OK) Fail("merging the same blocks again failed");
  const uint64_t i = FirstDifference(arena, first.data(), 0, call.layout.size);
  if (i != call.layout.size) {
    Fail("merging the same blocks again changed arena byte %llu (%s)",
         static_cast<unsigned long long>(i), Owners(call.spec, call.layout, i).c_str());
  }

  // The other placement of merged_stats, outside the arena: apart if the call
  // had it in place, in place (the first block overwritten) otherwise.
  const uint64_t block = static_cast<uint64_t>(r.channels) * kSplit;
  const bool was_in_place = call.ptrs[1] != nullptr && call.ptrs[1] == call.ptrs[0];
  std::vector<double> blocks(block * r.num_partials), apart(block);
  memcpy(blocks.data(), before.data() + call.layout.offset[0], r.partials_bytes);
  std::vector<float> outputs[4];
  for (int s = 0; s < 4; ++s) outputs[s] = CopyVector(call, before, 2 + s);
  const bnorm_desc* desc = reinterpret_cast<const bnorm_desc*>(call.desc.get());
  double* merged = was_in_place ? apart.data() : blocks.data();
  if (bnorm_merge_stats(desc, r.num_partials, blocks.data(), merged, DataOrNull(outputs[0]),
                        DataOrNull(outputs[1]), DataOrNull(outputs[2]),
                        DataOrNull(outputs[3])) != BNORM_OK) {
    Fail("failed with merged_stats %s", was_in_place ? "apart" : "in place");
  }
  const char* other = was_in_place ? "merged_stats apart" : "merged_stats in place";
  if (call.ptrs[1] != nullptr &&
      memcmp(merged, first.data() + call.layout.offset[1], block * sizeof(double)) != 0) {
    Fail("%s gave other merged statistics", other);
  }
  const uint64_t untouched = was_in_place ? 0 : block;  // the blocks past the merged one
  if (memcmp(blocks.data() + untouched,
             before.data() + call.layout.offset[0] + untouched * sizeof(double),
             (blocks.size() - untouched) * sizeof(double)) != 0) {
    Fail("%s changed a block of partial_stats past the first", other);
  }
  for (int s = 0; s < 4; ++s) {
    if (!outputs[s].empty() && memcmp(outputs[s].data(), first.data() + call.layout.offset[2 + s],
                                      outputs[s].size() * sizeof(float)) != 0) {
      Fail("%s gave another %s", other, call.sig.slots[2 + s].name);
    }
  }

  // The merged block alone (bnorm.h: "itself a valid partial"). A merged
  // count past 2^53 is rejected as a partial (README.md, "Oracle choices"):
  // that case is left out.
  const double* result = merged;  // equal to the call's own merged_stats, checked above
  for (uint64_t c = 0; c < static_cast<uint64_t>(r.channels); ++c) {
    if (!(result[kSplit * c] <= 0x1p53)) return;
  }
  std::vector<double> alone(result, result + block);
  std::vector<float> again[4];
  for (int s = 0; s < 4; ++s) again[s] = CopyVector(call, before, 2 + s);
  if (bnorm_merge_stats(desc, 1, alone.data(), nullptr, DataOrNull(again[0]), DataOrNull(again[1]),
                        DataOrNull(again[2]), DataOrNull(again[3])) != BNORM_OK) {
    Fail("rejected its merged_stats as a partial: %s", bnorm_last_error());
  }
  if (!Bounded(call)) return;
  for (int s = 0; s < 4; ++s) {
    for (size_t c = 0; c < again[s].size(); ++c) {
      ExpectNear(s == 0   ? "mean from merged_stats alone"
                 : s == 1 ? "invstd from merged_stats alone"
                 : s == 2 ? "running_mean from merged_stats alone"
                          : "running_var from merged_stats alone",
                 c, again[s][c], outputs[s][c], 2.5e-7 * fabsf(outputs[s][c]) + 1e-37);
    }
  }
}

// bnorm_local_stats on any data: exact counts; a channel holding a NaN has a
// NaN mean and M2 (bnorm.h: "M2 >= 0 (NaN, from NaN data, passes through)");
// no M2 is < 0, so the block is always one bnorm_merge_stats accepts.
void CheckLocalStatsAnyData(const Call& call, const Bytes& before) {
  const Request& r = call.req;
  const uint64_t channels = r.channels, elements = r.count * channels;
  std::vector<bool> has_nan(channels);
  for (uint64_t j = 0; j < elements; ++j) {
    if (isnan(FloatAt(before.data(), call, 0, j))) has_nan[ChannelOf(r, j)] = true;
  }
  const uint8_t* after = call.arena.get();
  for (uint64_t c = 0; c < channels; ++c) {
    const double count = DoubleAt(after, call, 1, 3 * c),
                 mean = DoubleAt(after, call, 1, 3 * c + 1),
                 m2 = DoubleAt(after, call, 1, 3 * c + 2);
    Expect(count == r.count, "partial_stats count", c, count, r.count, 0);
    if (m2 < 0) Fail("partial_stats M2[%llu] is %g < 0", static_cast<unsigned long long>(c), m2);
    if (has_nan[c] && !(isnan(mean) && isnan(m2))) {
      Fail("channel %llu holds a NaN, yet partial_stats has mean %g and M2 %g",
           static_cast<unsigned long long>(c), mean, m2);
    }
  }
}

// ---------------------------------------------------------------------------
// The residual-add calls against the calls without a residual, on any data
// they accept (bnorm.h: "behaves like it followed by the add (and the
// ReLU), to float rounding"). The plain call gets copies of the inputs as they
// were before the call (so in-place calls are covered) and the same
// descriptor, completed as the library completes an older struct_size. The
// forward calls are compared on float32 calls (and twins); the backward, whose
// bf16 and f16 results are not their twin's, in every dtype.

// A copy of float argument `slot` as it was (its whole extent), or none when
// it is NULL or unused.
std::vector<float> CopyFloats(const Call& call, const Bytes& before, int slot) {
  if (call.ptrs[slot] == nullptr || !IsUsed(call.req, call.sig.slots[slot].use)) return {};
  std::vector<float> v(SlotBytes(call.req, call.sig.slots[slot]) / sizeof(float));
  memcpy(v.data(), before.data() + call.layout.offset[slot], v.size() * sizeof(float));
  return v;
}

// A copy of tensor argument `slot` as it was (its bytes, in the call's
// dtype), or none when it is NULL or unused.
Bytes CopyTensor(const Call& call, const Bytes& before, int slot) {
  if (call.ptrs[slot] == nullptr || !IsUsed(call.req, call.sig.slots[slot].use)) return {};
  const uint8_t* from = before.data() + call.layout.offset[slot];
  return Bytes(from, from + SlotBytes(call.req, call.sig.slots[slot]));
}
void* DataOrNull(Bytes& v) { return v.empty() ? nullptr : v.data(); }

// Fresh output space for the plain call where the residual call had an
// output, none where it passed NULL.
std::vector<float> SpaceLike(const Call& call, int slot) {
  if (call.ptrs[slot] == nullptr || !IsUsed(call.req, call.sig.slots[slot].use)) return {};
  return std::vector<float>(SlotBytes(call.req, call.sig.slots[slot]) / sizeof(float), -7.0f);
}

// The descriptor at full size, fields past the caller's struct_size at their
// defaults, as the library completes it.
bnorm_desc FullDesc(const Call& call) {
  bnorm_desc d;
  StoreDesc(DescSpec(), &d);
  memcpy(&d, call.desc.get(), call.desc_bytes);
  d.struct_size = sizeof(bnorm_desc);
  return d;
}

bool SameFloat(float a, float b) {
  return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof(a)) == 0;
}

// Output `slot` of the call equals `want` bit for bit (any NaN for a NaN).
void ExpectSameFloats(const Call& call, int slot, const std::vector<float>& want,
                      const char* plain_name) {
  if (want.empty()) return;
  for (uint64_t j = 0; j < want.size(); ++j) {
    const float got = FloatAt(call.arena.get(), call, slot, j);
    if (!SameFloat(got, want[j])) {
      Fail("%s[%llu] is %.9g; %s gives %.9g", call.sig.slots[slot].name,
           static_cast<unsigned long long>(j), got, plain_name, want[j]);
    }
  }
}

// Tensor output `slot` equals `want` (tensor bytes in the call's dtype)
// element for element, bit for bit (any NaN for a NaN).
void ExpectSameTensor(const Call& call, int slot, const Bytes& want, const char* plain_name) {
  const uint64_t size = call.req.element_size;
  const uint8_t* got = call.arena.get() + call.layout.offset[slot];
  for (uint64_t j = 0; j * size < want.size(); ++j) {
    const Wide a = ElementOf(call, got, j), b = ElementOf(call, want.data(), j);
    if (!(isnan(a) && isnan(b)) && memcmp(got + j * size, want.data() + j * size, size) != 0) {
      Fail("%s[%llu] is %.9Lg; %s gives %.9Lg", call.sig.slots[slot].name,
           static_cast<unsigned long long>(j), a, plain_name, b);
    }
  }
}

// y (slot 2) of a residual forward against the plain call's output plus the
// residual (slot 1), then ReLU, to float rounding: the plain output may be
// rounded once more than the fused sum.
void ExpectPlainPlusResidual(const Call& call, const Bytes& before, const std::vector<float>& plain,
                             const char* plain_name) {
  const bool relu = call.req.relu;
  for (uint64_t j = 0; j < plain.size(); ++j) {
    const double residual = FloatAt(before.data(), call, 1, j);
    double want = static_cast<double>(plain[j]) + residual;  // exact
    if (relu && want < 0) want = 0;
    const double got = FloatAt(call.arena.get(), call, 2, j);
    bool ok;
    if (isnan(want) || isinf(want)) {
      ok = isnan(want) ? isnan(got) : got == want;
    } else if (fabs(want) > 0x1p127) {
      ok = true;  // the sum's rounding may overflow to infinity
    } else {
      ok = fabs(got - want) <= 0x1p-23 * (fabs(plain[j]) + fabs(residual)) + 0x1p-149;
    }
    if (!ok) {
      Fail("y[%llu] is %.9g; %s gives %.9g, plus residual %.9g%s is %.17g",
           static_cast<unsigned long long>(j), got, plain_name, plain[j], residual,
           relu ? ", then ReLU," : "", want);
    }
  }
}

void CheckInferenceResidual(const Call& call, const Bytes& before) {
  bnorm_desc d = FullDesc(call);
  d.flags &= ~BNORM_FLAG_FUSE_RELU;
  std::vector<float> x = CopyFloats(call, before, 0), mean = CopyFloats(call, before, 3),
                     var = CopyFloats(call, before, 4), gamma = CopyFloats(call, before, 5),
                     beta = CopyFloats(call, before, 6), y(x.size());
  const bnorm_status status =
      bnorm_forward_inference(&d, &call.shape, x.data(), y.data(), mean.data(), var.data(),
                              DataOrNull(gamma), DataOrNull(beta));
  if (status != BNORM_OK) {
    Fail("bnorm_forward_inference without ReLU rejected the same arguments: %s",
         StatusName(status).c_str());
  }
  ExpectPlainPlusResidual(call, before, y, "bnorm_forward_inference without ReLU");
}

void CheckTrainingResidual(const Call& call, const Bytes& before) {
  bnorm_desc d = FullDesc(call);
  d.flags &= ~BNORM_FLAG_FUSE_RELU;
  std::vector<float> x = CopyFloats(call, before, 0), gamma = CopyFloats(call, before, 3),
                     beta = CopyFloats(call, before, 4), running_mean = CopyFloats(call, before, 5),
                     running_var = CopyFloats(call, before, 6), save_mean = SpaceLike(call, 7),
                     save_invstd = SpaceLike(call, 8), y(x.size());
  const bnorm_status status =
      bnorm_forward_training(&d, &call.shape, x.data(), y.data(), DataOrNull(gamma),
                             DataOrNull(beta), DataOrNull(running_mean), DataOrNull(running_var),
                             DataOrNull(save_mean), DataOrNull(save_invstd));
  const char* plain = "bnorm_forward_training without ReLU";
  if (status != BNORM_OK) {
    Fail("%s rejected the same arguments: %s", plain, StatusName(status).c_str());
  }
  ExpectPlainPlusResidual(call, before, y, plain);
  // The statistics are x's: the same reduction of the same x.
  ExpectSameFloats(call, 5, running_mean, plain);
  ExpectSameFloats(call, 6, running_var, plain);
  ExpectSameFloats(call, 7, save_mean, plain);
  ExpectSameFloats(call, 8, save_invstd, plain);
}

// dx, dgamma, dbeta are bnorm_backward's with the same flags, dtype and y;
// d_residual is g: dy, zeroed (+0) where y <= 0 with a fused ReLU, else dy's
// bits (any NaN for a NaN).
void CheckBackwardResidual(const Call& call, const Bytes& before) {
  const Request& r = call.req;
  const bnorm_desc d = FullDesc(call);
  Bytes x = CopyTensor(call, before, 0), dy = CopyTensor(call, before, 1),
        y = CopyTensor(call, before, 2), dx(x.size());
  std::vector<float> gamma = CopyFloats(call, before, 3), save_mean = CopyFloats(call, before, 4),
                     save_invstd = CopyFloats(call, before, 5), dgamma = SpaceLike(call, 8),
                     dbeta = SpaceLike(call, 9);
  const bnorm_status status = bnorm_backward(
      &d, &call.shape, x.data(), dy.data(), DataOrNull(y), DataOrNull(gamma), save_mean.data(),
      save_invstd.data(), dx.data(), DataOrNull(dgamma), DataOrNull(dbeta));
  const char* plain = "bnorm_backward";
  if (status != BNORM_OK) {
    Fail("%s rejected the same arguments: %s", plain, StatusName(status).c_str());
  }
  ExpectSameTensor(call, 6, dx, plain);
  ExpectSameFloats(call, 8, dgamma, plain);
  ExpectSameFloats(call, 9, dbeta, plain);
  Bytes masked = dy;
  for (uint64_t j = 0; r.relu && j * r.element_size < y.size(); ++j) {
    if (ElementOf(call, y.data(), j) <= 0) memset(&masked[j * r.element_size], 0, r.element_size);
  }
  ExpectSameTensor(call, 7, masked, r.relu ? "dy, zeroed where y <= 0," : "dy");
}

void CheckAnyData(const Call& call, const Bytes& before) {
  switch (call.spec.op) {
    case Op::kLocalStats:
      return CheckLocalStatsAnyData(call, before);
    case Op::kInferenceResidual:
      return CheckInferenceResidual(call, before);
    case Op::kTrainingResidual:
      return CheckTrainingResidual(call, before);
    case Op::kBackwardResidual:
      return CheckBackwardResidual(call, before);
    default:
      return;
  }
}

// ---------------------------------------------------------------------------
// bf16 and f16 calls against float32 (bnorm.h: a forward call computes as the
// float32 path does on the inputs converted to float exactly; each tensor
// output is that result rounded to nearest even, per-channel outputs are that
// result). The twin is the same call with dtype F32 on those floats, each
// argument in a region of its own (so in-place calls are covered), NULL where
// the call passed NULL or does not use the argument. Its outputs, rounded by
// half_types.h, must be the call's bit for bit (a quiet NaN of the type for a
// NaN), except those the backward calls compute in double (FollowsTwin);
// then the twin goes through the float32 checks.

// Whether output `slot` of a bf16 or f16 call must be its twin's (rounded):
// every output of the forward calls (bnorm_local_stats and bnorm_forward_
// normalize included); of the backward calls, which compute their sums,
// coefficients and dx in double (bnorm.h, since 1.4), only d_residual, the
// masked dy.
bool FollowsTwin(const Call& call, int slot) {
  switch (call.spec.op) {
    case Op::kBackward:
    case Op::kBackwardReduce:
    case Op::kBackwardElementwise:
      return false;
    case Op::kBackwardResidual:
      return strcmp(call.sig.slots[slot].name, "d_residual") == 0;
    default:
      return true;
  }
}

bool SameDouble(double a, double b) {
  return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof(a)) == 0;
}

// The twin with its inputs in place, or a failure if the oracle rejects it.
std::unique_ptr<Call> MakeFloatTwin(const Call& call, const Bytes& before, CallSpec& spec) {
  spec = call.spec;
  spec.desc.dtype = BNORM_DTYPE_F32;
  for (int i = 0; i < call.sig.num_slots; ++i) {
    const bool used = call.ptrs[i] != nullptr && IsUsed(call.req, call.sig.slots[i].use);
    spec.slots[i] = used ? Placement() : Placement{Placement::kNull, 0, 0, 0};
  }
  auto twin = std::make_unique<Call>(spec);
  twin->inputs_unbounded = !Bounded(call);
  const Verdict verdict = Prepare(*twin);
  if (verdict.status != BNORM_OK) {
    Fail("the oracle rejects the float32 twin (%s): %s", StatusName(verdict.status).c_str(),
         Describe(spec, twin->layout, twin->ptrs).c_str());
  }
  const uint64_t elements = static_cast<uint64_t>(call.req.count * call.req.channels);
  for (int i = 0; i < call.sig.num_slots; ++i) {
    if (twin->ptrs[i] == nullptr) continue;
    const uint8_t* from = before.data() + call.layout.offset[i];
    uint8_t* to = static_cast<uint8_t*>(twin->ptrs[i]);
    if (call.sig.slots[i].extent != Extent::kTensor) {
      memcpy(to, from, SlotBytes(call.req, call.sig.slots[i]));
      continue;
    }
    for (uint64_t j = 0; j < elements; ++j) {
      uint16_t h;
      memcpy(&h, from + j * sizeof(h), sizeof(h));
      const float f = HalfToFloat(call.req.dtype, h);
      memcpy(to + j * sizeof(f), &f, sizeof(f));
    }
  }
  return twin;
}

void ExpectRoundedTwin(const Call& call, const Call& twin) {
  const int32_t dtype = call.req.dtype;
  const uint64_t elements = static_cast<uint64_t>(call.req.count * call.req.channels);
  const uint8_t *got = call.arena.get(), *want = twin.arena.get();
  for (int i = 0; i < call.sig.num_slots; ++i) {
    if (!call.IsUsedOutput(i) || !FollowsTwin(call, i)) continue;
    const char* name = call.sig.slots[i].name;
    const Extent extent = call.sig.slots[i].extent;
    if (extent == Extent::kTensor) {
      for (uint64_t j = 0; j < elements; ++j) {
        const uint16_t h = HalfAt(got, call, i, j);
        const float f = FloatAt(want, twin, i, j);
        const uint16_t rounded = RoundToHalf(dtype, f);
        if (IsHalfNan(dtype, rounded) ? !IsQuietHalfNan(dtype, h) : h != rounded) {
          Fail("%s[%llu] is 0x%04x (%.9g); the float32 call gives %.9g, which rounds to 0x%04x%s",
               name, static_cast<unsigned long long>(j), h, HalfToFloat(dtype, h), f, rounded,
               IsHalfNan(dtype, rounded) ? " (any quiet NaN)" : "");
        }
      }
    } else if (IsDoubleArray(extent)) {
      for (uint64_t j = 0; j < SlotBytes(call.req, call.sig.slots[i]) / sizeof(double); ++j) {
        const double a = DoubleAt(got, call, i, j), b = DoubleAt(want, twin, i, j);
        if (!SameDouble(a, b)) {
          Fail("%s[%llu] is %.17g; the float32 call gives %.17g", name,
               static_cast<unsigned long long>(j), a, b);
        }
      }
    } else {
      for (uint64_t j = 0; j < static_cast<uint64_t>(call.req.channels); ++j) {
        const float a = FloatAt(got, call, i, j), b = FloatAt(want, twin, i, j);
        if (!SameFloat(a, b)) {
          Fail("%s[%llu] is %.9g; the float32 call gives %.9g", name,
               static_cast<unsigned long long>(j), a, b);
        }
      }
    }
  }
}

void CheckAgainstFloatTwin(const Call& call, const Bytes& before) {
  CallSpec spec;
  std::unique_ptr<Call> twin = MakeFloatTwin(call, before, spec);
  const std::string call_text = current_call;
  current_call += "\n  float32 twin: " + Describe(spec, twin->layout, twin->ptrs);
  const Bytes twin_before(twin->arena.get(), twin->arena.get() + twin->layout.size);
  const bnorm_status status = twin->Invoke();
  if (status != BNORM_OK) Fail("the float32 twin returned %s", StatusName(status).c_str());
  CheckLastError(status);
  ExpectRoundedTwin(call, *twin);
  CheckUnchangedExceptOutputs(*twin, twin_before);
  CheckFinite(*twin);
  CheckSplitValues(*twin, twin_before);
  CheckAnyData(*twin, twin_before);
  current_call = call_text;
}

// Results are bit-identical for every num_threads: rerun with another.
void CheckThreadsAgree(Call& call, const std::vector<uint8_t>& before) {
  if (call.desc_bytes != sizeof(bnorm_desc) ||
      call.req.count * call.req.channels < kMinThreadedElements) {
    return;
  }
  const int32_t other_threads = call.spec.desc.num_threads == 1 ? 2 : 1;
  memcpy(call.desc.get() + offsetof(bnorm_desc, num_threads), &other_threads, 4);
  uint8_t* arena = call.arena.get();
  const std::vector<uint8_t> first(arena, arena + call.layout.size);
  memcpy(arena, before.data(), call.layout.size);
  if (call.Invoke() != BNORM_OK) Fail("failed with num_threads=%d", other_threads);
  const uint64_t i = FirstDifference(arena, first.data(), 0, call.layout.size);
  if (i != call.layout.size) {
    Fail("num_threads=%d changed arena byte %llu (%s)", other_threads,
         static_cast<unsigned long long>(i), Owners(call.spec, call.layout, i).c_str());
  }
}

// The first number after `key` in `text` (e.g. "channel 7"), or -1: the
// message of an error found in the exchanged blocks names where it is.
long long NumberAfter(const char* text, const char* key) {
  for (const char* p = strstr(text, key); p != nullptr; p = strstr(p + 1, key)) {
    const char* digits = p + strlen(key);
    if (*digits >= '0' && *digits <= '9') return strtoll(digits, nullptr, 10);
  }
  return -1;
}

// bnorm.h: a bad block value is BNORM_ERR_INVALID_ARGUMENT "naming the block
// and channel"; a total is checked channel by channel, so its error is the
// first failing channel's, and the message names it.
void CheckBlockMessage(const Call& call, const Verdict& expected) {
  const char* message = bnorm_last_error();
  if (expected.where == Verdict::kBlockValue) {
    const long long block = NumberAfter(message, "block "),
                    channel = NumberAfter(message, ", channel ");
    if (!IsBadBlockValue(call.req, call.spec.op, call.ptrs[PartialsSlot(call.spec.op)], block,
                         channel)) {
      Fail("names block %lld, channel %lld, whose values are valid (or that does not exist)", block,
           channel);
    }
  } else if (expected.where == Verdict::kTotal) {
    const long long channel = NumberAfter(message, "channel ");
    if (channel != expected.channel) {
      Fail("names channel %lld; the first channel whose total fails is %lld", channel,
           static_cast<long long>(expected.channel));
    }
  }
}

void RunCompute(const CallSpec& c) {
  Call call(c);
  const Verdict expected = Prepare(call);
  current_call = Describe(c, call.layout, call.ptrs);
  const std::vector<uint8_t> before(call.arena.get(), call.arena.get() + call.layout.size);
  const bnorm_status status = call.Invoke();
  if (verbose) {
    fprintf(stderr, "%s\n", current_call.c_str());
    const int partials = PartialsSlot(c.op);
    // Only arrays carved at their full size hold generated blocks.
    if (partials >= 0 && call.ptrs[partials] != nullptr && call.req.status == BNORM_OK &&
        call.layout.bytes[partials] == SlotBytes(call.req, call.sig.slots[partials])) {
      fprintf(stderr, "  %s:", call.sig.slots[partials].name);
      for (uint64_t i = 0; i < 48 && (i + 1) * 8 <= call.layout.bytes[partials]; ++i) {
        double v;
        memcpy(&v, before.data() + call.layout.offset[partials] + 8 * i, 8);
        fprintf(stderr, "%s%g", i % kSplit ? ", " : " | ", v);
      }
      fprintf(stderr, "\n");
    }
    fprintf(stderr, "  -> %s\n", StatusName(status).c_str());
  }
  if (status != expected.status) {
    Fail("returned %s; bnorm.h says %s", StatusName(status).c_str(),
         StatusName(expected.status).c_str());
  }
  CheckLastError(status);
  CheckBlockMessage(call, expected);
  if ((call.desc && memcmp(call.desc.get(), &call.image, call.desc_bytes) != 0) ||
      call.shape.rank != c.shape.rank ||
      memcmp(call.shape.dims, c.shape.dims, sizeof(call.shape.dims)) != 0) {
    Fail("changed its const desc or shape");
  }
  // A rejected call has no outputs: every byte must stay.
  if (status != BNORM_OK) {
    const uint64_t i = FirstDifference(call.arena.get(), before.data(), 0, call.layout.size);
    if (i != call.layout.size) {
      Fail("a rejected call changed arena byte %llu (%s)", static_cast<unsigned long long>(i),
           Owners(c, call.layout, i).c_str());
    }
    return;
  }
  CheckUnchangedExceptOutputs(call, before);
  if (HasShape(c.op) && call.req.dtype != BNORM_DTYPE_F32) {
    CheckAgainstFloatTwin(call, before);
    CheckHalfBackwardValues(call, before);
    if (c.op == Op::kBackwardResidual) CheckBackwardResidual(call, before);
  } else {
    CheckFinite(call);
    CheckSplitValues(call, before);
    CheckAnyData(call, before);
  }
  CheckThreadsAgree(call, before);
  if (c.op == Op::kMergeStats) CheckMerge(call, before);
}

void RunDescInit(const CallSpec& c) {
  const int64_t n = c.desc.num_features;
  current_call =
      Printf("bnorm_desc_init(%s, %lld)", c.desc.null ? "NULL" : "d", static_cast<long long>(n));
  if (c.desc.null) {
    const bnorm_status status = bnorm_desc_init(nullptr, n);
    if (status != BNORM_ERR_NULL_POINTER) Fail("returned %s", StatusName(status).c_str());
    return CheckLastError(status);
  }
  std::unique_ptr<uint8_t[]> d(new uint8_t[sizeof(bnorm_desc)]);
  memset(d.get(), 0xA5, sizeof(bnorm_desc));
  const bnorm_status status = bnorm_desc_init(reinterpret_cast<bnorm_desc*>(d.get()), n);
  const bnorm_status expected = n > 0 ? BNORM_OK : BNORM_ERR_INVALID_DESCRIPTOR;
  if (status != expected) {
    Fail("returned %s, not %s", StatusName(status).c_str(), StatusName(expected).c_str());
  }
  CheckLastError(status);
  // Every field (padding aside) holds its default, success or not.
  DescSpec defaults;
  defaults.num_features = n;
  bnorm_desc want;
  StoreDesc(defaults, &want);
  const size_t fields = offsetof(bnorm_desc, num_features);
  if (memcmp(d.get(), &want, sizeof(uint32_t)) != 0 ||
      memcmp(d.get() + fields, reinterpret_cast<uint8_t*>(&want) + fields,
             sizeof(bnorm_desc) - fields) != 0) {
    Fail("left a field other than its default");
  }
}

void RunSetMaxTarget(const CallSpec& c) {
  std::unique_ptr<char[]> storage;
  const char* name;
  if (c.name_kind == CallSpec::kListedName) {
    name = kListedNames[c.name_index % 16];
  } else if (c.name_kind == CallSpec::kTargetIndex) {
    name = bnorm_target_name(c.name_index);
  } else {
    // Exactly as long as the string, so ASan sees reads past its end.
    storage.reset(new char[c.raw_name.size() + 1]);
    memcpy(storage.get(), c.raw_name.c_str(), c.raw_name.size() + 1);
    name = storage.get();
  }
  current_call = name ? Printf("bnorm_set_max_target(\"%s\")", name) : "bnorm_set_max_target(NULL)";
  const bnorm_status status = bnorm_set_max_target(name);
  CheckLastError(status);
  // Documented names must be accepted, names unlike any target rejected;
  // names that differ from one in case only may go either way.
  const int rank = CapRank(name, strcmp);
  const bool runnable = name && std::find(targets.begin(), targets.end(), name) != targets.end();
  const int loose_rank = CapRank(name, strcasecmp);
  if ((rank != kUnknownName || runnable) && status != BNORM_OK) {
    Fail("rejected a target name: %s", StatusName(status).c_str());
  }
  if (loose_rank == kUnknownName && !runnable && status != BNORM_ERR_INVALID_ARGUMENT) {
    Fail("returned %s for an unknown name", StatusName(status).c_str());
  }
  if (status != BNORM_OK) return;
  // An accepted name outside kTargetOrder is one of this library's targets.
  expected_active = loose_rank == kUnknownName ? name : BestWithin(loose_rank);
  const char* active = bnorm_active_target();
  if (expected_active != active) {
    Fail("the active target is %s, not %s", active, expected_active.c_str());
  }
}

void RunStatusString(int32_t value) {
  current_call = Printf("bnorm_status_string(%d)", value);
  const char* text = bnorm_fuzz_status_string(value);
  if (text == nullptr || text[0] == '\0') Fail("no description");
  for (int s = 0; s < kNumStatuses; ++s) {
    const size_t n = strlen(kStatusNames[s]);
    const bool names_s = strncmp(text, kStatusNames[s], n) == 0 && text[n] == ':';
    if (names_s != (s == value)) Fail("described as \"%s\"", text);
  }
}

void RunTargetName(int32_t index) {
  current_call = Printf("bnorm_target_name(%d)", index);
  const char* name = bnorm_target_name(index);
  const bool listed = index >= 0 && index < static_cast<int32_t>(targets.size());
  if (name == nullptr || name != (listed ? targets[index] : "")) {
    Fail("returned \"%s\"", name ? name : "(NULL)");
  }
}

void RunQueries() {
  current_call = "bnorm_version, bnorm_version_string, bnorm_active_target, bnorm_target_count";
  const std::string version =
      Printf("%d.%d.%d", BNORM_VERSION_MAJOR, BNORM_VERSION_MINOR, BNORM_VERSION_PATCH);
  if (bnorm_version() != BNORM_VERSION_NUMBER || version != bnorm_version_string()) {
    Fail("version %u \"%s\"", bnorm_version(), bnorm_version_string());
  }
  if (expected_active != bnorm_active_target()) {
    Fail("the active target is %s, not %s", bnorm_active_target(), expected_active.c_str());
  }
  if (bnorm_target_count() != static_cast<int32_t>(targets.size())) {
    Fail("bnorm_target_count() changed to %d", bnorm_target_count());
  }
  if (bnorm_last_error() == nullptr) Fail("bnorm_last_error() is NULL");
}

}  // namespace
}  // namespace bnorm_fuzz

using namespace bnorm_fuzz;

// The target list is fixed for the process: read it once and check that
// each name caps the dispatch at exactly that target, as bnorm.h promises.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* max = getenv("BNORM_FUZZ_MAX_ELEMENTS")) max_elements = atoll(max);
  if (const char* v = getenv("BNORM_FUZZ_VERBOSE")) verbose = atoi(v) != 0;
  current_call = "initialization: bnorm_target_count, bnorm_target_name, bnorm_set_max_target";
  const int32_t count = bnorm_target_count();
  for (int32_t i = 0; i < count; ++i) targets.push_back(bnorm_target_name(i));
  if (targets.empty() || targets.back() != "SCALAR") {
    Fail("%d targets, the last \"%s\"; bnorm.h says the last is always \"SCALAR\"", count,
         targets.empty() ? "" : targets.back().c_str());
  }
  for (const std::string& t : targets) {
    current_call = "bnorm_set_max_target(\"" + t + "\")";
    const bnorm_status status = bnorm_set_max_target(t.c_str());
    if (status != BNORM_OK) Fail("rejected its own target name: %s", StatusName(status).c_str());
    if (t != bnorm_active_target()) Fail("the active target is %s", bnorm_active_target());
  }
  if (bnorm_set_max_target(nullptr) != BNORM_OK) Fail("could not remove the cap");
  expected_active = targets.front();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (const CallSpec& c : Decode(data, size)) {
    switch (c.op) {
      case Op::kDescInit:
        RunDescInit(c);
        break;
      case Op::kInference:
      case Op::kTraining:
      case Op::kBackward:
      case Op::kFoldScaleShift:
      case Op::kForwardScaleShift:
      case Op::kFoldIntoLayer:
      case Op::kLocalStats:
      case Op::kMergeStats:
      case Op::kForwardNormalize:
      case Op::kBackwardReduce:
      case Op::kBackwardElementwise:
      case Op::kInferenceResidual:
      case Op::kTrainingResidual:
      case Op::kBackwardResidual:
        RunCompute(c);
        break;
      case Op::kSetMaxTarget:
        RunSetMaxTarget(c);
        break;
      case Op::kStatusString:
        RunStatusString(c.value);
        break;
      case Op::kTargetName:
        RunTargetName(c.value);
        break;
      default:
        RunQueries();
        break;
    }
  }
  // Inputs stay independent: the next one starts uncapped.
  current_call = "bnorm_set_max_target(NULL) after the input";
  if (bnorm_set_max_target(nullptr) != BNORM_OK) Fail("could not remove the cap");
  expected_active = targets.front();
  return 0;
}
