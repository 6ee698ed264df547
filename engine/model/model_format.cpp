// model_format.cpp - .fmm reader and writer (see model/FORMAT.md).
#include "model/model_format.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>

namespace fm {
namespace {

constexpr uint32_t kMaxStringLength = 4096;
constexpr uint32_t kMaxMetadata = 256;
constexpr uint32_t kMaxTensors = 1 << 16;
constexpr uint32_t kMaxNodes = 1 << 16;
constexpr uint32_t kMaxGraphIo = 16;
constexpr uint32_t kMaxAttrs = 32;
constexpr uint32_t kMaxAttrValues = 64;
constexpr uint32_t kNoTensorIndex = 0xFFFFFFFFu;

enum StorageKind : uint8_t {
  kStoreActivation = 0,
  kStoreF32 = 1,
  kStoreF16 = 2,
  kStoreF16Sparse = 3,  // bitmap of non-zeros, signs of the zeros, then the non-zero float16s
  kStoreI8 = 4,         // per-channel float32 scales, then one int8 per element
  kStoreI8Sparse = 5,   // per-channel float32 scales, bitmap of non-zeros, the non-zero int8s
};

// Byte sizes of the parts of an int8 blob (kinds 4 and 5).
struct Int8Layout {
  uint64_t scales;  // 4 x channels: float32, one per index of the record's axis
  uint64_t bitmap;  // kind 5 only: ceil(elements / 8); bit i set = element i is stored
  uint64_t values;  // kind 4: one int8 per element; kind 5: one per stored element
  uint64_t total() const { return scales + bitmap + values; }
};

Int8Layout Int8DenseLayout(uint64_t channels, uint64_t count) {
  return {4 * channels, 0, count};
}
Int8Layout Int8SparseLayout(uint64_t channels, uint64_t count, uint64_t nonzeros) {
  return {4 * channels, (count + 7) / 8, nonzeros};
}

// Byte sizes of the three parts of a float16 sparse blob (kind 3). Both bitmaps are padded to
// whole 16-bit words, so the values that follow are 2-byte aligned.
struct SparseLayout {
  uint64_t bitmap;  // bit i (byte i / 8, bit i % 8) set = element i is stored
  uint64_t signs;   // one bit per zero element, in element order: set = -0.0
  uint64_t values;  // the stored elements' float16 bits, in element order
  uint64_t total() const { return bitmap + signs + values; }
};

SparseLayout SparseF16Layout(uint64_t count, uint64_t nonzeros) {
  return {(count + 15) / 16 * 2, (count - nonzeros + 15) / 16 * 2, 2 * nonzeros};
}

// +0.0 or -0.0: left out of a sparse blob's values.
bool IsZeroHalf(uint16_t h) {
  return (h & 0x7FFF) == 0;
}

// Bounds-checked little-endian reader over the graph section. Every read reports the byte offset
// (from the start of the file) where it failed.
class Reader {
 public:
  Reader(const uint8_t* data, uint64_t size, uint64_t base)
      : data_(data), size_(size), base_(base) {}

  uint64_t offset() const { return base_ + pos_; }
  bool done() const { return pos_ == size_; }

