// test_model_format.cpp - .fmm round trips, and the loader's answer to every kind of bad file:
// each must be refused with a message that says what and where, never read out of bounds (ASan).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <set>

#include "model/graph_builder.h"
#include "model/model_format.h"
#include "rng.h"
#include "test_models.h"
#include "test_util.h"

namespace fm::test {
namespace {

std::vector<uint8_t> SmallModelBytes(bool fp16 = false) {
  Graph g;
  Status s = BuildSmallCnn(42, &g, fp16);
  EXPECT_TRUE(s.ok()) << s.message();
  std::vector<uint8_t> bytes;
  s = WriteModel(g, &bytes);
  EXPECT_TRUE(s.ok()) << s.message();
  return bytes;
}

std::string LoadError(const std::vector<uint8_t>& bytes) {
  Graph g;
  Status s = ReadModel(bytes.data(), bytes.size(), &g);
  return s.ok() ? "" : s.message();
}

// Every truncation of `good` is refused; every single-bit flip at `positions` is refused with a
// message starting with `prefix`, or read as another valid model: never a crash or an
// out-of-bounds read (ASan).
void ExpectCutsRefusedAndFlipsSafe(const std::vector<uint8_t>& good,
                                   const std::vector<size_t>& positions,
                                   const std::string& prefix) {
  for (size_t n = 0; n < good.size(); ++n) {
    const std::vector<uint8_t> cut(good.begin(), good.begin() + long(n));
    EXPECT_FALSE(LoadError(cut).empty()) << "truncated to " << n << " bytes was accepted";
  }
  for (size_t i : positions) {
    for (int bit = 0; bit < 8; ++bit) {
      std::vector<uint8_t> b = good;
      b[i] ^= uint8_t(1 << bit);
      const std::string err = LoadError(b);
      EXPECT_TRUE(err.empty() || err.rfind(prefix, 0) == 0) << err;
    }
  }
}

std::vector<uint8_t> ReadFileBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Fuzz seeds: each small, valid, and what this code writes today (FM_WRITE_FUZZ_SEEDS=1 rewrites
// them in DIR).
void ExpectSeedsCurrent(const std::string& dir,
                        const std::vector<std::pair<std::string, std::vector<uint8_t>>>& seeds) {
  const char* write = std::getenv("FM_WRITE_FUZZ_SEEDS");
  for (const auto& [name, bytes] : seeds) {
    EXPECT_LT(bytes.size(), 8192u);
    Graph g;
    const Status s = ReadModel(bytes.data(), bytes.size(), &g);
    EXPECT_TRUE(s.ok()) << name << ": " << s.message();
    if (write && std::string(write) == "1") {
      std::ofstream(dir + name, std::ios::binary)
          .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    }
    EXPECT_TRUE(ReadFileBytes(dir + name) == bytes)
        << dir << name << " is not what this writer makes (FM_WRITE_FUZZ_SEEDS=1 rewrites it)";
  }
}

// Byte offset of the first record that starts with the string `name` (u32 length + bytes).
size_t FindName(const std::vector<uint8_t>& bytes, const std::string& name) {
  std::vector<uint8_t> needle(4 + name.size());
  const uint32_t n = uint32_t(name.size());
  std::memcpy(needle.data(), &n, 4);
  std::memcpy(needle.data() + 4, name.data(), name.size());
  auto it = std::search(bytes.begin(), bytes.end(), needle.begin(), needle.end());
  EXPECT_NE(it, bytes.end()) << name;
  return size_t(it - bytes.begin()) + needle.size();
}

void PutU32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  std::memcpy(&b[at], &v, 4);
}
void PutU64(std::vector<uint8_t>& b, size_t at, uint64_t v) {
  std::memcpy(&b[at], &v, 8);
}

TEST(ModelFormat, RoundTripIsExact) {
  const std::vector<uint8_t> bytes = SmallModelBytes();
  Graph g;
  Status s = ReadModel(bytes.data(), bytes.size(), &g);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(g.metadata.at("labels"), "a,b,c,d,e,f,g,h,i,j");
  EXPECT_EQ(g.outputs.size(), 2u);
  std::vector<uint8_t> again;
  ASSERT_TRUE(WriteModel(g, &again).ok());
  EXPECT_EQ(bytes, again);
}

TEST(ModelFormat, Fp16StorageExpandsToTheRoundedWeights) {
  Graph original;
  ASSERT_TRUE(BuildSmallCnn(42, &original).ok());
  const std::vector<uint8_t> half = SmallModelBytes(/*fp16=*/true);
  EXPECT_LT(half.size(), SmallModelBytes().size());
  Graph g;
  Status s = ReadModel(half.data(), half.size(), &g);
  ASSERT_TRUE(s.ok()) << s.message();
  const int w = g.FindTensor("conv1/w");
  ASSERT_GE(w, 0);
  const auto& loaded = g.tensors[size_t(w)].data;
  const auto& exact = original.tensors[size_t(original.FindTensor("conv1/w"))].data;
  ASSERT_EQ(loaded.size(), exact.size());
  for (size_t i = 0; i < exact.size(); ++i) {
    EXPECT_EQ(loaded[i], HalfToFloat(FloatToHalf(exact[i])));
    EXPECT_NEAR(loaded[i], exact[i], std::fabs(exact[i]) * 1e-3f + 1e-7f);
  }
}

TEST(ModelFormat, HalfConversionMatchesKnownValues) {
  EXPECT_EQ(FloatToHalf(1.0f), 0x3C00);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xC000);
  EXPECT_EQ(FloatToHalf(65504.f), 0x7BFF);
  EXPECT_EQ(FloatToHalf(1e6f), 0x7C00);
  EXPECT_EQ(FloatToHalf(5.960464477539063e-08f), 0x0001);
  EXPECT_EQ(FloatToHalf(0.333251953125f), 0x3555);
  EXPECT_EQ(HalfToFloat(0x3555), 0.333251953125f);
  EXPECT_EQ(HalfToFloat(0x0001), 5.960464477539063e-08f);
  for (uint32_t h = 0; h < 0x7C00; ++h) EXPECT_EQ(FloatToHalf(HalfToFloat(uint16_t(h))), h);
}

TEST(ModelFormat, EveryTruncationIsRefused) {
  const std::vector<uint8_t> bytes = SmallModelBytes();
  for (size_t n = 0; n < bytes.size(); n += (n < 4096 ? 1 : 97)) {
    const std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + long(n));
    const std::string err = LoadError(cut);
    ASSERT_FALSE(err.empty()) << "truncated to " << n << " bytes was accepted";
    if (n < kModelHeaderSize)
      EXPECT_NE(err.find("shorter than the 64-byte header"), std::string::npos) << err;
    else
      EXPECT_NE(err.find("(truncated)"), std::string::npos) << err;
  }
}

