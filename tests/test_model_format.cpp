// test_model_format.cpp - .fmm round trips, and the loader's answer to every kind of bad file:
// each must be refused with a message that says what and where, never read out of bounds (ASan).
#include <algorithm>
#include <cstring>

#include "model_format.h"
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

}  // namespace
}  // namespace fm::test