  Status Bytes(void* out, uint64_t n, const char* what) {
    if (n > size_ - pos_)
      return Errorf("graph section ends at byte ", base_ + size_, " while reading ", what,
                    " at byte ", offset());
    std::memcpy(out, data_ + pos_, size_t(n));
    pos_ += n;
    return Status::Ok();
  }
  Status U8(uint8_t* v, const char* what) { return Bytes(v, 1, what); }
  Status U32(uint32_t* v, const char* what) {
    uint8_t b[4];
    FM_RETURN_IF_ERROR(Bytes(b, 4, what));
    *v = uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24;
    return Status::Ok();
  }
  Status U64(uint64_t* v, const char* what) {
    uint32_t lo = 0, hi = 0;
    FM_RETURN_IF_ERROR(U32(&lo, what));
    FM_RETURN_IF_ERROR(U32(&hi, what));
    *v = uint64_t(lo) | uint64_t(hi) << 32;
    return Status::Ok();
  }
  Status I64(int64_t* v, const char* what) {
    uint64_t u = 0;
    FM_RETURN_IF_ERROR(U64(&u, what));
    std::memcpy(v, &u, 8);
    return Status::Ok();
  }
  Status F32(float* v, const char* what) {
    uint32_t u = 0;
    FM_RETURN_IF_ERROR(U32(&u, what));
    std::memcpy(v, &u, 4);
    return Status::Ok();
  }
  Status Count(uint32_t* v, uint32_t max, const char* what) {
    const uint64_t at = offset();
    FM_RETURN_IF_ERROR(U32(v, what));
    if (*v > max) return Errorf(what, " at byte ", at, " is ", *v, " (limit ", max, ")");
    return Status::Ok();
  }
  Status String(std::string* s, const char* what) {
    uint32_t n = 0;
    FM_RETURN_IF_ERROR(Count(&n, kMaxStringLength, what));
    s->resize(n);
    if (n) FM_RETURN_IF_ERROR(Bytes(&(*s)[0], n, what));
    for (char c : *s)
      if (c == '\0') return Errorf(what, " ending at byte ", offset(), " contains a NUL byte");
    return Status::Ok();
  }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t base_;
  uint64_t pos_ = 0;
};

uint32_t LoadU32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
uint64_t LoadU64(const uint8_t* p) {
  return uint64_t(LoadU32(p)) | uint64_t(LoadU32(p + 4)) << 32;
}

std::string Hex16(uint16_t h) {
  static const char* digits = "0123456789abcdef";
  std::string s = "0x";
  for (int shift = 12; shift >= 0; shift -= 4) s += digits[(h >> shift) & 0xF];
  return s;
}

// Bits [used, 8 * bytes) of a bitmap are padding and must be 0.
Status CheckBitmapPadding(const uint8_t* bits, uint64_t bytes, uint64_t used, const char* what,
                          uint64_t at) {
  for (uint64_t i = used; i < 8 * bytes; ++i)
    if (bits[i >> 3] >> (i & 7) & 1)
      return Errorf(what, ": padding bit ", i, " (byte ", at + (i >> 3), ") is set; bits ", used,
                    "..", 8 * bytes - 1, " must be 0");
  return Status::Ok();
}

// Index of the element that holds stored value `k` (the (k+1)-th set bit), for messages.
uint64_t ElementOfStoredValue(const uint8_t* bitmap, uint64_t k) {
  for (uint64_t i = 0;; ++i)
    if (((bitmap[i >> 3] >> (i & 7)) & 1) && k-- == 0) return i;
}

// Expands a float16 sparse blob of `count` elements, `nonzeros` of them stored, into `out`. The
// caller has checked that the blob's length matches SparseF16Layout; `at` is its file offset.
// Every element's float16 bits are reproduced exactly, the sign of each zero included.
Status DecodeSparseF16(const uint8_t* blob, uint64_t count, uint64_t nonzeros, uint64_t at,
                       std::vector<float>* out) {
  const SparseLayout layout = SparseF16Layout(count, nonzeros);
  const uint64_t zeros = count - nonzeros;
  const uint8_t* bitmap = blob;
  const uint8_t* signs = bitmap + layout.bitmap;
  const uint8_t* values = signs + layout.signs;
  const uint64_t signs_at = at + layout.bitmap, values_at = signs_at + layout.signs;
  FM_RETURN_IF_ERROR(CheckBitmapPadding(bitmap, layout.bitmap, count, "non-zero bitmap", at));
  uint64_t set = 0;
  for (uint64_t i = 0; i < layout.bitmap; ++i) set += uint64_t(__builtin_popcount(bitmap[i]));
  if (set != nonzeros)
    return Errorf("non-zero bitmap (bytes ", at, "..", signs_at - 1, ") has ", set,
                  " bits set but the record says ", nonzeros, " non-zeros");
  FM_RETURN_IF_ERROR(CheckBitmapPadding(signs, layout.signs, zeros, "zero-sign bitmap", signs_at));
  // Three passes, so that no branch depends on the (random) bitmap: the stored values and the
  // zeros as float32 bit patterns (each list with one spare entry), then a branch-free merge.
  std::vector<uint32_t> stored(size_t(nonzeros) + 1), zero(size_t(zeros) + 1);
  for (uint64_t k = 0; k < nonzeros; ++k) {
    const uint16_t h = uint16_t(values[2 * k] | values[2 * k + 1] << 8);
    if (IsZeroHalf(h))
      return Errorf("stored value ", k, " (element ", ElementOfStoredValue(bitmap, k), ") at byte ",
                    values_at + 2 * k, " is ", h ? "-0.0" : "+0.0",
                    "; zeros must be left out of the bitmap, not stored");
    if ((h & 0x7C00) == 0x7C00)
      return Errorf("stored value ", k, " (element ", ElementOfStoredValue(bitmap, k), ") at byte ",
                    values_at + 2 * k, " is not finite (float16 ", Hex16(h), ")");
    const float f = HalfToFloat(h);
    std::memcpy(&stored[size_t(k)], &f, 4);
  }
  for (uint64_t z = 0; z < zeros; ++z)
    zero[size_t(z)] = uint32_t(signs[z >> 3] >> (z & 7) & 1) << 31;
  out->resize(size_t(count));
  float* dst = out->data();
  uint64_t k = 0, z = 0;  // next stored value, next zero
  for (uint64_t i = 0; i < count; ++i) {
    const uint32_t is_stored = bitmap[i >> 3] >> (i & 7) & 1;
    const uint32_t u = (stored[size_t(k)] & (0u - is_stored)) | (zero[size_t(z)] & (is_stored - 1));
    std::memcpy(dst + i, &u, 4);
    k += is_stored;
    z += 1 - is_stored;
  }
  return Status::Ok();
}

// Where a constant's bytes are and how they are stored (kStoreActivation: none).
struct Blob {
  uint8_t kind = kStoreActivation;
  uint64_t offset = 0, length = 0, count = 0;
  uint32_t nonzeros = 0;
  uint8_t axis = 0;                  // int8 kinds: the axis the scales run along
  uint64_t channels = 0, inner = 0;  // its size, and the elements per step along it
};

bool IsInt8Kind(uint8_t kind) {
  return kind == kStoreI8 || kind == kStoreI8Sparse;
}

// Reads one tensor record: name, shape and where its data is. Nothing is decoded here: the
// caller checks every record together (names, total size, overlaps) before any allocation.
Status ReadTensor(Reader& r, uint64_t data_size, uint64_t data_offset, Tensor* t, Blob* b) {
  FM_RETURN_IF_ERROR(r.String(&t->name, "tensor name"));
  if (t->name.empty()) return Errorf("empty tensor name at byte ", r.offset());
  uint8_t kind = 0, rank = 0;
  const uint64_t kind_at = r.offset();
  FM_RETURN_IF_ERROR(r.U8(&kind, "tensor kind"));
  if (kind > kStoreI8Sparse)
    return Errorf("unknown storage kind ", int(kind), " at byte ", kind_at);
  FM_RETURN_IF_ERROR(r.U8(&rank, "tensor rank"));
  if (rank < 1 || rank > kMaxRank)
    return Errorf("rank ", int(rank), " at byte ", r.offset() - 1, " is outside 1..", kMaxRank);
  t->shape.resize(rank);
  for (auto& d : t->shape) {
    uint32_t v = 0;
    FM_RETURN_IF_ERROR(r.U32(&v, "tensor dimension"));
    d = v;
  }
  Status s = CheckShape(t->shape);
  if (!s.ok()) return s.Prefix("shape: ");
  t->kind = kind == kStoreActivation ? TensorKind::kActivation : TensorKind::kConstant;
  b->kind = kind;
  if (kind == kStoreActivation) return Status::Ok();
  FM_RETURN_IF_ERROR(r.U64(&b->offset, "data offset"));
  FM_RETURN_IF_ERROR(r.U64(&b->length, "data length"));
  const uint64_t count = b->count = uint64_t(NumElements(t->shape));
  const uint64_t length = b->length;
  if (IsInt8Kind(kind)) {
    const uint64_t axis_at = r.offset();
    FM_RETURN_IF_ERROR(r.U8(&b->axis, "int8 scale axis"));
    if (b->axis >= rank)
      return Errorf("int8 scale axis ", int(b->axis), " at byte ", axis_at,
                    " is not an axis of shape ", ShapeToString(t->shape));
    b->channels = uint64_t(t->shape[b->axis]);
    b->inner = 1;
    for (size_t d = size_t(b->axis) + 1; d < rank; ++d) b->inner *= uint64_t(t->shape[d]);
    Int8Layout layout = Int8DenseLayout(b->channels, count);
    if (kind == kStoreI8Sparse) {
      const uint64_t nonzeros_at = r.offset();
      FM_RETURN_IF_ERROR(r.U32(&b->nonzeros, "non-zero count"));
      if (b->nonzeros > count)
        return Errorf("non-zero count ", b->nonzeros, " at byte ", nonzeros_at, " exceeds the ",
                      count, " elements of shape ", ShapeToString(t->shape));
      layout = Int8SparseLayout(b->channels, count, b->nonzeros);
    }
    if (length != layout.total())
      return Errorf("data length ", length, " does not match shape ", ShapeToString(t->shape),
                    kind == kStoreI8Sparse ? " with " + std::to_string(b->nonzeros) + " non-zeros"
                                           : std::string(),
                    " (", layout.total(), " bytes as int8", kind == kStoreI8Sparse ? " sparse" : "",
                    ": ", layout.scales, " bytes of scales for the ", b->channels,
                    " indices of axis ", int(b->axis),
                    kind == kStoreI8Sparse ? ", " + std::to_string(layout.bitmap) + "-byte bitmap"
                                           : std::string(),
                    ", ", layout.values, " bytes of values)");
  } else if (kind == kStoreF16Sparse) {
    const uint64_t nonzeros_at = r.offset();
    FM_RETURN_IF_ERROR(r.U32(&b->nonzeros, "non-zero count"));
    if (b->nonzeros > count)
      return Errorf("non-zero count ", b->nonzeros, " at byte ", nonzeros_at, " exceeds the ",
                    count, " elements of shape ", ShapeToString(t->shape));
    const SparseLayout layout = SparseF16Layout(count, b->nonzeros);
    if (length != layout.total())
      return Errorf("data length ", length, " does not match shape ", ShapeToString(t->shape),
                    " with ", b->nonzeros, " non-zeros (", layout.total(),
                    " bytes as float16 sparse: ", layout.bitmap, "-byte non-zero bitmap, ",
                    layout.signs, "-byte zero-sign bitmap, ", layout.values, " bytes of values)");
  } else {
    const uint64_t elem = kind == kStoreF32 ? 4 : 2;
    if (length != count * elem)
      return Errorf("data length ", length, " does not match shape ", ShapeToString(t->shape), " (",
                    count * elem, " bytes as ", kind == kStoreF32 ? "float32" : "float16", ")");
  }
  if (b->offset > data_size || length > data_size - b->offset)
    return Errorf("data [", b->offset, ", +", length, ") lies outside the data section (",
                  data_size, " bytes at file offset ", data_offset, ")");
  t->store_fp16 = kind == kStoreF16 || kind == kStoreF16Sparse;
  t->int8_axis = IsInt8Kind(kind) ? int(b->axis) : -1;
  return Status::Ok();
}

// Expands an int8 blob (kind 4 or 5; its length already checked against the record) into
// t->data = q x scale and t->int8_scales. Scales must be > 0 and at most FLT_MAX / 127; values lie
// in -127..127 (symmetric: -128 is refused); a sparse blob's bitmap must have exactly `nonzeros`
// bits set, no padding bit, and no stored value 0.
Status DecodeInt8(const Blob& b, const uint8_t* blob, uint64_t at, Tensor* t) {
  const Int8Layout layout = b.kind == kStoreI8Sparse
                                ? Int8SparseLayout(b.channels, b.count, b.nonzeros)
                                : Int8DenseLayout(b.channels, b.count);
  std::vector<float>& scales = t->int8_scales;
  scales.resize(size_t(b.channels));
  for (uint64_t c = 0; c < b.channels; ++c) {
    const uint32_t u = LoadU32(blob + 4 * c);
    std::memcpy(&scales[size_t(c)], &u, 4);
    // (x 127 finite too: every decoded weight q x scale must be a finite float)
    if (!(std::isfinite(scales[size_t(c)] * 127.f) && scales[size_t(c)] > 0.f))
      return Errorf("scale ", c, " at byte ", at + 4 * c, " is ", scales[size_t(c)],
                    "; scales must be > 0 and at most FLT_MAX / 127");
  }
  const uint8_t* bitmap = blob + layout.scales;
  const uint8_t* values = bitmap + layout.bitmap;
  const uint64_t bitmap_at = at + layout.scales, values_at = bitmap_at + layout.bitmap;
  if (b.kind == kStoreI8Sparse) {
    FM_RETURN_IF_ERROR(CheckBitmapPadding(bitmap, layout.bitmap, b.count, "bitmap", bitmap_at));
    uint64_t set = 0;
    for (uint64_t i = 0; i < layout.bitmap; ++i) set += uint64_t(__builtin_popcount(bitmap[i]));
    if (set != b.nonzeros)
      return Errorf("bitmap (bytes ", bitmap_at, "..", values_at - 1, ") has ", set,
                    " bits set but the record says ", b.nonzeros, " non-zeros");
  }
  for (uint64_t k = 0; k < layout.values; ++k) {
    const int8_t q = int8_t(values[k]);
    if (q == -128)
      return Errorf("value ", k, " at byte ", values_at + k,
                    " is -128; symmetric int8 values lie in -127..127");
    if (q == 0 && b.kind == kStoreI8Sparse)
      return Errorf("stored value ", k, " (element ", ElementOfStoredValue(bitmap, k), ") at byte ",
                    values_at + k, " is 0; zeros must be left out of the bitmap, not stored");
  }
  t->data.assign(size_t(b.count), 0.f);
  float* dst = t->data.data();
  uint64_t k = 0;  // next stored value
  for (uint64_t i = 0; i < b.count; ++i) {
    const bool stored = b.kind == kStoreI8 || (bitmap[i >> 3] >> (i & 7) & 1);
    if (!stored) continue;
    dst[i] = float(int8_t(values[k++])) * scales[size_t(i / b.inner % b.channels)];
  }
  return Status::Ok();
}

// Decodes a checked blob into t->data.
Status DecodeBlob(const Blob& b, const uint8_t* data_section, uint64_t data_offset, Tensor* t) {
  const uint8_t* p = data_section + b.offset;
  if (IsInt8Kind(b.kind)) {
    Status s = DecodeInt8(b, p, data_offset + b.offset, t);
    if (!s.ok()) return s.Prefix(b.kind == kStoreI8 ? "int8 data: " : "int8 sparse data: ");
    return Status::Ok();
  }
  if (b.kind == kStoreF16Sparse) {
    Status s = DecodeSparseF16(p, b.count, b.nonzeros, data_offset + b.offset, &t->data);
    if (!s.ok()) return s.Prefix("float16 sparse data: ");
    return Status::Ok();
  }
  t->data.resize(size_t(b.count));
  for (uint64_t i = 0; i < b.count; ++i) {
    if (b.kind == kStoreF32) {
      const uint32_t u = LoadU32(p + 4 * i);
      std::memcpy(&t->data[size_t(i)], &u, 4);
    } else {
      t->data[size_t(i)] = HalfToFloat(uint16_t(p[2 * i] | p[2 * i + 1] << 8));
    }
  }
  return Status::Ok();
}

// Before anything is decoded: tensor names are unique, the constants' decoded size fits the
// budget (a few bytes of a sparse blob describe up to 2^26 elements), and no two constants share
// bytes of the data section (aliased blocks would multiply one blob's decoded size).
Status CheckTensorRecords(const Graph& g, const std::vector<Blob>& blobs) {
  std::map<std::string, size_t> names;
  for (size_t i = 0; i < g.tensors.size(); ++i)
    if (!names.emplace(g.tensors[i].name, i).second)
      return Errorf("model: tensors ", names[g.tensors[i].name], " and ", i, " are both named '",
                    g.tensors[i].name, "'");
  uint64_t decoded = 0;
  std::vector<size_t> order;
  for (size_t i = 0; i < blobs.size(); ++i) {
    if (blobs[i].kind == kStoreActivation) continue;
    decoded += blobs[i].count * 4;
    order.push_back(i);
  }
  if (decoded > kModelMaxDecodedBytes)
    return Errorf("model: the constants decode to ", decoded, " bytes, over the limit of ",
                  kModelMaxDecodedBytes, " (", kModelMaxDecodedBytes >> 20, " MiB)");
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return blobs[a].offset < blobs[b].offset; });
  for (size_t k = 1; k < order.size(); ++k) {
    const Blob &a = blobs[order[k - 1]], &b = blobs[order[k]];
    if (b.offset < a.offset + a.length)
      return Errorf("model: the data of tensor ", order[k], " ('", g.tensors[order[k]].name, "', [",
                    b.offset, ", +", b.length, ")) overlaps that of tensor ", order[k - 1], " ('",
                    g.tensors[order[k - 1]].name, "', [", a.offset, ", +", a.length, "))");
  }
  return Status::Ok();
}

