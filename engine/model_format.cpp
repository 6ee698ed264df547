// model_format.cpp - .fmm reader and writer (see model/FORMAT.md).
#include "model_format.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>

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

enum StorageKind : uint8_t { kStoreActivation = 0, kStoreF32 = 1, kStoreF16 = 2 };

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

Status ReadTensor(Reader& r, const uint8_t* data_section, uint64_t data_size, uint64_t data_offset,
                  Tensor* t) {
  FM_RETURN_IF_ERROR(r.String(&t->name, "tensor name"));
  if (t->name.empty()) return Errorf("empty tensor name at byte ", r.offset());
  uint8_t kind = 0, rank = 0;
  const uint64_t kind_at = r.offset();
  FM_RETURN_IF_ERROR(r.U8(&kind, "tensor kind"));
  if (kind > kStoreF16) return Errorf("unknown storage kind ", int(kind), " at byte ", kind_at);
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
  if (kind == kStoreActivation) return Status::Ok();
  uint64_t offset = 0, length = 0;
  FM_RETURN_IF_ERROR(r.U64(&offset, "data offset"));
  FM_RETURN_IF_ERROR(r.U64(&length, "data length"));
  const uint64_t count = uint64_t(NumElements(t->shape));
  const uint64_t elem = kind == kStoreF32 ? 4 : 2;
  if (length != count * elem)
    return Errorf("data length ", length, " does not match shape ", ShapeToString(t->shape), " (",
                  count * elem, " bytes as ", kind == kStoreF32 ? "float32" : "float16", ")");
  if (offset > data_size || length > data_size - offset)
    return Errorf("data [", offset, ", +", length, ") lies outside the data section (", data_size,
                  " bytes at file offset ", data_offset, ")");
  t->store_fp16 = kind == kStoreF16;
  t->data.resize(size_t(count));
  const uint8_t* p = data_section + offset;
  for (uint64_t i = 0; i < count; ++i) {
    if (kind == kStoreF32) {
      const uint32_t u = LoadU32(p + 4 * i);
      std::memcpy(&t->data[size_t(i)], &u, 4);
    } else {
      t->data[size_t(i)] = HalfToFloat(uint16_t(p[2 * i] | p[2 * i + 1] << 8));
    }
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
  for (uint32_t i = 0; i < tensor_count; ++i) {
    const uint64_t at = r.offset();
    Status s = ReadTensor(r, data + data_offset, data_size, data_offset, &g.tensors[i]);
    if (!s.ok())
      return s.Prefix("model: tensor " + std::to_string(i) +
                      (g.tensors[i].name.empty() ? "" : " ('" + g.tensors[i].name + "')") +
                      " (record at byte " + std::to_string(at) + "): ");
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

}  // namespace

Status WriteModel(const Graph& graph, std::vector<uint8_t>* out) {
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
  g.U32(uint32_t(graph.tensors.size()));
  for (const Tensor& t : graph.tensors) {
    g.String(t.name);
    const bool constant = t.kind == TensorKind::kConstant;
    g.U8(!constant ? kStoreActivation : (t.store_fp16 ? kStoreF16 : kStoreF32));
    g.U8(uint8_t(t.shape.size()));
    for (int64_t dim : t.shape) g.U32(uint32_t(dim));
    if (!constant) continue;
    while (d.bytes.size() % 16) d.U8(0);  // each blob 16-byte aligned
    g.U64(d.bytes.size());
    g.U64(t.data.size() * (t.store_fp16 ? 2 : 4));
    for (float v : t.data) {
      if (t.store_fp16) {
        const uint16_t h = FloatToHalf(v);
        d.U8(uint8_t(h));
        d.U8(uint8_t(h >> 8));
      } else {
        d.F32(v);
      }
    }
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

Status WriteModelFile(const Graph& graph, const std::string& path) {
  std::vector<uint8_t> bytes;
  FM_RETURN_IF_ERROR(WriteModel(graph, &bytes));
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
