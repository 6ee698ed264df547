// facemask.cpp - the native command-line tool, the engine's front door for scripts:
//   facemask detect [--json] [--annotate DIR] [--min-score S] [--detector FILE]
//                   [--classifier FILE | --no-classifier] [--threads N] [--small-faces]
//                   IMAGE_OR_DIR...
//   facemask convert INPUT -o OUTPUT [--labels a,b,...] [--scale S] [--mean M] [--bgr]
//                    [--input-size S] [--features BLOCKS] [--fp32]   (the last three: face-api.js)
//   facemask classify --model FILE [--json] [--threads N] IMAGE_OR_DIR...
//   facemask export MODEL.fmm [--tfjs DIR] [--onnx FILE]
// detect and classify print one JSON object per image with --json (JSON Lines); a file that
// cannot be read gives {"file": ..., "error": ...} and the batch goes on. convert takes a Keras
// .h5, a TensorFlow.js graph model or layers model (model.json), or a face-api.js weights
// manifest (face_expression_model) and writes a .fmm classifier (or, with --features, face-api's
// pretrained feature extractor for the trainer). export writes a .fmm as a TensorFlow.js graph
// model (DIR/model.json + one weight shard) and/or an ONNX file (tools/convert/export_*.h), for
// running our models in other runtimes.
// Exit status: 0 all files fine, 1 some failed, 2 usage or model errors.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "annotate.h"
#include "export_onnx.h"
#include "export_tfjs.h"
#include "model_format.h"
#include "model_import.h"
#include "pipeline.h"
#include "results_json.h"
#include "runtime.h"
#include "whole_image.h"

#ifndef FM_DEFAULT_MODEL_DIR
#define FM_DEFAULT_MODEL_DIR "model"
#endif

namespace fs = std::filesystem;
using fm::Status;