Status ReadIndexList(Reader& r, uint32_t max, const char* what, std::vector<int32_t>* out) {
  uint32_t n = 0;
  FM_RETURN_IF_ERROR(r.Count(&n, max, what));
  out->resize(n);
  for (auto& v : *out) {
    uint32_t u = 0;
    FM_RETURN_IF_ERROR(r.U32(&u, what));
    v = u == kNoTensorIndex ? kNoTensor : (u > uint32_t(INT32_MAX) ? INT32_MAX : int32_t(u));
  }
  return Status::Ok();
}

Status ReadNode(Reader& r, Node* n) {
  FM_RETURN_IF_ERROR(r.String(&n->op, "op name"));
  FM_RETURN_IF_ERROR(r.String(&n->name, "node name"));
  FM_RETURN_IF_ERROR(ReadIndexList(r, kMaxNodeInputs, "node input count", &n->inputs));
  uint32_t out = 0;
  FM_RETURN_IF_ERROR(r.U32(&out, "node output"));
  n->output = out > uint32_t(INT32_MAX) ? INT32_MAX : int32_t(out);
  uint32_t attr_count = 0;
  FM_RETURN_IF_ERROR(r.Count(&attr_count, kMaxAttrs, "attribute count"));
  for (uint32_t i = 0; i < attr_count; ++i) {
    std::string key;
    FM_RETURN_IF_ERROR(r.String(&key, "attribute name"));
    uint8_t type = 0;
    const uint64_t type_at = r.offset();
    FM_RETURN_IF_ERROR(r.U8(&type, "attribute type"));
    if (type != Attr::kInts && type != Attr::kFloats)
      return Errorf("attribute '", key, "' has unknown type ", int(type), " at byte ", type_at);
    uint32_t count = 0;
    FM_RETURN_IF_ERROR(r.Count(&count, kMaxAttrValues, "attribute value count"));
    Attr attr;
    attr.type = Attr::Type(type);
    for (uint32_t k = 0; k < count; ++k) {
      if (type == Attr::kInts) {
        int64_t v;
        FM_RETURN_IF_ERROR(r.I64(&v, "attribute value"));
        attr.ints.push_back(v);
      } else {
        float v;
        FM_RETURN_IF_ERROR(r.F32(&v, "attribute value"));
        attr.floats.push_back(v);
      }
    }
    if (!n->attrs.emplace(key, std::move(attr)).second)
      return Errorf("attribute '", key, "' appears twice");
  }
  return Status::Ok();
}

}  // namespace