TEST(ModelFormat, BadMagicAndVersion) {
  std::vector<uint8_t> bytes = SmallModelBytes();
  std::vector<uint8_t> magic = bytes;
  magic[0] = 'X';
  EXPECT_NE(LoadError(magic).find("bad magic"), std::string::npos) << LoadError(magic);
  std::vector<uint8_t> version = bytes;
  PutU32(version, 8, 2);
  EXPECT_NE(LoadError(version).find("format version 2 is not supported"), std::string::npos)
      << LoadError(version);
}

TEST(ModelFormat, OutOfRangeDataOffset) {
  std::vector<uint8_t> bytes = SmallModelBytes();
  // Record: name, kind u8, rank u8 (4), 4 dims, offset u64, length u64.
  const size_t at = FindName(bytes, "conv1/w") + 2 + 16;
  PutU64(bytes, at, uint64_t(1) << 40);
  const std::string err = LoadError(bytes);
  EXPECT_NE(err.find("tensor 1 ('conv1/w')"), std::string::npos) << err;
  EXPECT_NE(err.find("lies outside the data section"), std::string::npos) << err;
  // An offset that overflows when the length is added.
  PutU64(bytes, at, ~uint64_t(0) - 4);
  EXPECT_NE(LoadError(bytes).find("lies outside the data section"), std::string::npos);
}

TEST(ModelFormat, AbsurdShapes) {
  std::vector<uint8_t> bytes = SmallModelBytes();
  const size_t dims = FindName(bytes, "conv1/w") + 2;
  std::vector<uint8_t> zero = bytes;
  PutU32(zero, dims, 0);
  EXPECT_NE(LoadError(zero).find("dimension 0 is 0"), std::string::npos) << LoadError(zero);
  std::vector<uint8_t> huge = bytes;
  PutU32(huge, dims, 0x7FFFFFFF);
  EXPECT_NE(LoadError(huge).find("dimension 0 is 2147483647"), std::string::npos)
      << LoadError(huge);
  std::vector<uint8_t> many = bytes;
  for (int i = 0; i < 4; ++i) PutU32(many, dims + 4 * size_t(i), 1 << 20);
  EXPECT_NE(LoadError(many).find("elements"), std::string::npos) << LoadError(many);
  std::vector<uint8_t> rank = bytes;
  rank[dims - 1] = 9;
  EXPECT_NE(LoadError(rank).find("rank 9"), std::string::npos) << LoadError(rank);
}

TEST(ModelFormat, HeaderFieldsAreChecked) {
  const std::vector<uint8_t> bytes = SmallModelBytes();
  std::vector<uint8_t> b = bytes;
  PutU64(b, 32, bytes.size());  // graph section larger than the file
  EXPECT_NE(LoadError(b).find("graph section"), std::string::npos) << LoadError(b);
  b = bytes;
  PutU64(b, 48, 3);  // data section does not end the file
  EXPECT_NE(LoadError(b).find("data section"), std::string::npos) << LoadError(b);
  b = bytes;
  b.push_back(0);
  EXPECT_NE(LoadError(b).find("trailing bytes"), std::string::npos) << LoadError(b);
}

TEST(ModelFormat, SemanticErrorsNameTheNode) {
  std::vector<uint8_t> bytes = SmallModelBytes();
  // The first node's op name "conv2d" becomes "convXd".
  std::vector<uint8_t> op = bytes;
  const size_t at = FindName(op, "conv2d");
  op[at - 2] = 'X';
  EXPECT_NE(LoadError(op).find("node 0 (convXd 'conv1'): unknown op 'convXd'"), std::string::npos)
      << LoadError(op);
  // A stride of 0: find the "stride" attribute of conv1 (type u8, count u32, int64 values).
  std::vector<uint8_t> stride = bytes;
  const size_t s = FindName(stride, "stride");
  PutU64(stride, s + 1 + 4, 0);
  EXPECT_NE(LoadError(stride).find("node 0 (conv2d 'conv1'): stride 0x2 is outside 1..1024"),
            std::string::npos)
      << LoadError(stride);
}