namespace {

int Usage(const char* message = nullptr) {
  if (message) std::fprintf(stderr, "facemask: %s\n", message);
  std::fprintf(
      stderr,
      "usage: facemask detect [--json] [--annotate DIR] [--min-score S] [--detector FILE]\n"
      "                       [--classifier FILE | --no-classifier] [--threads N] [--small-faces]\n"
      "                       IMAGE_OR_DIR...   (--threads: N images at a time)\n"
      "       facemask convert INPUT -o OUTPUT [--labels a,b,...] [--scale S] [--mean M] [--bgr]\n"
      "                        [--input-size S] [--features BLOCKS] [--fp32]\n"
      "                (INPUT: Keras .h5, TensorFlow.js graph or layers model.json;\n"
      "                 the model sees pixel * S - M, channels RGB or BGR)\n"
      "       facemask classify --model FILE [--json] [--threads N] IMAGE_OR_DIR...\n"
      "       facemask export MODEL.fmm [--tfjs DIR] [--onnx FILE]\n"
      "                (TensorFlow.js graph model DIR/model.json + shard; ONNX opset 13)\n"
      "models default to %s (override with FACEMASK_MODEL_DIR)\n",
      FM_DEFAULT_MODEL_DIR);
  return 2;
}

std::string ModelDir() {
  const char* env = std::getenv("FACEMASK_MODEL_DIR");
  return env && *env ? env : FM_DEFAULT_MODEL_DIR;
}

bool IsImageName(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  for (const char* e : {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".pnm", ".ppm", ".pgm", ".tga"})
    if (ext == e) return true;
  return false;
}

// Expands directory arguments (recursively, sorted) into image files; files are kept as given.
std::vector<std::string> ExpandInputs(const std::vector<std::string>& args) {
  std::vector<std::string> files;
  for (const std::string& a : args) {
    std::error_code ec;
    if (fs::is_directory(a, ec)) {
      std::vector<std::string> found;
      for (auto it = fs::recursive_directory_iterator(
               a, fs::directory_options::skip_permission_denied, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
        if (it->is_regular_file(ec) && IsImageName(it->path()))
          found.push_back(it->path().string());
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else {
      files.push_back(a);
    }
  }
  return files;
}

int Detect(int argc, char** argv) {
  bool json = false, no_classifier = false;
  std::string annotate, detector_path, classifier_path;
  fm::PipelineOptions options;
  std::vector<std::string> inputs;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc) return nullptr;
      (void)name;
      return argv[++i];
    };
    if (a == "--json")
      json = true;
    else if (a == "--no-classifier")
      no_classifier = true;
    else if (a == "--small-faces")
      options.min_tile = 1.f;  // 1:1 tiles: more faces under ~20 px, 1.4x the time on small photos
    else if (a == "--annotate" || a == "--detector" || a == "--classifier" || a == "--min-score" ||
             a == "--threads") {
      const char* v = value(a.c_str());
      if (!v) return Usage((a + " needs a value").c_str());
      if (a == "--annotate") annotate = v;
      if (a == "--detector") detector_path = v;
      if (a == "--classifier") classifier_path = v;
      if (a == "--min-score") {
        char* end = nullptr;
        options.min_score = std::strtof(v, &end);
        if (*end || !(options.min_score >= 0.f && options.min_score <= 1.f))
          return Usage("--min-score must be a number in 0..1");
      }
      if (a == "--threads") {
        options.threads = std::atoi(v);
        if (options.threads < 1 || options.threads > 64) return Usage("--threads must be 1..64");
      }
    } else if (a.size() > 1 && a[0] == '-') {
      return Usage(("unknown option " + a).c_str());
    } else {
      inputs.push_back(a);
    }
  }
  if (inputs.empty()) return Usage("no images given");
  const std::vector<std::string> files = ExpandInputs(inputs);
  // Several images and threads: each thread runs its own single-threaded pipeline on whole images.
  // (XNNPACK's threads on these small models mostly wait for each other: on the scenes 1 thread
  // does 38 photos/s, 2 XNNPACK threads did 18, 2 pipelines do 69; README "Numbers".) One image:
  // the threads share its inferences.
  const size_t workers = std::min(size_t(options.threads), files.size());
  if (workers > 1) options.threads = 1;
  if (detector_path.empty()) detector_path = ModelDir() + "/blazeface-full.fmm";
  if (classifier_path.empty() && !no_classifier) {
    const std::string dflt = ModelDir() + "/classifier.fmm";
    if (fs::exists(dflt)) classifier_path = dflt;
  }
  auto detector = std::make_shared<fm::Graph>();
  Status s = fm::ReadModelFile(detector_path, detector.get());
  std::shared_ptr<fm::Graph> classifier;
  if (s.ok() && !classifier_path.empty()) {
    classifier = std::make_shared<fm::Graph>();
    s = fm::ReadModelFile(classifier_path, classifier.get());
  }
  std::unique_ptr<fm::Pipeline> pipeline;
  if (s.ok()) s = fm::Pipeline::Create(detector, classifier, options, &pipeline);
  if (!s.ok()) {
    std::fprintf(stderr, "facemask: %s\n", s.message().c_str());
    return 2;
  }
  if (!annotate.empty()) {
    std::error_code ec;
    fs::create_directories(annotate, ec);
    if (ec) {
      std::fprintf(stderr, "facemask: cannot create '%s': %s\n", annotate.c_str(),
                   ec.message().c_str());
      return 2;
    }
  }

  // One image: decode, detect, classify, annotate; the text to print is returned (printing stays
  // in file order even when several threads work).
  struct Output {
    std::string out, err;
    bool failed = false;
  };
  auto process = [&](fm::Pipeline& pl, const std::string& file, fm::Image& image,
                     std::vector<fm::Face>& faces) {
    Output o;
    char line[256];
    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    Status st = fm::DecodeImageFile(file, &image);
    if (st.ok()) st = pl.Run(image, &faces);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (!st.ok()) {
      o.failed = true;
      if (json)
        o.out = "{\"file\": " + fm::JsonString(file) +
                ", \"error\": " + fm::JsonString(st.message()) + "}\n";
      else
        o.err = file + ": error: " + st.message() + "\n";
      return o;
    }
    if (!annotate.empty()) {
      fm::AnnotateFaces(&image, faces, pl.labels());
      const std::string dest = (fs::path(annotate) / fs::path(file).stem()).string() + ".jpg";
      Status w = fm::WriteJpeg(image, dest);
      if (!w.ok()) {
        o.failed = true;
        o.err = "facemask: " + w.message() + "\n";
      }
    }
    if (json) {
      std::snprintf(line, sizeof line, ", \"width\": %d, \"height\": %d, \"faces\": ", image.width,
                    image.height);
      o.out = "{\"file\": " + fm::JsonString(file) + line + fm::FacesJson(faces, pl.labels());
      std::snprintf(line, sizeof line, ", \"ms\": %.2f}\n", ms);
      o.out += line;
    } else {
      std::snprintf(line, sizeof line, ": %zu face%s (%.1f ms)\n", faces.size(),
                    faces.size() == 1 ? "" : "s", ms);
      o.out = file + line;
      for (const fm::Face& f : faces) {
        std::snprintf(line, sizeof line, "  [%.0f, %.0f, %.0f, %.0f] score %.2f", double(f.det.x0),
                      double(f.det.y0), double(f.det.x1), double(f.det.y1), double(f.det.score));
        o.out += line;
        if (f.label >= 0) {
          std::snprintf(line, sizeof line, " %.0f%%", double(f.probs[size_t(f.label)]) * 100.0);
          o.out += "  " + pl.labels()[size_t(f.label)] + line;
        }
        o.out += "\n";
      }
    }
    return o;
  };
  int failures = 0;
  auto print = [&](const Output& o) {
    failures += o.failed;
    std::fputs(o.err.c_str(), stderr);
    std::fputs(o.out.c_str(), stdout);
    std::fflush(stdout);
  };

  if (workers <= 1) {
    std::vector<fm::Face> faces;
    fm::Image image;
    for (const std::string& file : files) print(process(*pipeline, file, image, faces));
    return failures ? 1 : 0;
  }
  std::vector<std::unique_ptr<fm::Pipeline>> pipelines(workers);
  pipelines[0] = std::move(pipeline);
  for (size_t w = 1; w < workers; ++w) {
    s = fm::Pipeline::Create(detector, classifier, options, &pipelines[w]);
    if (!s.ok()) {
      std::fprintf(stderr, "facemask: %s\n", s.message().c_str());
      return 2;
    }
  }
  std::vector<Output> outputs(files.size());
  std::vector<char> done(files.size(), 0);
  std::atomic<size_t> next{0};
  std::mutex mutex;
  std::condition_variable ready;
  std::vector<std::thread> threads;
  for (size_t w = 0; w < workers; ++w)
    threads.emplace_back([&, w] {
      std::vector<fm::Face> faces;
      fm::Image image;
      for (size_t i = next++; i < files.size(); i = next++) {
        Output o = process(*pipelines[w], files[i], image, faces);
        std::lock_guard<std::mutex> lock(mutex);
        outputs[i] = std::move(o);
        done[i] = 1;
        ready.notify_one();
      }
    });
  for (size_t i = 0; i < files.size(); ++i) {
    std::unique_lock<std::mutex> lock(mutex);
    ready.wait(lock, [&] { return done[i] != 0; });
    const Output o = std::move(outputs[i]);
    lock.unlock();
    print(o);
  }
  for (std::thread& t : threads) t.join();
  return failures ? 1 : 0;
}

bool ParseFloat(const char* text, float* out) {
  char* end = nullptr;
  *out = std::strtof(text, &end);
  return end != text && *end == '\0' && std::isfinite(*out);
}

int Convert(int argc, char** argv) {
  std::string input, output;
  fm::ImportOptions options;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "-o" || a == "--labels" || a == "--scale" || a == "--mean" || a == "--input-size" ||
        a == "--features") {
      if (!v) return Usage((a + " needs a value").c_str());
      ++i;
      if (a == "-o") output = v;
      float n = 0;
      if ((a == "--input-size" || a == "--features") &&
          (!ParseFloat(v, &n) || n != std::floor(n) || n < 1 || n > 448))
        return Usage((a + " needs a whole number").c_str());
      if (a == "--input-size") options.input_size = int(n);
      if (a == "--features") options.feature_blocks = int(n);
      if ((a == "--scale" && !ParseFloat(v, &options.scale)) ||
          (a == "--mean" && !ParseFloat(v, &options.mean)))
        return Usage((a + " needs a number").c_str());
      if (a == "--labels") {
        std::string item;
        std::stringstream in(v);
        while (std::getline(in, item, ',')) options.labels.push_back(item);
        if (options.labels.empty()) return Usage("--labels needs a,b,...");
      }
    } else if (a == "--bgr") {
      options.bgr = true;
    } else if (a == "--fp32") {
      options.fp32 = true;
    } else if (a.size() > 1 && a[0] == '-') {
      return Usage(("unknown option " + a).c_str());
    } else if (input.empty()) {
      input = a;
    } else {
      return Usage("convert takes one INPUT");
    }
  }
  if (input.empty() || output.empty()) return Usage("convert needs INPUT and -o OUTPUT");
  fm::Graph graph;
  fm::ModelFormat format;
  Status s = fm::ImportModel(input, options, &graph, &format);
  // Through a temporary file, so a failed run never leaves a half-written OUTPUT.
  const std::string tmp = output + ".tmp";
  if (s.ok()) s = fm::WriteModelFile(graph, tmp);
  if (s.ok() && std::rename(tmp.c_str(), output.c_str()) != 0)
    s = fm::Errorf("cannot rename '", tmp, "' to '", output, "'");
  if (!s.ok()) {
    std::remove(tmp.c_str());
    std::fprintf(stderr, "facemask: %s\n", s.message().c_str());
    return 1;
  }
  const fm::Shape& in = graph.ShapeOf(graph.inputs[0]);
  std::printf("%s: %s model, input %s, %s %s, %zu nodes\n", output.c_str(),
              fm::ModelFormatName(format), fm::ShapeToString(in).c_str(),
              graph.metadata["kind"] == "features" ? "features" : "labels",
              graph.metadata["kind"] == "features"
                  ? fm::ShapeToString(graph.ShapeOf(graph.outputs[0])).c_str()
                  : graph.metadata["labels"].c_str(),
              graph.nodes.size());
  return 0;
}

