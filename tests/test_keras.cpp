// test_keras.cpp - Keras import (tools/convert: keras_h5, tfjs_layers, keras_layers,
// model_import) on the real files in ../shared/fixtures/keras: every fixture converts, and the
// converted model's outputs on both backends match what TensorFlow.js computed
// (expected_outputs_tfjs.csv, max abs diff <= 1e-4) on the listed test inputs, decoded as each
// fixture's README.txt says, with the same label accuracy. Then hostile inputs: a truncated .h5,
// a file that is not HDF5, unsupported layers and missing weights must give a clear message.
// Skipped when the fixtures are absent.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "keras_h5.h"
#include "keras_layers.h"
#include "model/model_format.h"
#include "model_import.h"
#include "runtime/runtime.h"
#include "tfjs_layers.h"
#include "vision/image.h"

// HDF5 itself leaks a few bytes on some error paths inside the library (seen with damaged files
// under LeakSanitizer); those are not the converter's.
extern "C" const char* __lsan_default_suppressions() {
  return "leak:libhdf5";
}

namespace fm {
namespace {

namespace fs = std::filesystem;

const std::string kDir = FM_KERAS_FIXTURES_DIR;

#define SKIP_WITHOUT_FIXTURES() \
  if (!fs::exists(kDir + "/README.md")) GTEST_SKIP() << "no Keras fixtures at " << kDir

struct Expected {
  std::vector<int> labels;
  std::vector<std::vector<float>> outputs;
};

Expected ReadExpected(const std::string& path) {
  Expected e;
  std::ifstream f(path);
  std::string line;
  bool header = false;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (!header) {
      header = true;  // index,label,p0,...
      continue;
    }
    std::stringstream in(line);
    std::string cell;
    std::vector<float> row;
    int col = 0;
    while (std::getline(in, cell, ',')) {
      if (col == 1) e.labels.push_back(std::stoi(cell));
      if (col >= 2) row.push_back(std::stof(cell));
      ++col;
    }
    e.outputs.push_back(row);
  }
  return e;
}

// Input tensors (HWC, channels as the model expects) for the first `count` test items.
std::vector<std::vector<float>> MnistPngs(const std::string& set, size_t count, float scale) {
  std::vector<std::vector<float>> out;
  for (size_t k = 0; k < count; ++k) {
    char name[32];
    std::snprintf(name, sizeof name, "%04zu.png", k);
    Image img;
    Status s = DecodeImageFile(kDir + "/data/" + set + "/first200/" + name, &img);
    EXPECT_TRUE(s.ok()) << s.message();
    if (!s.ok() || img.width != 28 || img.height != 28) return {};
    std::vector<float> t(28 * 28);
    for (size_t i = 0; i < t.size(); ++i) t[i] = float(img.rgb[i * 3]) * scale;
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<std::vector<float>> FacemaskBgr(size_t count) {
  std::ifstream f(kDir + "/data/facemask_test/facemask_test_992x27x27x3_bgr_u8.bin",
                  std::ios::binary);
  const size_t per = 27 * 27 * 3;
  std::vector<unsigned char> bytes(per * count);
  f.read(reinterpret_cast<char*>(bytes.data()), std::streamsize(bytes.size()));
  EXPECT_EQ(size_t(f.gcount()), bytes.size());
  std::vector<std::vector<float>> out;
  for (size_t k = 0; k < count; ++k) {
    std::vector<float> t(per);
    for (size_t i = 0; i < per; ++i) t[i] = float(bytes[k * per + i]) / 255.f;  // stays BGR
    out.push_back(std::move(t));
  }
  return out;
}

int Predict(const std::vector<float>& p) {
  if (p.size() == 1) return p[0] > 0.5f ? 1 : 0;
  return int(std::max_element(p.begin(), p.end()) - p.begin());
}

struct Case {
  const char* name;
  const char* folder;
  const char* model;  // relative to the folder
  const char* data;   // "mnist_test", "fashion_mnist_test" or "facemask"
  float scale;        // pixel * scale
};

const Case kCases[] = {
    {"tensorspace", "mnist_tensorspace_keras2.1.6", "mnist.h5", "mnist_test", 1.f / 255},
    {"dlwp", "mnist_dlwp_keras2.3.1", "mnist_cnn.h5", "mnist_test", 1.f / 255},
    {"kilneta", "mnist_kilneta_tfkeras2.10", "mnist_cnn.h5", "mnist_test", 1.f / 255},
    {"fashion", "fashion_muhtashim_tfkeras2.4", "fashion_mnist_model.h5", "fashion_mnist_test",
     1.f / 255},
    {"facemask", "facemask_vaddi_tfkeras2.8", "face_mask_model.h5", "facemask", 1.f / 255},
    {"mrinal_h5", "tfjs_mnist_mrinal_tfkeras2.2.4", "mnist_model.h5", "mnist_test", 1.f},
    {"mrinal_tfjs_layers", "tfjs_mnist_mrinal_tfkeras2.2.4", "model_layers/model.json",
     "mnist_test", 1.f},
    {"keras3", "mnist_kimthangg_keras3.5", "mnist_cnn.h5", "mnist_test", 1.f / 255},
};

class KerasFixture : public ::testing::TestWithParam<Case> {};

TEST_P(KerasFixture, MatchesTfjsOutputsAndAccuracy) {
  SKIP_WITHOUT_FIXTURES();
  const Case& c = GetParam();
  const std::string folder = kDir + "/" + c.folder;
  const std::string path = folder + "/" + c.model;
  auto graph = std::make_shared<Graph>();
  const bool layers = std::string(c.model).find(".json") != std::string::npos;
  Status s = layers ? ConvertTfjsLayers(path, KerasConvertOptions(), graph.get())
                    : ConvertKerasH5(path, KerasConvertOptions(), graph.get());
  ASSERT_TRUE(s.ok()) << s.message();
  // The .fmm round trip is what users run.
  std::vector<uint8_t> bytes;
  ASSERT_TRUE(WriteModel(*graph, &bytes).ok());
  auto loaded = std::make_shared<Graph>();
  s = ReadModel(bytes.data(), bytes.size(), loaded.get());
  ASSERT_TRUE(s.ok()) << s.message();

  const Expected e = ReadExpected(folder + "/expected_outputs_tfjs.csv");
  ASSERT_FALSE(e.outputs.empty());
  const std::string data = c.data;
  const std::vector<std::vector<float>> inputs = data == "facemask"
                                                     ? FacemaskBgr(e.outputs.size())
                                                     : MnistPngs(data, e.outputs.size(), c.scale);
  ASSERT_EQ(inputs.size(), e.outputs.size());
  int expected_correct = 0;
  for (size_t k = 0; k < e.outputs.size(); ++k)
    expected_correct += Predict(e.outputs[k]) == e.labels[k];

  for (Backend backend : {Backend::kReference, Backend::kXnnpack}) {
    std::unique_ptr<Runtime> rt;
    RuntimeOptions ro;
    ro.backend = backend;
    s = Runtime::Create(loaded, ro, &rt);
    ASSERT_TRUE(s.ok()) << s.message();
    ASSERT_EQ(size_t(NumElements(rt->input_shape(0))), inputs[0].size());
    const size_t n = size_t(NumElements(rt->output_shape(0)));
    ASSERT_EQ(n, e.outputs[0].size());
    double max_diff = 0;
    int correct = 0;
    for (size_t k = 0; k < inputs.size(); ++k) {
      std::copy(inputs[k].begin(), inputs[k].end(), rt->input(0));
      ASSERT_TRUE(rt->Run().ok());
      const std::vector<float> out(rt->output(0), rt->output(0) + n);
      for (size_t j = 0; j < n; ++j)
        max_diff = std::max(max_diff, double(std::fabs(out[j] - e.outputs[k][j])));
      correct += Predict(out) == e.labels[k];
    }
    const char* bname = backend == Backend::kReference ? "reference" : "xnnpack";
    std::printf("[keras] %-20s %-9s max|diff| %.3g  accuracy %d/%zu (tfjs %d/%zu)\n", c.name, bname,
                max_diff, correct, inputs.size(), expected_correct, inputs.size());
    EXPECT_LE(max_diff, 1e-4) << c.name << " " << bname;
    EXPECT_EQ(correct, expected_correct) << c.name << " " << bname;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, KerasFixture, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::string(info.param.name);
                         });

// The whole test set (IDX, gzip) through the XNNPACK backend reaches the accuracy each fixture's
// README.txt records for TensorFlow.js / numpy.
std::vector<uint8_t> Gunzip(const std::string& path) {
  std::vector<uint8_t> out;
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) return out;
  uint8_t buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
  gzclose(f);
  return out;
}

struct FullCase {
  const char* name;
  const char* model;
  const char* set;
  float scale;
  int correct;  // of 10000, from the fixture's README.txt
};

class KerasFullTestSet : public ::testing::TestWithParam<FullCase> {};

TEST_P(KerasFullTestSet, Accuracy) {
  SKIP_WITHOUT_FIXTURES();
  const FullCase& c = GetParam();
  const std::vector<uint8_t> images =
      Gunzip(kDir + "/data/" + c.set + "/t10k-images-idx3-ubyte.gz");
  const std::vector<uint8_t> labels =
      Gunzip(kDir + "/data/" + c.set + "/t10k-labels-idx1-ubyte.gz");
  ASSERT_EQ(images.size(), 16u + 10000u * 784u);
  ASSERT_EQ(labels.size(), 8u + 10000u);
  auto g = std::make_shared<Graph>();
  Status s = ConvertKerasH5(kDir + "/" + c.model, KerasConvertOptions(), g.get());
  ASSERT_TRUE(s.ok()) << s.message();
  std::unique_ptr<Runtime> rt;
  ASSERT_TRUE(Runtime::Create(g, RuntimeOptions(), &rt).ok());
  int correct = 0;
  for (size_t k = 0; k < 10000; ++k) {
    for (size_t i = 0; i < 784; ++i) rt->input(0)[i] = float(images[16 + k * 784 + i]) * c.scale;
    ASSERT_TRUE(rt->Run().ok());
    const std::vector<float> out(rt->output(0), rt->output(0) + 10);
    correct += Predict(out) == labels[8 + k];
  }
  std::printf("[keras] %-12s full test set: %d/10000 (README: %d)\n", c.name, correct, c.correct);
  EXPECT_EQ(correct, c.correct);
}

const FullCase kFullCases[] = {
    {"tensorspace", "mnist_tensorspace_keras2.1.6/mnist.h5", "mnist_test", 1.f / 255, 9866},
    {"dlwp", "mnist_dlwp_keras2.3.1/mnist_cnn.h5", "mnist_test", 1.f / 255, 9908},
    {"kilneta", "mnist_kilneta_tfkeras2.10/mnist_cnn.h5", "mnist_test", 1.f / 255, 9938},
    {"fashion", "fashion_muhtashim_tfkeras2.4/fashion_mnist_model.h5", "fashion_mnist_test",
     1.f / 255, 9218},
    {"mrinal", "tfjs_mnist_mrinal_tfkeras2.2.4/mnist_model.h5", "mnist_test", 1.f, 9784},
    {"keras3", "mnist_kimthangg_keras3.5/mnist_cnn.h5", "mnist_test", 1.f / 255, 9909},
};

INSTANTIATE_TEST_SUITE_P(Fixtures, KerasFullTestSet, ::testing::ValuesIn(kFullCases),
                         [](const ::testing::TestParamInfo<FullCase>& info) {
                           return std::string(info.param.name);
                         });

// The tfjs layers model and the .h5 it was converted from hold bit-identical weights.
TEST(Keras, TfjsLayersEqualsH5) {
  SKIP_WITHOUT_FIXTURES();
  const std::string dir = kDir + "/tfjs_mnist_mrinal_tfkeras2.2.4";
  KerasModelSource h5, layers;
  ASSERT_TRUE(ReadKerasH5(dir + "/mnist_model.h5", &h5).ok());
  ASSERT_TRUE(ReadTfjsLayers(dir + "/model_layers/model.json", &layers).ok());
  size_t with_weights = 0;
  for (const auto& [name, arrays] : h5.weights) with_weights += !arrays.empty();
  ASSERT_EQ(with_weights, layers.weights.size());
  for (const auto& [name, arrays] : layers.weights) {
    ASSERT_EQ(h5.weights.count(name), 1u) << name;
    ASSERT_EQ(h5.weights[name].size(), arrays.size());
    for (size_t k = 0; k < arrays.size(); ++k) EXPECT_EQ(h5.weights[name][k].data, arrays[k].data);
  }
}

// `facemask convert` on the sigmoid face-mask model: labels, preprocessing and a [1, 2] output.
TEST(Keras, ImportFacemaskAsTwoClassClassifier) {
  SKIP_WITHOUT_FIXTURES();
  ImportOptions o;
  o.labels = {"no_mask", "mask"};
  o.scale = 1.f / 255;
  o.bgr = true;
  auto g = std::make_shared<Graph>();
  ModelFormat format;
  Status s =
      ImportModel(kDir + "/facemask_vaddi_tfkeras2.8/face_mask_model.h5", o, g.get(), &format);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(format, ModelFormat::kKerasH5);
  EXPECT_EQ(g->metadata["labels"], "no_mask,mask");
  EXPECT_EQ(g->metadata["kind"], "classifier");
  EXPECT_EQ(g->metadata["channel_order"], "bgr");
  EXPECT_EQ(g->metadata["norm_offset"], "-0");
  EXPECT_EQ(g->ShapeOf(g->outputs[0]), (Shape{1, 2}));
  const Expected e = ReadExpected(kDir + "/facemask_vaddi_tfkeras2.8/expected_outputs_tfjs.csv");
  const auto inputs = FacemaskBgr(8);
  std::unique_ptr<Runtime> rt;
  ASSERT_TRUE(Runtime::Create(g, RuntimeOptions(), &rt).ok());
  for (size_t k = 0; k < inputs.size(); ++k) {
    std::copy(inputs[k].begin(), inputs[k].end(), rt->input(0));
    ASSERT_TRUE(rt->Run().ok());
    EXPECT_NEAR(rt->output(0)[1], e.outputs[k][0], 1e-4);
    EXPECT_NEAR(rt->output(0)[0], 1.f - e.outputs[k][0], 1e-4);
  }
  // Format detection of the other two inputs.
  ASSERT_TRUE(
      DetectModelFormat(kDir + "/tfjs_mnist_mrinal_tfkeras2.2.4/model_layers/model.json", &format)
          .ok());
  EXPECT_EQ(format, ModelFormat::kTfjsLayers);
  // Ten outputs but two labels.
  o.labels = {"a", "b"};
  s = ImportModel(kDir + "/mnist_dlwp_keras2.3.1/mnist_cnn.h5", o, g.get());
  EXPECT_NE(s.message().find("10 outputs but 2 labels"), std::string::npos) << s.message();
}

// ---- hostile inputs ----

class KerasHostile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("fm_keras_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string Write(const std::string& name, const std::string& bytes) {
    const std::string p = (dir_ / name).string();
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
  fs::path dir_;
};

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// A Keras-shaped .h5 (model_config, model_weights/layer_names, dense/weight_names = [kernel])
// whose one weight `make_kernel` creates in the layer group: a plain dataset, or a trick that
// reads another file.
void WriteStrings(hid_t obj, const char* name, const std::vector<const char*>& values) {
  const hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, H5T_VARIABLE);
  const hsize_t n = values.size();
  const hid_t space = H5Screate_simple(1, &n, nullptr);
  const hid_t attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(attr, type, values.data());
  H5Aclose(attr);
  H5Sclose(space);
  H5Tclose(type);
}

void WriteKerasLike(const std::string& path, const std::function<void(hid_t)>& make_kernel,
                    const char* weight = "kernel") {
  const hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  const hid_t root = H5Gopen2(f, "/", H5P_DEFAULT);
  WriteStrings(root, "model_config", {"{}"});
  const hid_t mw = H5Gcreate2(root, "model_weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  WriteStrings(mw, "layer_names", {"dense"});
  const hid_t dense = H5Gcreate2(mw, "dense", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  WriteStrings(dense, "weight_names", {weight});
  make_kernel(dense);
  H5Gclose(dense);
  H5Gclose(mw);
  H5Gclose(root);
  H5Fclose(f);
}

void WriteFloats(hid_t loc, const char* name, const std::vector<float>& v, hid_t dcpl) {
  const hsize_t n = v.size();
  const hid_t space = H5Screate_simple(1, &n, nullptr);
  const hid_t ds = H5Dcreate2(loc, name, H5T_NATIVE_FLOAT, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
  H5Dclose(ds);
  H5Sclose(space);
}

// A model file must never make the converter read another file into the weights it writes.
TEST_F(KerasHostile, Hdf5LinksAndStorageOutsideTheFileAreRefused) {
  // Someone else's file, which a plain float read would turn into "weights".
  const std::string secret = Write("secret.bin", "SECRET-SECRET-16");
  const std::string other = (dir_ / "other.h5").string();
  const hid_t of = H5Fcreate(other.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  WriteFloats(of, "kernel", {1, 2, 3, 4}, H5P_DEFAULT);
  const hid_t og = H5Gcreate2(of, "g", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  WriteFloats(og, "kernel", {1, 2, 3, 4}, H5P_DEFAULT);
  H5Gclose(og);
  H5Fclose(of);
  KerasModelSource src;
  const std::string plain = (dir_ / "plain.h5").string();
  WriteKerasLike(plain, [](hid_t g) { WriteFloats(g, "kernel", {1, 2, 3, 4}, H5P_DEFAULT); });
  Status s = ReadKerasH5(plain, &src);
  ASSERT_TRUE(s.ok()) << s.message();  // the same file without tricks reads
  ASSERT_EQ(src.weights["dense"].size(), 1u);
  EXPECT_EQ(src.weights["dense"][0].data, (std::vector<float>{1, 2, 3, 4}));
  struct Case {
    const char* what;
    std::function<void(hid_t)> kernel;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {"external raw storage",
       [&](hid_t g) {
         const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
         H5Pset_external(dcpl, secret.c_str(), 0, 16);
         const hsize_t n = 4;
         const hid_t space = H5Screate_simple(1, &n, nullptr);
         H5Dclose(H5Dcreate2(g, "kernel", H5T_NATIVE_FLOAT, space, H5P_DEFAULT, dcpl, H5P_DEFAULT));
         H5Sclose(space);
         H5Pclose(dcpl);
       },
       "keeps its data in external files"},
      {"external link",
       [&](hid_t g) {
         H5Lcreate_external(other.c_str(), "/kernel", g, "kernel", H5P_DEFAULT, H5P_DEFAULT);
       },
       "is an external link to another file"},
      {"soft link",
       [&](hid_t g) {
         WriteFloats(g, "real", {5, 6, 7, 8}, H5P_DEFAULT);
         H5Lcreate_soft("real", g, "kernel", H5P_DEFAULT, H5P_DEFAULT);
       },
       "is a soft or user-defined link"},
      {"virtual dataset",
       [&](hid_t g) {
         const hsize_t n = 4;
         const hid_t space = H5Screate_simple(1, &n, nullptr);
         const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
         H5Pset_virtual(dcpl, space, other.c_str(), "/kernel", space);
         H5Dclose(H5Dcreate2(g, "kernel", H5T_NATIVE_FLOAT, space, H5P_DEFAULT, dcpl, H5P_DEFAULT));
         H5Pclose(dcpl);
         H5Sclose(space);
       },
       "is a virtual dataset"},
  };
  // An external link in the middle of the weight's path ("ext/kernel", ext -> other.h5:/g).
  const std::string mid = (dir_ / "mid.h5").string();
  WriteKerasLike(
      mid,
      [&](hid_t g) { H5Lcreate_external(other.c_str(), "/g", g, "ext", H5P_DEFAULT, H5P_DEFAULT); },
      "ext/kernel");
  s = ReadKerasH5(mid, &src);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("weight 'ext/kernel' is missing (or behind a link)"),
            std::string::npos)
      << s.message();
  for (const Case& c : cases) {
    const std::string path = (dir_ / (std::string(c.what) + ".h5")).string();
    WriteKerasLike(path, c.kernel);
    s = ReadKerasH5(path, &src);
    ASSERT_FALSE(s.ok()) << c.what;
    EXPECT_NE(s.message().find(c.expect), std::string::npos) << c.what << ": " << s.message();
    EXPECT_NE(s.message().find("model_weights/dense: weight 'kernel'"), std::string::npos)
        << s.message();
  }
}

TEST_F(KerasHostile, NotHdf5) {
  Graph g;
  const std::string p = Write("model.h5", "this is not an HDF5 file\n");
  Status s = ConvertKerasH5(p, KerasConvertOptions(), &g);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("not an HDF5 file"), std::string::npos) << s.message();
  s = ConvertKerasH5((dir_ / "missing.h5").string(), KerasConvertOptions(), &g);
  EXPECT_FALSE(s.ok());
  s = ImportModel(Write("model.keras", std::string("PK\x03\x04", 4) + "zip"), ImportOptions(), &g);
  EXPECT_NE(s.message().find("zip"), std::string::npos) << s.message();
}

TEST_F(KerasHostile, TruncatedAndDamagedH5) {
  SKIP_WITHOUT_FIXTURES();
  const std::string full = ReadAll(kDir + "/mnist_dlwp_keras2.3.1/mnist_cnn.h5");
  ASSERT_GT(full.size(), 100000u);
  for (size_t size : {size_t(8), size_t(100), size_t(2048), full.size() / 2, full.size() - 1}) {
    Graph g;
    Status s = ConvertKerasH5(Write("cut.h5", full.substr(0, size)), KerasConvertOptions(), &g);
    EXPECT_FALSE(s.ok()) << size;
    EXPECT_FALSE(s.message().empty());
  }
  // Flipped bytes in the middle (weights or metadata): an error or a model, never a crash.
  for (size_t at = 1000; at < full.size(); at += full.size() / 7) {
    std::string bad = full;
    for (size_t k = at; k < std::min(at + 64, bad.size()); ++k) bad[k] = char(bad[k] ^ 0x5A);
    Graph g;
    (void)ConvertKerasH5(Write("bad.h5", bad), KerasConvertOptions(), &g);
  }
}

// A layers model.json written here: one layer of `layer` JSON after a 4x4x2 input.
std::string LayersModel(const std::string& layer, const std::string& weights = "[]") {
  return R"({"format": "layers-model", "modelTopology": {"model_config": {"class_name":
    "Sequential", "config": {"name": "s", "layers": [{"class_name": "InputLayer", "config":
    {"batch_input_shape": [null, 4, 4, 2], "name": "in"}},)" +
         layer + R"(]}}}, "weightsManifest": [{"paths": [], "weights": )" + weights + "}]}";
}

TEST_F(KerasHostile, UnsupportedLayersAreNamed) {
  Graph g;
  Status s = ConvertTfjsLayers(
      Write("a.json", LayersModel(R"({"class_name": "LSTM", "config": {"name": "my_lstm"}})")),
      KerasConvertOptions(), &g);
  EXPECT_NE(s.message().find("layer 'my_lstm' (LSTM)"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("not supported"), std::string::npos) << s.message();
  s = ConvertTfjsLayers(
      Write("b.json", LayersModel(R"({"class_name": "Activation", "config": {"name": "act",
        "activation": "swish"}})")),
      KerasConvertOptions(), &g);
  EXPECT_NE(s.message().find("layer 'act' (Activation): activation 'swish'"), std::string::npos)
      << s.message();
  s = ConvertTfjsLayers(
      Write("c.json", LayersModel(R"({"class_name": "MaxPooling2D", "config": {"name": "pool",
        "data_format": "channels_first"}})")),
      KerasConvertOptions(), &g);
  EXPECT_NE(s.message().find("layer 'pool' (MaxPooling2D): data_format 'channels_first'"),
            std::string::npos)
      << s.message();
  // A Dense whose kernel is missing from the manifest.
  s = ConvertTfjsLayers(
      Write("d.json", LayersModel(R"({"class_name": "Flatten", "config": {"name": "f"}},
        {"class_name": "Dense", "config": {"name": "fc", "units": 3}})")),
      KerasConvertOptions(), &g);
  EXPECT_NE(s.message().find("layer 'fc' (Dense): weight 'kernel' not found"), std::string::npos)
      << s.message();
  // Unsafe shard path and a short shard.
  std::string m = LayersModel(R"({"class_name": "Flatten", "config": {"name": "f"}})");
  m.replace(m.find("\"paths\": []"), 11, "\"paths\": [\"../x.bin\"]");
  s = ConvertTfjsLayers(Write("e.json", m), KerasConvertOptions(), &g);
  EXPECT_NE(s.message().find("not a plain relative path"), std::string::npos) << s.message();
  Write("w.bin", "abcd");
  s = ConvertTfjsLayers(
      Write("f.json",
            std::string(R"({"format": "layers-model", "modelTopology": {"class_name": "Sequential",
        "config": [{"class_name": "Dense", "config": {"name": "fc", "units": 2,
        "batch_input_shape": [null, 3]}}]}, "weightsManifest": [{"paths": ["w.bin"], "weights":
        [{"name": "fc/kernel", "shape": [3, 2], "dtype": "float32"}]}]})")),
      KerasConvertOptions(), &g);
  EXPECT_NE(s.message().find("missing or truncated shard"), std::string::npos) << s.message();
  // Garbage JSON.
  s = ConvertTfjsLayers(Write("g.json", "{\"format\": \"layers-model\", "), KerasConvertOptions(),
                        &g);
  EXPECT_FALSE(s.ok());
}

// Layers the fixtures do not cover, checked against numbers worked out by hand.
TEST(Keras, BatchNormZeroPaddingGlobalPoolAdd) {
  KerasModelSource src;
  src.config_json = R"({"class_name": "Functional", "config": {"name": "m", "layers": [
    {"class_name": "InputLayer", "name": "in", "config": {"batch_input_shape": [null, 2, 2, 1]},
     "inbound_nodes": []},
    {"class_name": "Conv2D", "name": "conv", "config": {"filters": 2, "kernel_size": [1, 1],
     "use_bias": false}, "inbound_nodes": [[["in", 0, 0, {}]]]},
    {"class_name": "BatchNormalization", "name": "bn", "config": {"axis": [3], "epsilon": 0.0},
     "inbound_nodes": [[["conv", 0, 0, {}]]]},
    {"class_name": "ZeroPadding2D", "name": "pad", "config": {"padding": [[1, 0], [0, 1]]},
     "inbound_nodes": [[["bn", 0, 0, {}]]]},
    {"class_name": "GlobalAveragePooling2D", "name": "gap", "config": {},
     "inbound_nodes": [[["pad", 0, 0, {}]]]},
    {"class_name": "Dense", "name": "fc", "config": {"units": 2, "activation": "relu"},
     "inbound_nodes": [[["gap", 0, 0, {}]]]},
    {"class_name": "Add", "name": "sum", "config": {},
     "inbound_nodes": [[["fc", 0, 0, {}], ["gap", 0, 0, {}]]]},
    {"class_name": "Softmax", "name": "sm", "config": {"axis": -1},
     "inbound_nodes": [[["sum", 0, 0, {}]]]}],
    "input_layers": [["in", 0, 0]], "output_layers": [["sm", 0, 0]]}})";
  src.weights["conv"] = {{"conv/kernel:0", {1, 1, 1, 2}, {1.f, 2.f}}};
  src.weights["bn"] = {{"bn/gamma:0", {2}, {2.f, 1.f}},
                       {"bn/beta:0", {2}, {1.f, 0.f}},
                       {"bn/moving_mean:0", {2}, {0.f, 1.f}},
                       {"bn/moving_variance:0", {2}, {4.f, 1.f}}};
  src.weights["fc"] = {{"fc/kernel:0", {2, 2}, {1.f, 0.f, 0.f, -1.f}},
                       {"fc/bias:0", {2}, {0.f, 0.f}}};
  auto g = std::make_shared<Graph>();
  Status s = ConvertKerasModel(src, KerasConvertOptions(), g.get());
  ASSERT_TRUE(s.ok()) << s.message();
  // The batch norm is folded into the convolution: no multiply/add nodes.
  for (const Node& n : g->nodes) EXPECT_NE(n.op, "multiply");
  // x = [1, 2, 3, 4]: conv ch0 = x, ch1 = 2x; bn ch0 = x * 2/2 + 1, ch1 = (2x - 1).
  // Padded 3x3 (5 zero cells): mean ch0 = (2+3+4+5)/9 = 14/9, ch1 = (1+3+5+7)/9 = 16/9.
  // fc: relu([14/9, -16/9]) = [14/9, 0]; sum = [28/9, 16/9]; softmax.
  const double a = 28.0 / 9, b = 16.0 / 9;
  const double p0 = std::exp(a) / (std::exp(a) + std::exp(b));
  for (Backend backend : {Backend::kReference, Backend::kXnnpack}) {
    std::unique_ptr<Runtime> rt;
    RuntimeOptions ro;
    ro.backend = backend;
    ASSERT_TRUE(Runtime::Create(g, ro, &rt).ok());
    const float x[4] = {1, 2, 3, 4};
    std::copy(x, x + 4, rt->input(0));
    ASSERT_TRUE(rt->Run().ok());
    EXPECT_NEAR(rt->output(0)[0], p0, 1e-5);
    EXPECT_NEAR(rt->output(0)[1], 1 - p0, 1e-5);
  }
}

}  // namespace
}  // namespace fm