// Every single-byte corruption of the graph section is either accepted as a valid graph or refused
// with a message; none may crash or read out of bounds.
TEST(ModelFormat, ByteFlipsNeverCrash) {
  const std::vector<uint8_t> bytes = SmallModelBytes();
  uint64_t graph_size;
  std::memcpy(&graph_size, &bytes[32], 8);
  int refused = 0;
  for (size_t i = kModelHeaderSize; i < kModelHeaderSize + graph_size; ++i) {
    for (uint8_t v : {uint8_t(0xFF), uint8_t(bytes[i] ^ 0x01)}) {
      std::vector<uint8_t> b = bytes;
      b[i] = v;
      Graph g;
      Status s = ReadModel(b.data(), b.size(), &g);
      if (!s.ok()) {
        ++refused;
        EXPECT_EQ(s.message().rfind("model: ", 0), 0u) << s.message();
      }
    }
  }
  EXPECT_GT(refused, 100);
}

// ---- float16 sparse constants (storage kind 3) ----

const char kSparseName[] = "w/sparse";

// A graph whose one constant is `values` (shape [n], float16 storage): output = x * constant.
Graph OneConstantGraph(const std::vector<float>& values) {
  GraphBuilder b;
  const int64_t n = int64_t(values.size());
  const int32_t x = b.Input("x", {1, n});
  const int32_t w = b.Constant(kSparseName, {n}, values, /*store_fp16=*/true);
  Graph g;
  const Status s = b.Finish({b.Op("multiply", "mul", {x, w})}, &g);
  EXPECT_TRUE(s.ok()) << s.message();
  return g;
}

// n float16-exact values, about `zero_percent` of them zeros of either sign; the rest include
// subnormals and the largest finite float16.
std::vector<float> SparseValues(Rng& rng, int64_t n, int zero_percent) {
  std::vector<float> v(size_t(n), 0.f);
  for (float& x : v) {
    const uint16_t sign = rng.Chance(50) ? 0x8000 : 0;
    if (rng.Chance(zero_percent))
      x = HalfToFloat(sign);
    else if (rng.Chance(5))
      x = HalfToFloat(uint16_t(sign | rng.Int(1, 0x3FF)));  // subnormal
    else if (rng.Chance(1))
      x = HalfToFloat(uint16_t(sign | 0x7BFF));  // 65504
    else
      x = HalfToFloat(uint16_t(sign | rng.Int(0x0400, 0x7BFF)));
  }
  return v;
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), 4 * a.size()) == 0);
}

uint64_t GetU64(const std::vector<uint8_t>& b, size_t at) {
  uint64_t v = 0;
  std::memcpy(&v, &b[at], 8);
  return v;
}
uint32_t GetU32(const std::vector<uint8_t>& b, size_t at) {
  uint32_t v = 0;
  std::memcpy(&v, &b[at], 4);
  return v;
}

// Where the fields of a rank-1 constant's record and its blob are in the file.
struct Record {
  size_t kind, offset, length, nonzeros;  // record fields
  size_t blob;                            // file offset of the data
};
Record FindRecord(const std::vector<uint8_t>& bytes, const std::string& name) {
  Record r;
  r.kind = FindName(bytes, name);
  r.offset = r.kind + 2 + 4;  // kind, rank, one dimension
  r.length = r.offset + 8;
  r.nonzeros = r.length + 8;
  r.blob = size_t(GetU64(bytes, 40) + GetU64(bytes, r.offset));
  return r;
}

uint64_t Fnv1a(const std::vector<uint8_t>& bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint8_t b : bytes) h = (h ^ b) * 0x100000001b3ull;
  return h;
}

// A hand-made file: `count` float16 sparse constants of `elements` zeros each, whose records point
// at blob offsets `offsets` (in a data section of data_bytes zero bytes), then nothing else. The
// reader must refuse such files from their records alone, before decoding anything.
std::vector<uint8_t> SparseZerosFile(uint32_t elements, const std::vector<uint64_t>& offsets,
                                     uint64_t data_bytes) {
  std::vector<uint8_t> g;
  auto u8 = [&](uint8_t v) { g.push_back(v); };
  auto u32 = [&](uint32_t v) { g.insert(g.end(), (uint8_t*)&v, (uint8_t*)&v + 4); };
  auto u64 = [&](uint64_t v) { g.insert(g.end(), (uint8_t*)&v, (uint8_t*)&v + 8); };
  const uint64_t length = 2 * ((uint64_t(elements) + 15) / 16) * 2;  // both bitmaps, no values
  u32(0);                                                            // metadata
  u32(uint32_t(offsets.size()));
  for (size_t i = 0; i < offsets.size(); ++i) {
    const std::string name = "zeros" + std::to_string(i);
    u32(uint32_t(name.size()));
    g.insert(g.end(), name.begin(), name.end());
    u8(3);  // float16 sparse
    u8(1);
    u32(elements);
    u64(offsets[i]);
    u64(length);
    u32(0);  // no non-zeros
  }
  const uint64_t data_offset = (64 + g.size() + 63) / 64 * 64;
  std::vector<uint8_t> f(size_t(data_offset + data_bytes), 0);
  std::memcpy(f.data(), kModelMagic, 8);
  PutU32(f, 8, kModelVersion);
  PutU32(f, 12, uint32_t(kModelHeaderSize));
  PutU64(f, 16, f.size());
  PutU64(f, 24, kModelHeaderSize);
  PutU64(f, 32, g.size());
  PutU64(f, 40, data_offset);
  PutU64(f, 48, data_bytes);
  std::copy(g.begin(), g.end(), f.begin() + 64);
  return f;
}