int Classify(int argc, char** argv) {
  bool json = false;
  int threads = 1;
  std::string model;
  std::vector<std::string> inputs;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json") {
      json = true;
    } else if (a == "--model" || a == "--threads") {
      if (i + 1 >= argc) return Usage((a + " needs a value").c_str());
      const char* v = argv[++i];
      if (a == "--model") model = v;
      if (a == "--threads") {
        threads = std::atoi(v);
        if (threads < 1 || threads > 64) return Usage("--threads must be 1..64");
      }
    } else if (a.size() > 1 && a[0] == '-') {
      return Usage(("unknown option " + a).c_str());
    } else {
      inputs.push_back(a);
    }
  }
  if (model.empty()) return Usage("classify needs --model FILE");
  if (inputs.empty()) return Usage("no images given");
  fm::WholeImageClassifier classifier;
  auto graph = std::make_shared<fm::Graph>();
  Status s = fm::ReadModelFile(model, graph.get());
  if (s.ok()) s = classifier.Load(graph, threads).Prefix(model + ": ");
  if (!s.ok()) {
    std::fprintf(stderr, "facemask: %s\n", s.message().c_str());
    return 2;
  }
  int failures = 0;
  fm::Image image;
  std::vector<float> probs;
  for (const std::string& file : ExpandInputs(inputs)) {
    s = fm::DecodeImageFile(file, &image);
    if (s.ok()) s = classifier.Run(image, &probs);
    if (!s.ok()) {
      ++failures;
      if (json)
        std::printf("{\"file\": %s, \"error\": %s}\n", fm::JsonString(file).c_str(),
                    fm::JsonString(s.message()).c_str());
      else
        std::fprintf(stderr, "%s: error: %s\n", file.c_str(), s.message().c_str());
      std::fflush(stdout);
      continue;
    }
    const auto& labels = classifier.labels();
    const size_t best = size_t(std::max_element(probs.begin(), probs.end()) - probs.begin());
    if (json) {
      std::string p;
      for (size_t k = 0; k < probs.size(); ++k) {
        char num[32];
        std::snprintf(num, sizeof num, "%.6g", double(probs[k]));
        p += (k ? ", " : "") + fm::JsonString(labels[k]) + ": " + num;
      }
      std::printf("{\"file\": %s, \"label\": %s, \"probs\": {%s}}\n", fm::JsonString(file).c_str(),
                  fm::JsonString(labels[best]).c_str(), p.c_str());
    } else {
      std::printf("%s: %s %.1f%%\n", file.c_str(), labels[best].c_str(),
                  double(probs[best]) * 100.0);
    }
    std::fflush(stdout);
  }
  return failures ? 1 : 0;
}