Status ReadModel(const uint8_t* data, size_t size, Graph* graph) {
  *graph = Graph();
  if (data == nullptr && size != 0) return Errorf("model: no data");
  if (size < kModelHeaderSize)
    return Errorf("model: file is ", size, " bytes, shorter than the ", kModelHeaderSize,
                  "-byte header (truncated or not a model)");
  if (std::memcmp(data, kModelMagic, 8) != 0)
    return Errorf("model: bad magic (not a facemask .fmm model file)");
  const uint32_t version = LoadU32(data + 8);
  if (version != kModelVersion)
    return Errorf("model: format version ", version, " is not supported (this engine reads ",
                  kModelVersion, ")");
  const uint32_t header_size = LoadU32(data + 12);
  const uint64_t file_size = LoadU64(data + 16);
  const uint64_t graph_offset = LoadU64(data + 24), graph_size = LoadU64(data + 32);
  const uint64_t data_offset = LoadU64(data + 40), data_size = LoadU64(data + 48);
  if (header_size != kModelHeaderSize)
    return Errorf("model: header size ", header_size, " (expected ", kModelHeaderSize, ")");
  if (file_size != size)
    return Errorf("model: header says the file is ", file_size, " bytes but it is ", size,
                  file_size > size ? " (truncated)" : " (trailing bytes)");
  if (size > kModelMaxFileSize) return Errorf("model: file larger than ", kModelMaxFileSize);
  if (graph_offset != kModelHeaderSize || graph_size > size - graph_offset)
    return Errorf("model: graph section [", graph_offset, ", +", graph_size,
                  ") lies outside the file (", size, " bytes)");
  if (data_offset < graph_offset + graph_size || data_offset > size ||
      data_size != size - data_offset)
    return Errorf("model: data section [", data_offset, ", +", data_size,
                  ") does not follow the graph section and end the file");

  Graph& g = *graph;
  Reader r(data + graph_offset, graph_size, graph_offset);
  uint32_t meta_count = 0;
  FM_RETURN_IF_ERROR(r.Count(&meta_count, kMaxMetadata, "metadata count").Prefix("model: "));
  for (uint32_t i = 0; i < meta_count; ++i) {
    std::string key, value;
    FM_RETURN_IF_ERROR(r.String(&key, "metadata key").Prefix("model: "));
    FM_RETURN_IF_ERROR(r.String(&value, "metadata value").Prefix("model: "));
    if (!g.metadata.emplace(key, value).second)
      return Errorf("model: metadata key '", key, "' appears twice");
  }
  uint32_t tensor_count = 0;
  FM_RETURN_IF_ERROR(r.Count(&tensor_count, kMaxTensors, "tensor count").Prefix("model: "));
  g.tensors.resize(tensor_count);
  std::vector<Blob> blobs(tensor_count);
  std::vector<uint64_t> record_at(tensor_count);
  auto where = [&](uint32_t i) {
    return "model: tensor " + std::to_string(i) +
           (g.tensors[i].name.empty() ? "" : " ('" + g.tensors[i].name + "')") +
           " (record at byte " + std::to_string(record_at[i]) + "): ";
  };
  for (uint32_t i = 0; i < tensor_count; ++i) {
    record_at[i] = r.offset();
    Status s = ReadTensor(r, data_size, data_offset, &g.tensors[i], &blobs[i]);
    if (!s.ok()) return s.Prefix(where(i));
  }
  FM_RETURN_IF_ERROR(CheckTensorRecords(g, blobs));
  for (uint32_t i = 0; i < tensor_count; ++i) {
    if (blobs[i].kind == kStoreActivation) continue;
    Status s = DecodeBlob(blobs[i], data + data_offset, data_offset, &g.tensors[i]);
    if (!s.ok()) return s.Prefix(where(i));
  }
  FM_RETURN_IF_ERROR(
      ReadIndexList(r, kMaxGraphIo, "graph input count", &g.inputs).Prefix("model: "));
  FM_RETURN_IF_ERROR(
      ReadIndexList(r, kMaxGraphIo, "graph output count", &g.outputs).Prefix("model: "));
  uint32_t node_count = 0;
  FM_RETURN_IF_ERROR(r.Count(&node_count, kMaxNodes, "node count").Prefix("model: "));
  g.nodes.resize(node_count);
  for (uint32_t i = 0; i < node_count; ++i) {
    const uint64_t at = r.offset();
    Status s = ReadNode(r, &g.nodes[i]);
    if (!s.ok())
      return s.Prefix("model: node " + std::to_string(i) + " (record at byte " +
                      std::to_string(at) + "): ");
  }
  if (!r.done())
    return Errorf("model: ", graph_offset + graph_size - r.offset(),
                  " unexpected bytes at the end of the graph section (byte ", r.offset(), ")");
  Status s = g.Validate();
  if (!s.ok()) return s.Prefix("model: ");
  return Status::Ok();
}