// The memory bomb: small files whose constants decode to gigabytes. Refused from the
// records (decoded-size budget, then overlapping blobs), before any tensor is allocated; an
// allocation of the decoded size would trip ASan's allocator limit long before the message.
TEST(ModelFormat, DecodedSizeBudgetAndAliasedBlobsAreCheckedFirst) {
  const uint32_t big = 1u << 24;                              // 64 MiB each as float32
  const uint64_t blob = 2 * ((uint64_t(big) + 15) / 16) * 2;  // 4 MiB of bitmaps
  // Ten records on one blob: 640 MiB decoded from a 4 MiB file.
  std::string e = LoadError(SparseZerosFile(big, std::vector<uint64_t>(10, 0), blob));
  EXPECT_NE(e.find("the constants decode to 671088640 bytes, over the limit of 268435456"),
            std::string::npos)
      << e;
  // Five separate blobs (20 MiB file, 320 MiB decoded): the budget alone.
  e = LoadError(SparseZerosFile(big, {0, blob, 2 * blob, 3 * blob, 4 * blob}, 5 * blob));
  EXPECT_NE(e.find("decode to 335544320 bytes"), std::string::npos) << e;
  // Within the budget, two records sharing bytes (aliases) are refused too.
  // (10 zeros: a 2-byte non-zero bitmap and a 2-byte sign bitmap.)
  e = LoadError(SparseZerosFile(10, {0, 0}, 16));
  EXPECT_NE(e.find("the data of tensor 1 ('zeros1', [0, +4)) overlaps that of tensor 0 "
                   "('zeros0', [0, +4))"),
            std::string::npos)
      << e;
  e = LoadError(SparseZerosFile(10, {2, 0}, 16));
  EXPECT_NE(e.find("the data of tensor 0 ('zeros0', [2, +4)) overlaps"), std::string::npos) << e;
  // Adjacent blobs are fine: the records pass and the reader goes on to the (absent) inputs.
  e = LoadError(SparseZerosFile(10, {0, 4}, 16));
  EXPECT_EQ(e.find("overlaps"), std::string::npos) << e;
  EXPECT_NE(e.find("graph input count"), std::string::npos) << e;
}

TEST(ModelFormat, DuplicateTensorNamesAreRefusedBeforeDecoding) {
  std::vector<uint8_t> bytes = SparseZerosFile(10, {0, 4}, 16);
  const size_t second = FindName(bytes, "zeros1");
  bytes[second - 1] = '0';  // "zeros1" -> "zeros0"
  const std::string e = LoadError(bytes);
  EXPECT_NE(e.find("tensors 0 and 1 are both named 'zeros0'"), std::string::npos) << e;
}

TEST(ModelFormat, SparseFp16RoundTripIsBitExact) {
  Rng rng(7);
  for (int64_t n : {1, 7, 8, 9, 15, 16, 17, 1000, 4099}) {
    for (int zero_percent : {0, 30, 70, 95, 100}) {
      const std::vector<float> values = SparseValues(rng, n, zero_percent);
      const Graph g = OneConstantGraph(values);
      int64_t nonzeros = 0;
      for (float v : values) nonzeros += v != 0.f;
      const uint64_t sparse_length = 2 * uint64_t((n + 15) / 16) +
                                     2 * uint64_t((n - nonzeros + 15) / 16) +
                                     2 * uint64_t(nonzeros);
      for (Fp16Layout layout : {Fp16Layout::kSmaller, Fp16Layout::kDense, Fp16Layout::kSparse}) {
        SCOPED_TRACE("n " + std::to_string(n) + ", " + std::to_string(zero_percent) +
                     "% zeros, layout " + std::to_string(int(layout)));
        std::vector<uint8_t> bytes;
        ASSERT_TRUE(WriteModel(g, &bytes, WriteOptions{layout}).ok());
        const Record rec = FindRecord(bytes, kSparseName);
        const bool sparse = layout == Fp16Layout::kSparse ||
                            (layout == Fp16Layout::kSmaller && sparse_length < 2 * uint64_t(n));
        ASSERT_EQ(bytes[rec.kind], sparse ? 3 : 2);
        if (sparse) {
          EXPECT_EQ(GetU64(bytes, rec.length), sparse_length);
          EXPECT_EQ(GetU32(bytes, rec.nonzeros), uint32_t(nonzeros));
        }
        Graph back;
        const Status s = ReadModel(bytes.data(), bytes.size(), &back);
        ASSERT_TRUE(s.ok()) << s.message();
        const Tensor& t = back.tensors[size_t(back.FindTensor(kSparseName))];
        EXPECT_TRUE(SameBits(t.data, values));  // -0.0 stays -0.0
        EXPECT_TRUE(t.store_fp16);
        std::vector<uint8_t> again;  // the encoding is canonical
        ASSERT_TRUE(WriteModel(back, &again, WriteOptions{layout}).ok());
        EXPECT_EQ(again, bytes);
      }
    }
  }
}

// The 10-element example: elements 1, 4, 9 stored (1.0, 2.0, 0.5); zeros 0, 2, 3, 5, 6, 7, 8 with
// 2 and 8 negative.
std::vector<float> TenElementExample() {
  return {0.f, 1.f, -0.f, 0.f, 2.f, 0.f, 0.f, 0.f, -0.f, 0.5f};
}

TEST(ModelFormat, SparseFp16LayoutIsAsDocumented) {
  std::vector<uint8_t> bytes;
  ASSERT_TRUE(WriteModel(OneConstantGraph(TenElementExample()), &bytes).ok());
  const Record rec = FindRecord(bytes, kSparseName);
  EXPECT_EQ(bytes[rec.kind], 3);
  EXPECT_EQ(GetU64(bytes, rec.length), 10u);
  EXPECT_EQ(GetU32(bytes, rec.nonzeros), 3u);
  const std::vector<uint8_t> blob(bytes.begin() + long(rec.blob),
                                  bytes.begin() + long(rec.blob) + 10);
  // bitmap 0x0212 (bits 1, 4, 9), zero signs 0x0042 (zeros #1 and #6), then 1.0, 2.0, 0.5.
  EXPECT_EQ(blob,
            (std::vector<uint8_t>{0x12, 0x02, 0x42, 0x00, 0x00, 0x3C, 0x00, 0x40, 0x00, 0x38}));
}