// Writes MODEL.fmm in other runtimes' formats; each exporter writes through temporaries.
int Export(int argc, char** argv) {
  std::string model, tfjs, onnx;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--tfjs" || a == "--onnx") {
      if (i + 1 >= argc) return Usage((a + " needs a value").c_str());
      (a == "--tfjs" ? tfjs : onnx) = argv[++i];
    } else if (a.size() > 1 && a[0] == '-') {
      return Usage(("unknown option " + a).c_str());
    } else if (model.empty()) {
      model = a;
    } else {
      return Usage("export takes one MODEL");
    }
  }
  if (model.empty() || (tfjs.empty() && onnx.empty()))
    return Usage("export needs MODEL.fmm and --tfjs DIR and/or --onnx FILE");
  fm::Graph graph;
  Status s = fm::ReadModelFile(model, &graph);
  if (s.ok() && !tfjs.empty()) s = fm::ExportTfjsToDir(graph, tfjs).Prefix(model + ": ");
  if (s.ok() && !onnx.empty()) s = fm::ExportOnnxFile(graph, onnx).Prefix(model + ": ");
  if (!s.ok()) {
    std::fprintf(stderr, "facemask: %s\n", s.message().c_str());
    return 1;
  }
  for (const std::string& out : {tfjs, onnx})
    if (!out.empty()) std::printf("%s: %zu nodes exported\n", out.c_str(), graph.nodes.size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage();
  const std::string command = argv[1];
  if (command == "detect") return Detect(argc - 2, argv + 2);
  if (command == "convert") return Convert(argc - 2, argv + 2);
  if (command == "classify") return Classify(argc - 2, argv + 2);
  if (command == "export") return Export(argc - 2, argv + 2);
  if (command == "--help" || command == "-h" || command == "help") {
    Usage();
    return 0;
  }
  return Usage(("unknown command '" + command + "'").c_str());
}