Status ReadModelFile(const std::string& path, Graph* graph) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Errorf("cannot open model file '", path, "'");
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) return Errorf("cannot read model file '", path, "'");
  if (uint64_t(size) > kModelMaxFileSize)
    return Errorf("model file '", path, "' is larger than ", kModelMaxFileSize, " bytes");
  in.seekg(0);
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size))
    return Errorf("cannot read model file '", path, "'");
  Status s = ReadModel(bytes.data(), bytes.size(), graph);
  if (!s.ok()) return s.Prefix(path + ": ");
  return Status::Ok();
}

namespace {

class Writer {
 public:
  std::vector<uint8_t> bytes;
  void U8(uint8_t v) { bytes.push_back(v); }
  void U32(uint32_t v) {
    for (int i = 0; i < 4; ++i) bytes.push_back(uint8_t(v >> (8 * i)));
  }
  void U64(uint64_t v) {
    U32(uint32_t(v));
    U32(uint32_t(v >> 32));
  }
  void F32(float f) {
    uint32_t u = 0;
    std::memcpy(&u, &f, 4);
    U32(u);
  }
  void String(const std::string& s) {
    U32(uint32_t(s.size()));
    bytes.insert(bytes.end(), s.begin(), s.end());
  }
};

// A constant's blob as stored: float32, dense float16, or float16 sparse when that is shorter.
struct EncodedConstant {
  StorageKind kind = kStoreF32;
  std::vector<uint8_t> bytes;
  uint32_t nonzeros = 0;  // the sparse kinds only
  uint8_t axis = 0;       // int8 kinds only
};

// Symmetric per-channel int8 (kinds 4 and 5): q = round(w / scale), scale = max |w| / 127 along
// the channel (1 for an all-zero channel) unless the tensor carries its scales (read from int8
// storage: then q comes back exactly). Sparse when that is shorter. The caller checked the axis.
EncodedConstant EncodeInt8(const Tensor& t) {
  EncodedConstant e;
  const size_t axis = size_t(t.int8_axis);
  const uint64_t channels = uint64_t(t.shape[axis]), count = t.data.size();
  uint64_t inner = 1;
  for (size_t d = axis + 1; d < t.shape.size(); ++d) inner *= uint64_t(t.shape[d]);
  // The tensor's own scales (read from int8 storage) are kept while every value fits them.
  std::vector<float> scales = t.int8_scales;
  bool fits = scales.size() == channels;
  for (uint64_t i = 0; fits && i < count; ++i) {
    const float s = scales[size_t(i / inner % channels)];
    fits = std::isfinite(s * 127.f) && s > 0.f && std::fabs(t.data[size_t(i)]) <= 127.5f * s;
  }
  if (!fits) {
    scales.assign(size_t(channels), 0.f);
    for (uint64_t i = 0; i < count; ++i) {
      float& s = scales[size_t(i / inner % channels)];
      s = std::max(s, std::fabs(t.data[size_t(i)]));
    }
    for (float& s : scales) s = s > 0.f ? s / 127.f : 1.f;
  }
  std::vector<int8_t> q(static_cast<size_t>(count));
  uint32_t nonzeros = 0;
  for (uint64_t i = 0; i < count; ++i) {
    const float v = std::nearbyint(t.data[size_t(i)] / scales[size_t(i / inner % channels)]);
    q[size_t(i)] = int8_t(std::min(127.f, std::max(-127.f, v)));
    nonzeros += q[size_t(i)] != 0;
  }
  const Int8Layout dense = Int8DenseLayout(channels, count);
  const Int8Layout sparse = Int8SparseLayout(channels, count, nonzeros);
  const bool use_sparse = sparse.total() < dense.total();
  const Int8Layout layout = use_sparse ? sparse : dense;
  e.kind = use_sparse ? kStoreI8Sparse : kStoreI8;
  e.nonzeros = nonzeros;
  e.axis = uint8_t(axis);
  e.bytes.assign(size_t(layout.total()), 0);
  for (uint64_t c = 0; c < channels; ++c) {
    uint32_t u = 0;
    std::memcpy(&u, &scales[size_t(c)], 4);
    for (int b = 0; b < 4; ++b) e.bytes[size_t(4 * c) + size_t(b)] = uint8_t(u >> (8 * b));
  }
  uint8_t* bitmap = e.bytes.data() + layout.scales;
  uint8_t* values = bitmap + layout.bitmap;
  uint64_t k = 0;
  for (uint64_t i = 0; i < count; ++i) {
    if (use_sparse && q[size_t(i)] == 0) continue;
    if (use_sparse) bitmap[i >> 3] |= uint8_t(1u << (i & 7));
    values[k++] = uint8_t(q[size_t(i)]);
  }
  return e;
}

EncodedConstant EncodeConstant(const Tensor& t, Fp16Layout layout_choice) {
  if (t.int8_axis >= 0) return EncodeInt8(t);
  EncodedConstant e;
  const uint64_t count = t.data.size();
  if (!t.store_fp16) {
    e.bytes.resize(size_t(4 * count));
    for (uint64_t i = 0; i < count; ++i) {
      uint32_t u = 0;
      std::memcpy(&u, &t.data[size_t(i)], 4);
      for (int b = 0; b < 4; ++b) e.bytes[size_t(4 * i) + size_t(b)] = uint8_t(u >> (8 * b));
    }
    return e;
  }
  std::vector<uint16_t> half(static_cast<size_t>(count));
  uint32_t nonzeros = 0;
  for (uint64_t i = 0; i < count; ++i) {
    half[size_t(i)] = FloatToHalf(t.data[size_t(i)]);
    nonzeros += !IsZeroHalf(half[size_t(i)]);
  }
  const SparseLayout layout = SparseF16Layout(count, nonzeros);
  const bool sparse = layout_choice == Fp16Layout::kSparse ||
                      (layout_choice == Fp16Layout::kSmaller && layout.total() < 2 * count);
  if (!sparse) {
    e.kind = kStoreF16;
    e.bytes.resize(size_t(2 * count));
    for (uint64_t i = 0; i < count; ++i) {
      e.bytes[size_t(2 * i)] = uint8_t(half[size_t(i)]);
      e.bytes[size_t(2 * i + 1)] = uint8_t(half[size_t(i)] >> 8);
    }
    return e;
  }
  e.kind = kStoreF16Sparse;
  e.nonzeros = nonzeros;
  e.bytes.assign(size_t(layout.total()), 0);
  uint8_t* bitmap = e.bytes.data();
  uint8_t* signs = bitmap + layout.bitmap;
  uint8_t* values = signs + layout.signs;
  uint64_t k = 0, z = 0;  // next stored value, next zero
  for (uint64_t i = 0; i < count; ++i) {
    const uint16_t h = half[size_t(i)];
    if (!IsZeroHalf(h)) {
      bitmap[i >> 3] |= uint8_t(1u << (i & 7));
      values[2 * k] = uint8_t(h);
      values[2 * k + 1] = uint8_t(h >> 8);
      ++k;
    } else {
      if (h) signs[z >> 3] |= uint8_t(1u << (z & 7));  // -0.0
      ++z;
    }
  }
  return e;
}

}  // namespace