TEST(ModelFormat, SparseFp16CorruptionsAreRefused) {
  std::vector<uint8_t> good;
  ASSERT_TRUE(WriteModel(OneConstantGraph(TenElementExample()), &good).ok());
  const Record rec = FindRecord(good, kSparseName);
  const std::string B = std::to_string(rec.blob);
  auto at = [&](size_t k) { return std::to_string(rec.blob + k); };
  struct Case {
    const char* what;
    std::function<void(std::vector<uint8_t>&)> edit;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"unknown kind", [&](auto& b) { b[rec.kind] = 6; },
       "unknown storage kind 6 at byte " + std::to_string(rec.kind)},
      {"non-zero count > elements", [&](auto& b) { PutU32(b, rec.nonzeros, 11); },
       "non-zero count 11 at byte " + std::to_string(rec.nonzeros) +
           " exceeds the 10 elements of shape [10]"},
      {"non-zero count vs length", [&](auto& b) { PutU32(b, rec.nonzeros, 4); },
       "data length 10 does not match shape [10] with 4 non-zeros (12 bytes as float16 sparse: "
       "2-byte non-zero bitmap, 2-byte zero-sign bitmap, 8 bytes of values)"},
      {"short length", [&](auto& b) { PutU64(b, rec.length, 9); },
       "data length 9 does not match shape [10] with 3 non-zeros (10 bytes"},
      {"blob past the data section", [&](auto& b) { PutU64(b, rec.offset, 8); },
       "data [8, +10) lies outside the data section (10 bytes"},
      {"offset out of range", [&](auto& b) { PutU64(b, rec.offset, uint64_t(1) << 40); },
       "lies outside the data section"},
      {"bit cleared", [&](auto& b) { b[rec.blob] ^= 0x10; },
       "non-zero bitmap (bytes " + B + ".." + at(1) +
           ") has 2 bits set but the record says 3 non-zeros"},
      {"bit set", [&](auto& b) { b[rec.blob] |= 0x01; },
       "non-zero bitmap (bytes " + B + ".." + at(1) +
           ") has 4 bits set but the record says 3 non-zeros"},
      {"bitmap padding", [&](auto& b) { b[rec.blob + 1] |= 0x08; },
       "non-zero bitmap: padding bit 11 (byte " + at(1) + ") is set; bits 10..15 must be 0"},
      {"sign padding", [&](auto& b) { b[rec.blob + 2] |= 0x80; },
       "zero-sign bitmap: padding bit 7 (byte " + at(2) + ") is set; bits 7..15 must be 0"},
      {"stored +0.0", [&](auto& b) { b[rec.blob + 5] = 0x00; },
       "stored value 0 (element 1) at byte " + at(4) +
           " is +0.0; zeros must be left out of the bitmap, not stored"},
      {"stored -0.0", [&](auto& b) { b[rec.blob + 9] = 0x80; },
       "stored value 2 (element 9) at byte " + at(8) + " is -0.0"},
      {"infinity", [&](auto& b) { b[rec.blob + 7] = 0x7C; },
       "stored value 1 (element 4) at byte " + at(6) + " is not finite (float16 0x7c00)"},
      {"NaN",
       [&](auto& b) {
         b[rec.blob + 8] = 0x01;
         b[rec.blob + 9] = 0xFE;
       },
       "stored value 2 (element 9) at byte " + at(8) + " is not finite (float16 0xfe01)"},
  };
  for (const Case& c : cases) {
    std::vector<uint8_t> b = good;
    c.edit(b);
    const std::string err = LoadError(b);
    EXPECT_NE(err.find("model: tensor 1 ('w/sparse') (record at byte "), std::string::npos)
        << c.what << ": " << err;
    EXPECT_NE(err.find(c.expect), std::string::npos) << c.what << ": " << err;
  }
  // Every truncation, and every single-bit flip of the blob: refused with a message or (a flipped
  // value bit) read as another valid value; never a crash or an out-of-bounds read.
  std::vector<size_t> flip;
  for (size_t i = rec.blob; i < good.size(); ++i) flip.push_back(i);
  ExpectCutsRefusedAndFlipsSafe(good, flip, "model: tensor 1 ('w/sparse')");
}

