#include "input_format.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include <limits>

namespace bnorm_fuzz {
namespace {

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint8_t U8() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint16_t U16() { return static_cast<uint16_t>(U8() | U8() << 8); }
  uint32_t U32() { return U16() | static_cast<uint32_t>(U16()) << 16; }
  uint64_t U64() { return U32() | static_cast<uint64_t>(U32()) << 32; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

class Writer {
 public:
  void U8(uint32_t v) { bytes_.push_back(static_cast<uint8_t>(v)); }
  void U16(uint32_t v) { U8(v), U8(v >> 8); }
  void U32(uint32_t v) { U16(v), U16(v >> 16); }
  void U64(uint64_t v) { U32(static_cast<uint32_t>(v)), U32(static_cast<uint32_t>(v >> 32)); }
  std::vector<uint8_t> bytes_;
};

// Bit patterns of floats a tag byte may name. Both tables keep the field's
// default out: it has its own tag.
uint32_t Bits(float f) {
  uint32_t b;
  memcpy(&b, &f, sizeof(b));
  return b;
}
const uint32_t kEpsSpecials[8] = {Bits(0.0f),      Bits(-1e-5f), Bits(INFINITY),
                                  Bits(-INFINITY), Bits(NAN),    0x00000001 /* smallest denormal */,
                                  Bits(FLT_MAX),   Bits(1.0f)};
const uint32_t kMomentumSpecials[8] = {Bits(0.0f),       Bits(1.0f),   Bits(-0.0f),    Bits(NAN),
                                       Bits(1.0000001f), Bits(-1e-7f), Bits(INFINITY), Bits(0.5f)};

// Sizes an older header's bnorm_desc may have, and the current one.
const uint32_t kKnownSizes[7] = {offsetof(bnorm_desc, eps),   offsetof(bnorm_desc, momentum),
                                 offsetof(bnorm_desc, flags), offsetof(bnorm_desc, layout),
                                 offsetof(bnorm_desc, dtype), offsetof(bnorm_desc, num_threads),
                                 sizeof(bnorm_desc)};

// Small values in one byte; up to 65535, small negatives, powers of two (for
// overflowing products) and any value in more.
int64_t DecodeInt(Reader& r) {
  const uint8_t t = r.U8();
  if (t < 0x80) return t;
  if (t < 0xC0) return r.U16();
  if (t < 0xE0) return -static_cast<int64_t>(r.U8());
  if (t < 0xF0) return int64_t{1} << (r.U8() % 63);
  return static_cast<int64_t>(r.U64());
}
void EncodeInt(Writer& w, int64_t v) {
  if (v >= 0 && v < 0x80) return w.U8(static_cast<uint32_t>(v));
  if (v >= 0 && v <= 0xFFFF) return w.U8(0x80), w.U16(static_cast<uint32_t>(v));
  if (v < 0 && v >= -255) return w.U8(0xC0), w.U8(static_cast<uint32_t>(-v));
  if (v > 0 && (v & (v - 1)) == 0) return w.U8(0xE0), w.U8(__builtin_ctzll(v));
  w.U8(0xF0), w.U64(static_cast<uint64_t>(v));
}

uint32_t DecodeFloat(Reader& r, uint32_t default_bits, const uint32_t* specials) {
  const uint8_t t = r.U8();
  if (t < 0xE0) return default_bits;
  if (t < 0xE8) return specials[t - 0xE0];
  return r.U32();
}
void EncodeFloat(Writer& w, uint32_t bits, uint32_t default_bits, const uint32_t* specials) {
  if (bits == default_bits) return w.U8(0);
  for (int i = 0; i < 8; ++i) {
    if (specials[i] == bits) return w.U8(0xE0 + i);
  }
  w.U8(0xE8), w.U32(bits);
}

// Tags from 0xF0 up (0xF8 for num_threads) take any value from four more bytes.
int32_t DecodeRaw(Reader& r) { return static_cast<int32_t>(r.U32()); }
void EncodeRaw(Writer& w, int32_t v) { w.U8(0xFF), w.U32(static_cast<uint32_t>(v)); }

void DecodeDesc(Reader& r, DescSpec& d) {
  const DescSpec defaults;
  uint8_t t = r.U8();
  d.struct_size = t < 0xE0   ? defaults.struct_size
                  : t < 0xE7 ? kKnownSizes[t - 0xE0]
                             : static_cast<uint32_t>(r.U32());
  d.num_features = DecodeInt(r);
  d.eps_bits = DecodeFloat(r, defaults.eps_bits, kEpsSpecials);
  d.momentum_bits = DecodeFloat(r, defaults.momentum_bits, kMomentumSpecials);
  t = r.U8();
  d.flags = t < 0xF0 ? t & 0xF : static_cast<uint32_t>(DecodeRaw(r));
  t = r.U8();
  d.layout = t < 0xF0 ? t & 1 : DecodeRaw(r);
  t = r.U8();
  d.dtype = t < 0xC0 ? 0 : t < 0xF0 ? 1 + (t & 1) : DecodeRaw(r);
  t = r.U8();
  d.num_threads = t < 0xF0 ? t % 5 : t < 0xF8 ? 0xEF - t : DecodeRaw(r);
}
void EncodeDesc(Writer& w, const DescSpec& d) {
  const DescSpec defaults;
  if (d.struct_size == defaults.struct_size) {
    w.U8(0);
  } else {
    int known = 0;
    while (known < 7 && kKnownSizes[known] != d.struct_size) ++known;
    if (known < 7) {
      w.U8(0xE0 + known);
    } else {
      w.U8(0xE7), w.U32(d.struct_size);
    }
  }
  EncodeInt(w, d.num_features);
  EncodeFloat(w, d.eps_bits, defaults.eps_bits, kEpsSpecials);
  EncodeFloat(w, d.momentum_bits, defaults.momentum_bits, kMomentumSpecials);
  d.flags <= 0xF ? w.U8(d.flags) : EncodeRaw(w, static_cast<int32_t>(d.flags));
  d.layout == 0 || d.layout == 1 ? w.U8(d.layout) : EncodeRaw(w, d.layout);
  if (d.dtype == 0) {
    w.U8(0);
  } else if (d.dtype == 1 || d.dtype == 2) {
    w.U8(0xC0 + d.dtype - 1);
  } else {
    EncodeRaw(w, d.dtype);
  }
  if (d.num_threads >= 0 && d.num_threads <= 4) {
    w.U8(d.num_threads);
  } else if (d.num_threads >= -8 && d.num_threads <= -1) {
    w.U8(0xEF - d.num_threads);
  } else {
    EncodeRaw(w, d.num_threads);
  }
}

void DecodeShape(Reader& r, ShapeSpec& s) {
  const uint8_t t = r.U8();
  s.rank = t < 0xF0 ? 2 + t % 4 : DecodeRaw(r);
  for (int64_t& dim : s.dims) dim = DecodeInt(r);
}
void EncodeShape(Writer& w, const ShapeSpec& s) {
  s.rank >= 2 && s.rank <= 5 ? w.U8(s.rank - 2) : EncodeRaw(w, s.rank);
  for (int64_t dim : s.dims) EncodeInt(w, dim);
}

Placement DecodePlacement(Reader& r) {
  const uint8_t t = r.U8();
  Placement p;
  if (t < 0xC0) return p;
  if (t < 0xD0) {
    p.kind = Placement::kNull;
  } else if (t < 0xE0) {
    p.kind = Placement::kSame;
    p.target = t & 0xF;
  } else if (t < 0xF0) {
    p.kind = Placement::kOffset;
    p.target = t & 0xF;
    p.delta = static_cast<int16_t>(r.U16());
  } else {
    p.kind = Placement::kMisaligned;
    p.misalign = 1 + (t & 0xF) % 3;
  }
  return p;
}
void EncodePlacement(Writer& w, const Placement& p) {
  switch (p.kind) {
    case Placement::kFresh:
      return w.U8(0);
    case Placement::kNull:
      return w.U8(0xC0);
    case Placement::kSame:
      return w.U8(0xD0 + p.target);
    case Placement::kOffset:
      return w.U8(0xE0 + p.target), w.U16(static_cast<uint16_t>(p.delta));
    case Placement::kMisaligned:
      return w.U8(0xF0 + p.misalign - 1);
  }
}

// What follows a compute call's descriptor (and shape or row_length): the
// data's fill and seed and where each pointer argument goes.
void DecodeData(Reader& r, CallSpec& c) {
  const uint8_t fill = r.U8();
  c.fill = fill < 0xC0 ? Fill::kSane : fill < 0xE0 ? Fill::kRaw : Fill::kSpecial;
  c.seed = r.U32();
  for (int i = 0; i < NumSlots(c.op); ++i) c.slots[i] = DecodePlacement(r);
}
void EncodeData(Writer& w, const CallSpec& c) {
  w.U8(c.fill == Fill::kSane ? 0 : c.fill == Fill::kRaw ? 0xC0 : 0xE0);
  w.U32(c.seed);
  for (int i = 0; i < NumSlots(c.op); ++i) EncodePlacement(w, c.slots[i]);
}

// num_partials: mostly 1 to 64 blocks, else 0 and small negatives, or any
// int32.
int32_t DecodePartials(Reader& r) {
  const uint8_t t = r.U8();
  if (t < 0xC0) return 1 + t % 64;
  if (t < 0xF0) return -(t - 0xC0);
  return DecodeRaw(r);
}
void EncodePartials(Writer& w, int32_t v) {
  if (v >= 1 && v <= 64) return w.U8(v - 1);
  if (v <= 0 && v > -0x30) return w.U8(0xC0 - v);
  EncodeRaw(w, v);
}

void DecodeStats(Reader& r, StatsSpec& s) {
  const uint8_t t = r.U8();
  if (t < 0x80) {
    s.kind = StatsSpec::kSane;
  } else if (t < 0xA0) {
    s.kind = StatsSpec::kPoked;
    s.pokes = 1 + (t & 0xF);
  } else if (t < 0xC0) {
    s.kind = StatsSpec::kCount;
    s.count = DecodeInt(r);
  } else {
    s.kind = t < 0xE0 ? StatsSpec::kSpecial : StatsSpec::kRaw;
  }
}
void EncodeStats(Writer& w, const StatsSpec& s) {
  switch (s.kind) {
    case StatsSpec::kSane:
      return w.U8(0);
    case StatsSpec::kPoked:
      return w.U8(0x80 + s.pokes - 1);
    case StatsSpec::kCount:
      return w.U8(0xA0), EncodeInt(w, s.count);
    case StatsSpec::kSpecial:
      return w.U8(0xC0);
    case StatsSpec::kRaw:
      return w.U8(0xE0);
  }
}

constexpr uint8_t kDescNull = 0xFF, kShapeNull = 0xFE;

}  // namespace

const char* const kListedNames[16] = {
    nullptr, "",       "BEST",      "best",   "AVX3_DL",  "AVX3",    "AVX2", "SSE4",
    "SSSE3", "SCALAR", "avx3_bf16", "EMU128", "AVX3_SPR", "SCALAR ", "NEON", "Avx3_dl"};

int NumSlots(Op op) {
  switch (op) {
    case Op::kLocalStats:
      return 2;
    case Op::kInference:
    case Op::kFoldScaleShift:
    case Op::kMergeStats:
    case Op::kForwardNormalize:
      return 6;
    case Op::kInferenceResidual:
      return 7;
    case Op::kForwardScaleShift:
      return 4;
    case Op::kTraining:
    case Op::kFoldIntoLayer:
    case Op::kBackwardReduce:
    case Op::kBackwardElementwise:
      return 8;
    case Op::kBackward:
    case Op::kTrainingResidual:
      return 9;
    case Op::kBackwardResidual:
      return 10;
    default:
      return 0;
  }
}

std::vector<CallSpec> Decode(const uint8_t* data, size_t size) {
  Reader r(data, size);
  std::vector<CallSpec> calls;
  while (!r.empty() && calls.size() < kMaxOps) {
    CallSpec c;
    c.op = static_cast<Op>(r.U8() % static_cast<uint8_t>(Op::kNumOps));
    switch (c.op) {
      case Op::kDescInit:
        c.desc.null = r.U8() == kDescNull;
        c.desc.num_features = DecodeInt(r);
        break;
      case Op::kInference:
      case Op::kTraining:
      case Op::kBackward:
      case Op::kForwardScaleShift:
      case Op::kLocalStats:
      case Op::kForwardNormalize:
      case Op::kBackwardReduce:
      case Op::kBackwardElementwise:
      case Op::kInferenceResidual:
      case Op::kTrainingResidual:
      case Op::kBackwardResidual: {
        const uint8_t options = r.U8();
        c.desc.null = options == kDescNull;
        c.shape.null = options == kShapeNull;
        c.match_channels = options < kShapeNull && (options & 1);
        DecodeDesc(r, c.desc);
        DecodeShape(r, c.shape);
        if (c.match_channels && c.shape.rank >= 2 && c.shape.rank <= 5) {
          c.shape.dims[c.desc.layout == BNORM_LAYOUT_NHWC ? c.shape.rank - 1 : 1] =
              c.desc.num_features;
        }
        if (c.op == Op::kBackwardElementwise) {
          c.num_partials = DecodePartials(r);
          DecodeStats(r, c.stats);
        }
        DecodeData(r, c);
        break;
      }
      // No shape: the options byte only says whether desc is NULL.
      case Op::kFoldScaleShift:
      case Op::kFoldIntoLayer:
      case Op::kMergeStats:
        c.desc.null = r.U8() == kDescNull;
        DecodeDesc(r, c.desc);
        if (c.op == Op::kFoldIntoLayer) c.row_length = DecodeInt(r);
        if (c.op == Op::kMergeStats) {
          c.num_partials = DecodePartials(r);
          DecodeStats(r, c.stats);
        }
        DecodeData(r, c);
        break;
      case Op::kSetMaxTarget: {
        const uint8_t t = r.U8();
        if (t < 0x10) {
          c.name_index = t;
        } else if (t < 0x20) {
          c.name_kind = CallSpec::kTargetIndex;
          c.name_index = t & 0xF;
        } else {
          c.name_kind = CallSpec::kRawName;
          for (int n = (t - 0x20) % 40; n > 0; --n) c.raw_name.push_back(static_cast<char>(r.U8()));
        }
        break;
      }
      case Op::kStatusString:
      case Op::kTargetName:
        c.value = static_cast<int32_t>(r.U32());
        break;
      default:
        break;
    }
    calls.push_back(c);
  }
  return calls;
}

std::vector<uint8_t> Encode(const std::vector<CallSpec>& calls) {
  Writer w;
  for (const CallSpec& c : calls) {
    w.U8(static_cast<uint8_t>(c.op));
    switch (c.op) {
      case Op::kDescInit:
        w.U8(c.desc.null ? kDescNull : 0);
        EncodeInt(w, c.desc.num_features);
        break;
      case Op::kInference:
      case Op::kTraining:
      case Op::kBackward:
      case Op::kForwardScaleShift:
      case Op::kLocalStats:
      case Op::kForwardNormalize:
      case Op::kBackwardReduce:
      case Op::kBackwardElementwise:
      case Op::kInferenceResidual:
      case Op::kTrainingResidual:
      case Op::kBackwardResidual:
        w.U8(c.desc.null ? kDescNull : c.shape.null ? kShapeNull : c.match_channels ? 1 : 0);
        EncodeDesc(w, c.desc);
        EncodeShape(w, c.shape);
        if (c.op == Op::kBackwardElementwise) {
          EncodePartials(w, c.num_partials);
          EncodeStats(w, c.stats);
        }
        EncodeData(w, c);
        break;
      case Op::kFoldScaleShift:
      case Op::kFoldIntoLayer:
      case Op::kMergeStats:
        w.U8(c.desc.null ? kDescNull : 0);
        EncodeDesc(w, c.desc);
        if (c.op == Op::kFoldIntoLayer) EncodeInt(w, c.row_length);
        if (c.op == Op::kMergeStats) {
          EncodePartials(w, c.num_partials);
          EncodeStats(w, c.stats);
        }
        EncodeData(w, c);
        break;
      case Op::kSetMaxTarget:
        if (c.name_kind == CallSpec::kListedName) {
          w.U8(c.name_index);
        } else if (c.name_kind == CallSpec::kTargetIndex) {
          w.U8(0x10 + c.name_index);
        } else {
          w.U8(0x20 + c.raw_name.size());
          for (char ch : c.raw_name) w.U8(static_cast<uint8_t>(ch));
        }
        break;
      case Op::kStatusString:
      case Op::kTargetName:
        w.U32(static_cast<uint32_t>(c.value));
        break;
      default:
        break;
    }
  }
  return w.bytes_;
}

bool DescSpec::operator==(const DescSpec& o) const {
  return null == o.null && struct_size == o.struct_size && num_features == o.num_features &&
         eps_bits == o.eps_bits && momentum_bits == o.momentum_bits && flags == o.flags &&
         layout == o.layout && dtype == o.dtype && num_threads == o.num_threads;
}

bool ShapeSpec::operator==(const ShapeSpec& o) const {
  return null == o.null && rank == o.rank && memcmp(dims, o.dims, sizeof(dims)) == 0;
}

bool StatsSpec::operator==(const StatsSpec& o) const {
  return kind == o.kind && pokes == o.pokes && count == o.count;
}

bool Placement::operator==(const Placement& o) const {
  return kind == o.kind && target == o.target && delta == o.delta && misalign == o.misalign;
}

bool CallSpec::operator==(const CallSpec& o) const {
  if (op != o.op || name_kind != o.name_kind || name_index != o.name_index ||
      raw_name != o.raw_name || value != o.value || row_length != o.row_length ||
      num_partials != o.num_partials || !(stats == o.stats) || fill != o.fill || seed != o.seed ||
      match_channels != o.match_channels || !(desc == o.desc) || !(shape == o.shape)) {
    return false;
  }
  for (int i = 0; i < kMaxSlots; ++i) {
    if (!(slots[i] == o.slots[i])) return false;
  }
  return true;
}

}  // namespace bnorm_fuzz
