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
#include "input_format.h"
#include "oracle.h"

extern "C" const char* bnorm_fuzz_status_string(int32_t value);

namespace bnorm_fuzz {
namespace {

// The largest tensor the library is let loose on. The default, 256 KiB of
// floats, is enough for several threads and reduction chunks and keeps
// executions fast; BNORM_FUZZ_MAX_ELEMENTS raises it, e.g. to 5000000 to reach
// the non-temporal stores the library uses for outputs of 16 MiB and more.
int64_t max_elements = 64 * 1024;
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
const char* const kTargetOrder[] = {"AVX3_DL", "AVX3", "AVX2", "SSE4", "SSSE3", "SCALAR"};
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

// Where each argument goes in the arena, as offsets from its start.
struct Layout {
  uint64_t offset[kMaxSlots];
  uint64_t bytes[kMaxSlots];  // carved for the argument (its extent when the call may run)
  uint64_t size;
};

// bytes: what to carve for an argument of each Extent.
Layout Place(const CallSpec& c, const uint64_t (&bytes)[3]) {
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
      l.offset[i] = (cursor + 63) / 64 * 64 + (p.kind == Placement::kMisaligned ? p.misalign : 0);
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

  explicit Call(const CallSpec& c) : spec(c), sig(SignatureOf(c.op)) {}
  const bnorm_shape* shape_arg() const { return spec.shape.null ? nullptr : &shape; }
  bool IsUsedOutput(int i) const {
    return ptrs[i] != nullptr && sig.slots[i].output && IsUsed(req, sig.slots[i].use);
  }
  bnorm_status Invoke() const {
    const bnorm_desc* d = reinterpret_cast<const bnorm_desc*>(desc.get());
    void* const* p = ptrs;
    auto f = [p](int i) { return static_cast<float*>(p[i]); };
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
      default:
        return bnorm_backward(d, shape_arg(), p[0], p[1], p[2], f(3), f(4), f(5), p[6], f(7), f(8));
    }
  }
};

// Builds the call and returns the status bnorm.h prescribes for it.
bnorm_status Prepare(Call& call) {
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

  const Request& req = call.req = HasShape(c.op)
                                      ? ModelRequest(call.desc.get(), call.shape_arg())
                                      : ModelLayerRequest(call.desc.get(), c.op, c.row_length);
  const bool real_vectors = req.status == BNORM_OK && req.channels <= max_elements;
  // Values per channel in the tensor or the weights (a row each).
  const int64_t per_channel = HasShape(c.op)               ? req.count
                              : c.op == Op::kFoldIntoLayer ? c.row_length
                                                           : 1;
  const bool real = real_vectors && per_channel <= max_elements / req.channels;
  const uint64_t extent_bytes[3] = {real_vectors ? req.vector_bytes : kSmallBuffer,
                                    real ? req.tensor_bytes : kSmallBuffer,
                                    real ? req.weight_bytes : kSmallBuffer};
  const Layout& layout = call.layout = Place(c, extent_bytes);
  call.arena.reset(new uint8_t[layout.size]);
  uint8_t* arena = call.arena.get();
  FillArena(arena, layout.size, c.fill, c.seed);
  for (int i = 0; i < call.sig.num_slots; ++i) {
    if (layout.offset[i] != kNone) call.ptrs[i] = arena + layout.offset[i];
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

  const bnorm_status expected =
      req.status != BNORM_OK ? req.status : ModelCall(req, c.op, call.ptrs);
  // Per-channel arrays longer than int64 bytes cannot exist, so bnorm.h has
  // no verdict on their overlaps; bnorm_fold_scale_shift has no shape to
  // reject them.
  const bool unreal_vectors = req.status == BNORM_OK && req.vector_bytes > INT64_MAX;
  if (real || (!unreal_vectors && expected != BNORM_OK && expected != BNORM_ERR_TOO_FEW_VALUES &&
               expected != BNORM_ERR_UNSUPPORTED)) {
    return expected;
  }
  // A valid shape (or num_features, or weight count) larger than the
  // buffers: with the first argument (x, mean or weights, always required)
  // NULL the call must stop at the pointer checks without reading anything.
  call.ptrs[0] = nullptr;
  return ModelCall(req, c.op, call.ptrs);
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

// Bounded inputs and any valid eps give bounded outputs, unless an input is
// also an output (the in-place pair excepted) or var doubles as mean.
void CheckFinite(const Call& call) {
  if (call.spec.fill != Fill::kSane || AnyOverlap(call.req, call.spec.op, call.ptrs)) return;
  for (int i = 0; i < call.sig.num_slots; ++i) {
    if (!call.IsUsedOutput(i)) continue;
    for (uint64_t b = 0; b < SlotBytes(call.req, call.sig.slots[i]); b += 4) {
      float v;
      memcpy(&v, call.arena.get() + call.layout.offset[i] + b, 4);
      if (!isfinite(v)) {
        Fail("%s[%llu] is %g from finite inputs", call.sig.slots[i].name,
             static_cast<unsigned long long>(b / 4), v);
      }
    }
  }
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

void RunCompute(const CallSpec& c) {
  Call call(c);
  const bnorm_status expected = Prepare(call);
  current_call = Describe(c, call.layout, call.ptrs);
  const std::vector<uint8_t> before(call.arena.get(), call.arena.get() + call.layout.size);
  const bnorm_status status = call.Invoke();
  if (status != expected) {
    Fail("returned %s; bnorm.h says %s", StatusName(status).c_str(), StatusName(expected).c_str());
  }
  CheckLastError(status);
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
  CheckFinite(call);
  CheckThreadsAgree(call, before);
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