// The committed detectors are written with kind 3 where it is shorter. Written back densely they
// must be byte for byte the dense float16 files they replaced (model/ at commit 414c84e, identified
// by size and FNV-1a below), so every weight decodes to exactly the same float32 bits as before,
// the signs of the zeros included. (Re-converting the detectors changes these constants.)
TEST(ModelFormat, ShippedDetectorsDecodeToTheDenseFp16Weights) {
  struct Case {
    const char* file;
    size_t dense_size;
    uint64_t dense_fnv;
  };
  for (const Case& c : {Case{"blazeface-full.fmm", 1054464, 0x94494223d1cd9cb7ull},
                        Case{"blazeface-short.fmm", 219072, 0xd8051851fb256d04ull}}) {
    SCOPED_TRACE(c.file);
    const std::vector<uint8_t> file =
        ReadFileBytes(std::string(FM_DEFAULT_MODEL_DIR) + "/" + c.file);
    Graph g;
    Status s = ReadModel(file.data(), file.size(), &g);
    ASSERT_TRUE(s.ok()) << s.message();
    std::vector<uint8_t> dense;
    ASSERT_TRUE(WriteModel(g, &dense, WriteOptions{Fp16Layout::kDense}).ok());
    EXPECT_EQ(dense.size(), c.dense_size);
    EXPECT_EQ(Fnv1a(dense), c.dense_fnv);
    Graph d;
    s = ReadModel(dense.data(), dense.size(), &d);
    ASSERT_TRUE(s.ok()) << s.message();
    ASSERT_EQ(d.tensors.size(), g.tensors.size());
    int64_t negative_zeros = 0;
    for (size_t i = 0; i < g.tensors.size(); ++i) {
      EXPECT_TRUE(SameBits(g.tensors[i].data, d.tensors[i].data)) << g.tensors[i].name;
      for (float v : g.tensors[i].data) negative_zeros += v == 0.f && std::signbit(v);
    }
    std::vector<uint8_t> again;  // and the committed file is what the writer makes of it
    ASSERT_TRUE(WriteModel(d, &again).ok());
    EXPECT_TRUE(again == file);
    if (std::string(c.file) == "blazeface-full.fmm") {
      EXPECT_LT(file.size(), dense.size() / 2);
      EXPECT_GT(negative_zeros, 100000);
    }
  }
}

// Seeds for the model fuzz target that reach the float16 sparse path; they must be what this
// code writes (FM_WRITE_FUZZ_SEEDS=1 rewrites them, natively).
TEST(ModelFormat, SparseFuzzSeedsAreCurrent) {
  const std::string dir = std::string(FM_TEST_FIXTURES_DIR) + "/../fuzz/corpus/model/";
  std::vector<std::pair<std::string, std::vector<uint8_t>>> seeds(2);
  seeds[0].first = "sparse_tiny.fmm";
  ASSERT_TRUE(WriteModel(OneConstantGraph(TenElementExample()), &seeds[0].second).ok());
  // The small CNN with about 70% of its float16 weights zeroed, as pruning would.
  seeds[1].first = "small_cnn_fp16_sparse.fmm";
  Graph cnn;
  ASSERT_TRUE(BuildSmallCnn(42, &cnn, /*fp16=*/true).ok());
  Rng rng(3);
  for (Tensor& t : cnn.tensors)
    if (t.kind == TensorKind::kConstant && t.data.size() >= 64)
      for (float& v : t.data)
        if (rng.Chance(70)) v = v < 0 ? -0.f : 0.f;
  ASSERT_TRUE(WriteModel(cnn, &seeds[1].second).ok());
  int sparse_in_cnn = 0;
  for (const Tensor& t : cnn.tensors)
    if (t.kind == TensorKind::kConstant)
      sparse_in_cnn += seeds[1].second[FindName(seeds[1].second, t.name)] == 3;
  EXPECT_GE(sparse_in_cnn, 4);
  EXPECT_EQ(seeds[0].second[FindRecord(seeds[0].second, kSparseName).kind], 3);
  ExpectSeedsCurrent(dir, seeds);
}

// ---- int8 constants (storage kinds 4 and 5) ----

const char kInt8Name[] = "w/int8";

// x [1, in] -> fully_connected with weights [out, in] stored as int8 along `axis`.
Graph Int8FcGraph(int64_t out, int64_t in, const std::vector<float>& w, int axis) {
  GraphBuilder b;
  const int32_t x = b.Input("x", {1, in});
  const int32_t wt = b.Constant(kInt8Name, {out, in}, w);
  Graph g;
  const Status s = b.Finish({b.Op("fully_connected", "fc", {x, wt})}, &g);
  EXPECT_TRUE(s.ok()) << s.message();
  g.tensors[size_t(wt)].int8_axis = axis;
  return g;
}

// Where the fields of a rank-2 int8 constant's record and its blob are in the file.
struct Int8Record {
  size_t kind, offset, length, axis, nonzeros, blob;
};
Int8Record FindInt8Record(const std::vector<uint8_t>& bytes, const std::string& name) {
  Int8Record r;
  r.kind = FindName(bytes, name);
  r.offset = r.kind + 2 + 8;  // kind, rank, two dimensions
  r.length = r.offset + 8;
  r.axis = r.length + 8;
  r.nonzeros = r.axis + 1;
  r.blob = size_t(GetU64(bytes, 40) + GetU64(bytes, r.offset));
  return r;
}

// The documented example: [[0.5, -1, 0.25], [0, 0, 0]] along axis 0 -> scales 1/127 and 1 (an
// all-zero row), q = [64, -127, 32, 0, 0, 0] (63.5 rounds to even), stored sparse (12 bytes
// against 14 dense).
Graph Int8Example() {
  return Int8FcGraph(2, 3, {0.5f, -1.f, 0.25f, 0.f, 0.f, 0.f}, 0);
}

TEST(ModelFormat, Int8LayoutIsAsDocumented) {
  std::vector<uint8_t> bytes;
  ASSERT_TRUE(WriteModel(Int8Example(), &bytes).ok());
  const Int8Record rec = FindInt8Record(bytes, kInt8Name);
  EXPECT_EQ(bytes[rec.kind], 5);
  EXPECT_EQ(GetU64(bytes, rec.length), 12u);
  EXPECT_EQ(bytes[rec.axis], 0);
  EXPECT_EQ(GetU32(bytes, rec.nonzeros), 3u);
  std::vector<uint8_t> expect(8);
  const float s0 = 1.f / 127.f, s1 = 1.f;
  std::memcpy(&expect[0], &s0, 4);
  std::memcpy(&expect[4], &s1, 4);
  for (uint8_t v : {0x07, 64, 0x81, 32}) expect.push_back(v);
  EXPECT_EQ(
      std::vector<uint8_t>(bytes.begin() + long(rec.blob), bytes.begin() + long(rec.blob) + 12),
      expect);
  Graph back;
  const Status s = ReadModel(bytes.data(), bytes.size(), &back);
  ASSERT_TRUE(s.ok()) << s.message();
  const Tensor& t = back.tensors[size_t(back.FindTensor(kInt8Name))];
  EXPECT_EQ(t.data, (std::vector<float>{64 * s0, -127 * s0, 32 * s0, 0.f, 0.f, 0.f}));
  EXPECT_EQ(t.int8_axis, 0);
  EXPECT_EQ(t.int8_scales, (std::vector<float>{s0, s1}));
  EXPECT_FALSE(t.store_fp16);
}