Status WriteModel(const Graph& graph, std::vector<uint8_t>* out, const WriteOptions& options) {
  if (!graph.validated()) return Errorf("WriteModel: the graph has not been validated");
  for (const auto& [k, v] : graph.metadata)
    if (k.size() > kMaxStringLength || v.size() > kMaxStringLength)
      return Errorf("WriteModel: metadata '", k, "' is longer than ", kMaxStringLength, " bytes");
  Writer g, d;
  g.U32(uint32_t(graph.metadata.size()));
  for (const auto& [k, v] : graph.metadata) {
    g.String(k);
    g.String(v);
  }
  for (size_t i = 0; i < graph.tensors.size(); ++i) {
    const Tensor& t = graph.tensors[i];
    if (t.int8_axis < 0 || t.kind != TensorKind::kConstant) continue;
    if (size_t(t.int8_axis) >= t.shape.size())
      return Errorf("WriteModel: ", graph.DescribeTensor(int32_t(i)), " has int8 axis ",
                    t.int8_axis, ", not an axis of shape ", ShapeToString(t.shape));
    for (float v : t.data)
      if (!std::isfinite(v))
        return Errorf("WriteModel: ", graph.DescribeTensor(int32_t(i)),
                      " has a value that is not finite; int8 storage needs finite weights");
  }
  g.U32(uint32_t(graph.tensors.size()));
  for (const Tensor& t : graph.tensors) {
    g.String(t.name);
    const bool constant = t.kind == TensorKind::kConstant;
    EncodedConstant blob;
    if (constant) blob = EncodeConstant(t, options.fp16_layout);
    g.U8(constant ? blob.kind : kStoreActivation);
    g.U8(uint8_t(t.shape.size()));
    for (int64_t dim : t.shape) g.U32(uint32_t(dim));
    if (!constant) continue;
    while (d.bytes.size() % 16) d.U8(0);  // each blob 16-byte aligned
    g.U64(d.bytes.size());
    g.U64(blob.bytes.size());
    if (blob.kind == kStoreI8 || blob.kind == kStoreI8Sparse) g.U8(blob.axis);
    if (blob.kind == kStoreF16Sparse || blob.kind == kStoreI8Sparse) g.U32(blob.nonzeros);
    d.bytes.insert(d.bytes.end(), blob.bytes.begin(), blob.bytes.end());
  }
  auto index_list = [&](const std::vector<int32_t>& list) {
    g.U32(uint32_t(list.size()));
    for (int32_t v : list) g.U32(v == kNoTensor ? kNoTensorIndex : uint32_t(v));
  };
  index_list(graph.inputs);
  index_list(graph.outputs);
  g.U32(uint32_t(graph.nodes.size()));
  for (const Node& n : graph.nodes) {
    g.String(n.op);
    g.String(n.name);
    index_list(n.inputs);
    g.U32(uint32_t(n.output));
    g.U32(uint32_t(n.attrs.size()));
    for (const auto& [key, attr] : n.attrs) {
      g.String(key);
      g.U8(attr.type);
      if (attr.type == Attr::kInts) {
        g.U32(uint32_t(attr.ints.size()));
        for (int64_t v : attr.ints) g.U64(uint64_t(v));
      } else {
        g.U32(uint32_t(attr.floats.size()));
        for (float v : attr.floats) g.F32(v);
      }
    }
  }
  const uint64_t graph_size = g.bytes.size();
  const uint64_t data_offset = (kModelHeaderSize + graph_size + 63) / 64 * 64;
  const uint64_t total = data_offset + d.bytes.size();
  Writer h;
  h.bytes.assign(kModelMagic, kModelMagic + 8);
  h.U32(kModelVersion);
  h.U32(uint32_t(kModelHeaderSize));
  h.U64(total);
  h.U64(kModelHeaderSize);
  h.U64(graph_size);
  h.U64(data_offset);
  h.U64(d.bytes.size());
  h.U64(0);
  out->clear();
  out->reserve(size_t(total));
  out->insert(out->end(), h.bytes.begin(), h.bytes.end());
  out->insert(out->end(), g.bytes.begin(), g.bytes.end());
  out->resize(size_t(data_offset), 0);
  out->insert(out->end(), d.bytes.begin(), d.bytes.end());
  return Status::Ok();
}