TEST(ModelFormat, Int8RoundTripIsWithinHalfAStepAndStable) {
  Rng rng(11);
  for (auto [out, in] : {std::pair<int64_t, int64_t>{1, 1}, {3, 7}, {16, 9}, {5, 64}}) {
    for (int axis : {0, 1}) {
      for (int zero_percent : {0, 50, 90, 100}) {
        SCOPED_TRACE(std::to_string(out) + "x" + std::to_string(in) + " axis " +
                     std::to_string(axis) + ", " + std::to_string(zero_percent) + "% zeros");
        // Channels of very different magnitudes, as real weights have.
        const int64_t channels = axis == 0 ? out : in;
        std::vector<float> mag(static_cast<size_t>(channels));
        for (float& m : mag) m = std::ldexp(1.f, rng.Int(-12, 3));
        std::vector<float> w(static_cast<size_t>(out * in));
        for (int64_t i = 0; i < out * in; ++i) {
          const int64_t c = axis == 0 ? i / in : i % in;
          w[size_t(i)] = rng.Chance(zero_percent) ? 0.f : rng.Uniform(-1.f, 1.f) * mag[size_t(c)];
        }
        const Graph g = Int8FcGraph(out, in, w, axis);
        std::vector<uint8_t> bytes;
        const Status ws = WriteModel(g, &bytes);
        ASSERT_TRUE(ws.ok()) << ws.message();
        Graph back;
        const Status rs = ReadModel(bytes.data(), bytes.size(), &back);
        ASSERT_TRUE(rs.ok()) << rs.message();
        const Tensor& t = back.tensors[size_t(back.FindTensor(kInt8Name))];
        ASSERT_EQ(t.int8_axis, axis);
        ASSERT_EQ(t.int8_scales.size(), size_t(channels));
        int64_t nonzeros = 0;
        for (int64_t i = 0; i < out * in; ++i) {
          const float s = t.int8_scales[size_t(axis == 0 ? i / in : i % in)];
          const float q = t.data[size_t(i)] / s;
          EXPECT_LE(std::fabs(q - std::nearbyint(q)), 1e-4f) << i;  // q * s, divided back
          EXPECT_LE(std::fabs(std::nearbyint(q)), 127.f) << i;
          EXPECT_LE(std::fabs(t.data[size_t(i)] - w[size_t(i)]), 0.5f * s * (1.f + 1e-5f)) << i;
          nonzeros += t.data[size_t(i)] != 0.f;
        }
        const Int8Record rec = FindInt8Record(bytes, kInt8Name);
        const uint64_t dense = 4 * uint64_t(channels) + uint64_t(out * in);
        const uint64_t sparse =
            4 * uint64_t(channels) + uint64_t(out * in + 7) / 8 + uint64_t(nonzeros);
        EXPECT_EQ(bytes[rec.kind], sparse < dense ? 5 : 4);
        EXPECT_EQ(GetU64(bytes, rec.length), std::min(sparse, dense));
        std::vector<uint8_t> again;  // a read int8 model is written back byte for byte
        ASSERT_TRUE(WriteModel(back, &again).ok());
        EXPECT_EQ(again, bytes);
      }
    }
  }
}

TEST(ModelFormat, Int8WriterRefusesBadHints) {
  Graph g = Int8Example();
  g.tensors[size_t(g.FindTensor(kInt8Name))].int8_axis = 2;
  std::vector<uint8_t> bytes;
  Status s = WriteModel(g, &bytes);
  EXPECT_NE(s.message().find("has int8 axis 2, not an axis of shape [2, 3]"), std::string::npos)
      << s.message();
  g = Int8Example();
  g.tensors[size_t(g.FindTensor(kInt8Name))].data[1] = NAN;
  s = WriteModel(g, &bytes);
  EXPECT_NE(s.message().find("has a value that is not finite"), std::string::npos) << s.message();
}

TEST(ModelFormat, Int8CorruptionsAreRefused) {
  std::vector<uint8_t> good;
  ASSERT_TRUE(WriteModel(Int8Example(), &good).ok());
  const Int8Record rec = FindInt8Record(good, kInt8Name);
  auto at = [&](size_t k) { return std::to_string(rec.blob + k); };
  auto put_f32 = [](std::vector<uint8_t>& b, size_t where, float f) {
    std::memcpy(&b[where], &f, 4);
  };
  struct Case {
    const char* what;
    std::function<void(std::vector<uint8_t>&)> edit;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"axis not in the shape", [&](auto& b) { b[rec.axis] = 2; },
       "int8 scale axis 2 at byte " + std::to_string(rec.axis) + " is not an axis of shape [2, 3]"},
      {"other axis, length no longer fits", [&](auto& b) { b[rec.axis] = 1; },
       "data length 12 does not match shape [2, 3] with 3 non-zeros (16 bytes as int8 sparse: 12 "
       "bytes of scales for the 3 indices of axis 1, 1-byte bitmap, 3 bytes of values)"},
      {"non-zero count > elements", [&](auto& b) { PutU32(b, rec.nonzeros, 7); },
       "non-zero count 7 at byte " + std::to_string(rec.nonzeros) +
           " exceeds the 6 elements of shape [2, 3]"},
      {"non-zero count vs length", [&](auto& b) { PutU32(b, rec.nonzeros, 2); },
       "data length 12 does not match shape [2, 3] with 2 non-zeros (11 bytes as int8 sparse"},
      {"scale 0", [&](auto& b) { put_f32(b, rec.blob + 4, 0.f); },
       "scale 1 at byte " + at(4) + " is 0; scales must be > 0 and at most FLT_MAX / 127"},
      {"negative scale", [&](auto& b) { put_f32(b, rec.blob, -1.f); },
       "scale 0 at byte " + at(0) + " is -1; scales must be > 0 and at most FLT_MAX / 127"},
      {"NaN scale", [&](auto& b) { put_f32(b, rec.blob, NAN); },
       "scale 0 at byte " + at(0) + " is nan"},
      {"infinite scale", [&](auto& b) { put_f32(b, rec.blob + 4, INFINITY); },
       "scale 1 at byte " + at(4) + " is inf"},
      {"scale x 127 overflows", [&](auto& b) { put_f32(b, rec.blob + 4, 3e38f); },
       "scale 1 at byte " + at(4) + " is 3e+38; scales must be > 0 and at most FLT_MAX / 127"},
      {"bit cleared", [&](auto& b) { b[rec.blob + 8] = 0x03; },
       "bitmap (bytes " + at(8) + ".." + at(8) +
           ") has 2 bits set but the record says 3 non-zeros"},
      {"padding bit", [&](auto& b) { b[rec.blob + 8] |= 0x40; },
       "bitmap: padding bit 6 (byte " + at(8) + ") is set; bits 6..7 must be 0"},
      {"-128", [&](auto& b) { b[rec.blob + 10] = 0x80; },
       "value 1 at byte " + at(10) + " is -128; symmetric int8 values lie in -127..127"},
      {"stored 0", [&](auto& b) { b[rec.blob + 11] = 0; },
       "stored value 2 (element 2) at byte " + at(11) +
           " is 0; zeros must be left out of the bitmap, not stored"},
  };
  for (const Case& c : cases) {
    std::vector<uint8_t> b = good;
    c.edit(b);
    const std::string err = LoadError(b);
    EXPECT_NE(err.find("model: tensor 1 ('w/int8') (record at byte "), std::string::npos)
        << c.what << ": " << err;
    EXPECT_NE(err.find(c.expect), std::string::npos) << c.what << ": " << err;
  }
  // The dense kind: every element stored, -128 refused there too.
  std::vector<uint8_t> dense;
  ASSERT_TRUE(WriteModel(Int8FcGraph(1, 3, {1.f, -2.f, 0.5f}, 0), &dense).ok());
  const Int8Record drec = FindInt8Record(dense, kInt8Name);
  ASSERT_EQ(dense[drec.kind], 4);
  EXPECT_EQ(GetU64(dense, drec.length), 7u);
  dense[drec.blob + 5] = 0x80;
  const std::string err = LoadError(dense);
  EXPECT_NE(err.find("int8 data: value 1 at byte " + std::to_string(drec.blob + 5) + " is -128"),
            std::string::npos)
      << err;
  // Every truncation, and every single-bit flip of the record and blob: refused with a message or
  // read as another valid model; never a crash or an out-of-bounds read (ASan).
  std::vector<size_t> flip;
  for (size_t i = rec.kind; i < rec.nonzeros + 4; ++i) flip.push_back(i);
  for (size_t i = rec.blob; i < good.size(); ++i) flip.push_back(i);
  ExpectCutsRefusedAndFlipsSafe(good, flip, "model: ");
}

// Seeds for the model fuzz target that reach the int8 paths (FM_WRITE_FUZZ_SEEDS=1 rewrites them).
TEST(ModelFormat, Int8FuzzSeedsAreCurrent) {
  const std::string dir = std::string(FM_TEST_FIXTURES_DIR) + "/../fuzz/corpus/model/";
  std::vector<std::pair<std::string, std::vector<uint8_t>>> seeds(2);
  seeds[0].first = "int8_tiny.fmm";
  ASSERT_TRUE(WriteModel(Int8Example(), &seeds[0].second).ok());
  // The small CNN with int8 convolution weights (one of them mostly zeros: the sparse kind).
  seeds[1].first = "small_cnn_int8.fmm";
  Graph cnn;
  ASSERT_TRUE(BuildSmallCnn(42, &cnn).ok());
  for (const char* name : {"conv1/w", "dw1/w", "conv2/w", "conv3/w"}) {
    Tensor& t = cnn.tensors[size_t(cnn.FindTensor(name))];
    t.int8_axis = std::string(name) == "dw1/w" ? 3 : 0;
    if (std::string(name) == "conv2/w")
      for (size_t i = 0; i < t.data.size(); ++i)
        if (i % 4) t.data[i] = 0.f;
  }
  ASSERT_TRUE(WriteModel(cnn, &seeds[1].second).ok());
  std::set<int> kinds;
  for (const char* name : {"conv1/w", "dw1/w", "conv2/w", "conv3/w"})
    kinds.insert(seeds[1].second[FindName(seeds[1].second, name)]);
  EXPECT_EQ(kinds, (std::set<int>{4, 5}));
  ExpectSeedsCurrent(dir, seeds);
}

}  // namespace
}  // namespace fm::test