Status WriteModelFile(const Graph& graph, const std::string& path, const WriteOptions& options) {
  std::vector<uint8_t> bytes;
  FM_RETURN_IF_ERROR(WriteModel(graph, &bytes, options));
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Errorf("cannot create '", path, "'");
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  if (!out) return Errorf("cannot write '", path, "'");
  return Status::Ok();
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F;
  const uint32_t man = h & 0x3FF;
  float f;
  if (exp == 0) {
    f = std::ldexp(float(man), -24);  // zero or subnormal
  } else if (exp == 31) {
    f = man ? std::nanf("") : INFINITY;
  } else {
    f = std::ldexp(float(man | 0x400), int(exp) - 25);
  }
  uint32_t u = 0;
  std::memcpy(&u, &f, 4);
  u |= sign;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t FloatToHalf(float f) {
  uint32_t u = 0;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000);
  const float a = std::fabs(f);
  if (a != a) return uint16_t(sign | 0x7E00);
  if (a >= 65520.f) return uint16_t(sign | 0x7C00);  // overflow -> infinity
  if (a < 6.103515625e-05f) {                        // subnormal range: multiples of 2^-24
    return uint16_t(sign | uint16_t(std::nearbyint(a * 16777216.f)));
  }
  int e;
  const float m = std::frexp(a, &e);                     // a = m * 2^e, m in [0.5, 1)
  uint32_t mant = uint32_t(std::nearbyint(m * 2048.f));  // 11 significant bits
  if (mant == 2048) {
    mant = 1024;
    ++e;
  }
  const uint32_t exp = uint32_t(e - 1 + 15);
  return uint16_t(sign | (exp << 10) | (mant & 0x3FF));
}

}  // namespace fm
