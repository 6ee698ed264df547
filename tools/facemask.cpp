// facemask.cpp - the native command-line tool, the engine's front door for scripts:
//   facemask detect [--json] [--annotate DIR] [--min-score S] [--detector FILE]
//                   [--classifier FILE | --no-classifier] [--threads N] [--small-faces]
//                   [--min-tile T] [--precision float|int8]
//                   IMAGE_OR_DIR...
//   facemask convert INPUT -o OUTPUT [--labels a,b,...] [--scale S] [--mean M] [--bgr]
//                    [--input-size S] [--features BLOCKS] [--fp32]   (the last three: face-api.js)
//   facemask classify --model FILE [--json] [--threads N] IMAGE_OR_DIR...
//   facemask export MODEL.fmm [--tfjs DIR] [--onnx FILE]
//   facemask quantize MODEL.fmm -o OUTPUT.fmm [--min-elements N] [--keep-float TENSOR]...
//                     [--output-layers] [--list]
// detect and classify print one JSON object per image with --json (JSON Lines); a file that
// cannot be read, a path that does not exist and a directory without images each give
// {"file": ..., "error": ...} (in text, FILE: error: ... on stderr) and the batch goes on. Text
// output escapes control bytes in file names, labels and messages as \xNN. --annotate writes
// DIR/STEM.annotated.jpg for each image, STEM.annotated-2.jpg (-3, ...) when that name is one of
// the inputs or taken by another image of the run (said on stderr); it never writes over an input
// and writes through DIR/.NAME.tmp, renamed when complete. convert takes a Keras
// .h5, a TensorFlow.js graph model or layers model (model.json), or a face-api.js weights
// manifest (face_expression_model) and writes a .fmm classifier (or, with --features, face-api's
// pretrained feature extractor for the trainer). export writes a .fmm as a TensorFlow.js graph
// model (DIR/model.json + one weight shard) and/or an ONNX file (tools/convert/export_*.h), for
// running our models in other runtimes. quantize writes MODEL.fmm with int8 weights (one scale
// per output channel, tools/convert/quantize.h), which run in float like the original.
// Exit status: 0 all files fine, 1 some failed, 2 usage or model errors (a model that cannot be
// read or used, running out of memory loading it; any failure of convert and export).
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
#include <new>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>

#include "annotate.h"
#include "api/results_json.h"
#include "convert_util.h"
#include "export_onnx.h"
#include "export_tfjs.h"
#include "model/model_format.h"
#include "model_import.h"
#include "quantize.h"
#include "vision/pipeline.h"
#include "vision/whole_image.h"

#ifndef FM_DEFAULT_MODEL_DIR
#define FM_DEFAULT_MODEL_DIR "model"
#endif

namespace fs = std::filesystem;
using fm::Status;

namespace {

// Text output never passes terminal control sequences through: bytes below 0x20, DEL, bytes that
// are not well-formed UTF-8 and the UTF-8 C1 controls (U+0080..U+009F) become \xNN.
size_t PrintableBytes(const std::string& s, size_t i) {  // at s[i]; 0 = escape s[i]
  const auto c = uint8_t(s[i]);
  if (c >= 0x20 && c < 0x7f) return 1;
  if (c < 0xc2 || c > 0xf4) return 0;  // controls, DEL, stray continuation bytes, bad leads
  const size_t n = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((uint8_t(s[i + k]) & 0xc0) != 0x80) return 0;
  return c == 0xc2 && uint8_t(s[i + 1]) < 0xa0 ? 0 : n;
}

std::string Printable(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const size_t n = PrintableBytes(s, i);
    if (n > 0) {
      out.append(s, i, n);
      i += n;
      continue;
    }
    char hex[8];
    std::snprintf(hex, sizeof hex, "\\x%02x", unsigned(uint8_t(s[i++])));
    out += hex;
  }
  return out;
}

// Prints "facemask: MESSAGE" (escaped) on stderr.
void Say(const std::string& message) {
  std::fprintf(stderr, "facemask: %s\n", Printable(message).c_str());
}

int Fail(int status, const std::string& message) {
  Say(message);
  return status;
}

// Runs `f` (returning a Status), turning exceptions into errors ("WHAT: out of memory"): loading
// a model or building a pipeline can run out of memory, which must not abort the CLI.
template <typename F>
Status Guarded(const std::string& what, F&& f) {
  const std::string prefix = what.empty() ? "" : what + ": ";
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return fm::Errorf(prefix, "out of memory");
  } catch (const std::exception& e) {
    return fm::Errorf(prefix, e.what());
  }
}

int Usage(const char* message = nullptr) {
  if (message) Say(message);
  std::fprintf(
      stderr,
      "usage: facemask detect [--json] [--annotate DIR] [--min-score S] [--detector FILE]\n"
      "                       [--classifier FILE | --no-classifier] [--threads N] [--small-faces]\n"
      "                       [--min-tile T] [--precision float|int8] IMAGE_OR_DIR...\n"
      "                (--threads: N images at a time; --precision int8: the default models'\n"
      "                 int8-weight files, NAME-int8.fmm;\n"
      "                 --min-tile: smallest tile side in detector inputs, 0.5..8, default 0.75;\n"
      "                 --small-faces = --min-tile 0.5)\n"
      "                (--annotate DIR: DIR/STEM.annotated.jpg, or STEM.annotated-2.jpg, ... when\n"
      "                 that name is an input or another image's; inputs are never written over)\n"
      "       facemask convert INPUT -o OUTPUT [--labels a,b,...] [--scale S] [--mean M] [--bgr]\n"
      "                        [--input-size S] [--features BLOCKS] [--fp32]\n"
      "                (INPUT: Keras .h5, TensorFlow.js graph or layers model.json;\n"
      "                 the model sees pixel * S - M, channels RGB or BGR)\n"
      "       facemask classify --model FILE [--json] [--threads N] IMAGE_OR_DIR...\n"
      "       facemask export MODEL.fmm [--tfjs DIR] [--onnx FILE]\n"
      "                (TensorFlow.js graph model DIR/model.json + shard; ONNX opset 13)\n"
      "       facemask quantize MODEL.fmm -o OUTPUT.fmm [--min-elements N] [--keep-float "
      "TENSOR]...\n"
      "                         [--output-layers] [--list]\n"
      "                (int8 weights, one scale per output channel; runs in float as before;\n"
      "                 the output layers (heads, last dense) stay float unless --output-layers;\n"
      "                 --keep-float: leave that weight tensor as it is; --list: one line per "
      "tensor)\n"
      "models default to %s (override with FACEMASK_MODEL_DIR)\n",
      FM_DEFAULT_MODEL_DIR);
  return 2;
}

std::string ModelDir() {
  const char* env = std::getenv("FACEMASK_MODEL_DIR");
  return env && *env ? env : FM_DEFAULT_MODEL_DIR;
}

constexpr const char* kImageExtensions[] = {".jpg", ".jpeg", ".png", ".bmp", ".gif",
                                            ".pnm", ".ppm",  ".pgm", ".tga"};

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

bool IsImageName(const fs::path& p) {
  const std::string ext = Lower(p.extension().string());
  for (const char* e : kImageExtensions)
    if (ext == e) return true;
  return false;
}

// One image named on the command line (or found in a directory named there): the file, or why
// there is none; with --annotate, where its annotated copy goes.
struct Input {
  std::string file, error, annotated;
};

// A directory's image files (recursively, sorted), or an input that says why there are none.
void ExpandDirectory(const std::string& dir, std::vector<Input>* inputs) {
  std::error_code ec;
  std::vector<std::string> found;
  for (auto it =
           fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file(ec) && IsImageName(it->path())) found.push_back(it->path().string());
  std::sort(found.begin(), found.end());
  for (std::string& f : found) inputs->push_back({std::move(f), "", ""});
  if (!found.empty()) return;
  std::string kinds;
  for (const char* e : kImageExtensions) kinds += std::string(kinds.empty() ? "" : " ") + e;
  inputs->push_back({dir,
                     ec ? "cannot list this directory: " + ec.message()
                        : "no images in this directory (" + kinds + ")",
                     ""});
}

// Expands directory arguments into image files; files are kept as given. A path that does not
// exist and a directory without images are inputs with an error (reported, the batch goes on).
std::vector<Input> ExpandInputs(const std::vector<std::string>& args) {
  std::vector<Input> inputs;
  for (const std::string& a : args) {
    std::error_code ec;
    const fs::file_status st = fs::status(a, ec);
    if (fs::is_directory(st))
      ExpandDirectory(a, &inputs);
    else if (fs::exists(st))
      inputs.push_back({a, "", ""});
    else
      inputs.push_back(
          {a, st.type() == fs::file_type::not_found ? "no such file or directory" : ec.message(),
           ""});
  }
  return inputs;
}

// The files of this run, to check that no output lands on one of them. Existing files compare by
// device and inode (what fs::equivalent compares), which catches other spellings of a path,
// symbolic and hard links and case-insensitive file systems, at one look-up per check; paths that
// stat cannot see compare by fs::weakly_canonical.
class InputFiles {
 public:
  explicit InputFiles(const std::vector<Input>& inputs) {
    for (const Input& in : inputs) {
      if (!in.error.empty()) continue;
      Key k;
      if (KeyOf(in.file, &k))
        keys_.insert(k);
      else
        paths_.insert(Canonical(in.file));
    }
  }
  bool Has(const std::string& path) const {
    Key k;
    return KeyOf(path, &k) ? keys_.count(k) > 0 : paths_.count(Canonical(path)) > 0;
  }

 private:
  using Key = std::pair<uint64_t, uint64_t>;  // st_dev, st_ino
  static bool KeyOf(const std::string& path, Key* key) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return false;
    *key = {uint64_t(st.st_dev), uint64_t(st.st_ino)};
    return true;
  }
  static std::string Canonical(const std::string& path) {
    std::error_code ec;
    const fs::path p = fs::weakly_canonical(path, ec);
    return ec ? path : p.string();
  }
  std::set<Key> keys_;
  std::set<std::string> paths_;
};

// Names each image's annotated copy DIR/STEM.annotated.jpg, or STEM.annotated-N.jpg (N = 2, 3,
// ...) when that name or its temporary is one of the inputs or another image's output (names
// compared ignoring case, as some file systems do). Decided before any thread starts, so each
// output has one writer; every rename is said on stderr.
void PlanAnnotated(const std::string& dir, std::vector<Input>* inputs) {
  const InputFiles files(*inputs);
  std::set<std::string> taken;
  for (Input& in : *inputs) {
    if (!in.error.empty()) continue;
    const std::string stem = fs::path(in.file).stem().string();
    std::string why;
    for (int n = 1; in.annotated.empty(); ++n) {
      const std::string name =
          stem + ".annotated" + (n > 1 ? "-" + std::to_string(n) : "") + ".jpg";
      const std::string path = (fs::path(dir) / name).string();
      const char* clash = !taken.insert(Lower(name)).second ? " is another image's output"
                          : files.Has(path) || files.Has(fm::TempPathFor(path))
                              ? " would be one of the inputs"
                              : nullptr;
      if (!clash) in.annotated = path;
      if (clash && why.empty()) why = name + clash;
    }
    if (!why.empty()) Say(in.file + ": annotated as " + in.annotated + " (" + why + ")");
  }
}

struct DetectArgs {
  bool json = false, no_classifier = false;
  bool int8 = false;  // --precision int8: the default models' int8-weight files (NAME-int8.fmm)
  std::string annotate, detector_path, classifier_path;
  fm::PipelineOptions options;
  std::vector<std::string> inputs;
};

// Returns -1 when the arguments are fine, else the exit status (after the usage message).
int ParseDetectArgs(int argc, char** argv, DetectArgs* d) {
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json") {
      d->json = true;
    } else if (a == "--no-classifier") {
      d->no_classifier = true;
    } else if (a == "--small-faces") {
      d->options.min_tile = 0.5f;  // tiles magnified 2x: more faces under ~14 px, ~2x the time
    } else if (a == "--annotate" || a == "--detector" || a == "--classifier" ||
               a == "--min-score" || a == "--threads" || a == "--min-tile" || a == "--precision") {
      if (i + 1 >= argc) return Usage((a + " needs a value").c_str());
      const char* v = argv[++i];
      if (a == "--annotate") d->annotate = v;
      if (a == "--detector") d->detector_path = v;
      if (a == "--classifier") d->classifier_path = v;
      if (a == "--precision") {
        if (std::strcmp(v, "float") && std::strcmp(v, "int8"))
          return Usage("--precision must be float or int8");
        d->int8 = std::strcmp(v, "int8") == 0;
      }
      if (a == "--min-score") {
        char* end = nullptr;
        d->options.min_score = std::strtof(v, &end);
        if (*end || !(d->options.min_score >= 0.f && d->options.min_score <= 1.f))
          return Usage("--min-score must be a number in 0..1");
      }
      if (a == "--min-tile") {
        char* end = nullptr;
        d->options.min_tile = std::strtof(v, &end);
        if (*end || !(d->options.min_tile >= 0.5f && d->options.min_tile <= 8.f))
          return Usage("--min-tile must be a number in 0.5..8 (detector inputs)");
      }
      if (a == "--threads") {
        d->options.threads = std::atoi(v);
        if (d->options.threads < 1 || d->options.threads > 64)
          return Usage("--threads must be 1..64");
      }
    } else if (a.size() > 1 && a[0] == '-') {
      return Usage(("unknown option " + a).c_str());
    } else {
      d->inputs.push_back(a);
    }
  }
  return d->inputs.empty() ? Usage("no images given") : -1;
}

// Reads the models (the default ones where none is given); any failure, running out of memory
// included, is an error naming the file.
Status LoadDetectModels(DetectArgs* d, fm::PipelineModels* m) {
  const std::string suffix = d->int8 ? "-int8.fmm" : ".fmm";
  if (d->detector_path.empty()) {
    // The detector trained for masked faces (model/README.md) when it is there, else the
    // converted BlazeFace it started from.
    d->detector_path = ModelDir() + "/detector" + suffix;
    const std::string fallback = ModelDir() + "/blazeface-full" + suffix;
    if (!fs::exists(d->detector_path) && fs::exists(fallback)) d->detector_path = fallback;
  }
  if (d->classifier_path.empty() && !d->no_classifier) {
    const std::string dflt = ModelDir() + "/classifier" + suffix;
    if (fs::exists(dflt)) {
      d->classifier_path = dflt;
    } else if (d->int8 && fs::exists(ModelDir() + "/classifier.fmm")) {
      // Asked for int8: running without a classifier instead would be a silent surprise.
      return fm::Errorf("--precision int8: ", Printable(dflt),
                        " is missing (make it with facemask quantize, or use --no-classifier)");
    }
  }
  fm::ModelSource detector, classifier;
  detector.path = d->detector_path;
  classifier.path = d->classifier_path;
  return Guarded("", [&] { return fm::ReadPipelineModels(detector, classifier, m); });
}

// The text of one image's result, printed in input order even when several threads work.
struct Output {
  std::string out, err;
  bool failed = false;
};

Output ErrorOutput(bool json, const std::string& file, const std::string& message) {
  Output o;
  o.failed = true;
  if (json)
    o.out = fm::ErrorResultJson(file, message) + "\n";
  else
    o.err = Printable(file) + ": error: " + Printable(message) + "\n";
  return o;
}

std::string FacesText(const std::string& file, const std::vector<fm::Face>& faces,
                      const std::vector<std::string>& labels, double ms) {
  char line[256];
  std::snprintf(line, sizeof line, ": %zu face%s (%.1f ms)\n", faces.size(),
                faces.size() == 1 ? "" : "s", ms);
  std::string out = Printable(file) + line;
  for (const fm::Face& f : faces) {
    std::snprintf(line, sizeof line, "  [%.0f, %.0f, %.0f, %.0f] score %.2f", double(f.det.x0),
                  double(f.det.y0), double(f.det.x1), double(f.det.y1), double(f.det.score));
    out += line;
    if (f.label >= 0) {
      std::snprintf(line, sizeof line, " %.0f%%", double(f.probs[size_t(f.label)]) * 100.0);
      out += "  " + Printable(labels[size_t(f.label)]) + line;
      if (!f.confident) out += " (unsure)";
    }
    out += "\n";
  }
  return out;
}

// One image: decode, detect, classify, annotate.
Output ProcessImage(const DetectArgs& d, fm::Pipeline& pl, const Input& in, fm::Image& image,
                    std::vector<fm::Face>& faces) {
  if (!in.error.empty()) return ErrorOutput(d.json, in.file, in.error);
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  Status st = Guarded("", [&] {
    FM_RETURN_IF_ERROR(fm::DecodeImageFile(in.file, &image));
    return pl.Run(image, &faces);
  });
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  if (!st.ok()) return ErrorOutput(d.json, in.file, st.message());
  Output o;
  if (!in.annotated.empty()) {
    st = Guarded(in.annotated, [&] {
      fm::AnnotateFaces(&image, faces, pl.labels());
      return fm::WriteJpeg(image, in.annotated);
    });
    if (!st.ok()) o = ErrorOutput(false, in.file, st.message());  // on stderr, also with --json
  }
  if (!d.json) {
    o.out = FacesText(in.file, faces, pl.labels(), ms);
    return o;
  }
  fm::JsonMembers extra;
  extra.file = in.file;
  extra.ms = ms;
  o.out = fm::FacesResultJson(image.width, image.height, faces, pl.labels(), nullptr, extra) + "\n";
  return o;
}

void Print(const Output& o) {
  std::fputs(o.err.c_str(), stderr);
  std::fputs(o.out.c_str(), stdout);
  std::fflush(stdout);
}

// Runs every input through `pipelines` (one thread each when there are several), printing in
// input order; returns the number of failed inputs.
int RunInputs(const DetectArgs& d, const std::vector<Input>& inputs,
              std::vector<std::unique_ptr<fm::Pipeline>>& pipelines) {
  int failures = 0;
  auto print = [&](const Output& o) {
    failures += o.failed;
    Print(o);
  };
  if (pipelines.size() <= 1) {
    std::vector<fm::Face> faces;
    fm::Image image;
    for (const Input& in : inputs) print(ProcessImage(d, *pipelines[0], in, image, faces));
    return failures;
  }
  std::vector<Output> outputs(inputs.size());
  std::vector<char> done(inputs.size(), 0);
  std::atomic<size_t> next{0};
  std::mutex mutex;
  std::condition_variable ready;
  std::vector<std::thread> threads;
  for (size_t w = 0; w < pipelines.size(); ++w)
    threads.emplace_back([&, w] {
      std::vector<fm::Face> faces;
      fm::Image image;
      for (size_t i = next++; i < inputs.size(); i = next++) {
        Output o = ProcessImage(d, *pipelines[w], inputs[i], image, faces);
        std::lock_guard<std::mutex> lock(mutex);
        outputs[i] = std::move(o);
        done[i] = 1;
        ready.notify_one();
      }
    });
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::unique_lock<std::mutex> lock(mutex);
    ready.wait(lock, [&] { return done[i] != 0; });
    const Output o = std::move(outputs[i]);
    lock.unlock();
    print(o);
  }
  for (std::thread& t : threads) t.join();
  return failures;
}

int Detect(int argc, char** argv) {
  DetectArgs d;
  const int usage = ParseDetectArgs(argc, argv, &d);
  if (usage >= 0) return usage;
  std::vector<Input> inputs = ExpandInputs(d.inputs);
  // Several images and threads: each thread runs its own single-threaded pipeline on whole images.
  // (XNNPACK's threads on these small models mostly wait for each other: on the scenes 1 thread
  // does 38 photos/s, 2 XNNPACK threads did 18, 2 pipelines do 69; README "Numbers".) One image:
  // the threads share its inferences.
  const size_t workers = std::max<size_t>(1, std::min(size_t(d.options.threads), inputs.size()));
  if (workers > 1) d.options.threads = 1;
  fm::PipelineModels m;
  Status s = LoadDetectModels(&d, &m);
  if (!s.ok()) return Fail(2, s.message());
  std::vector<std::unique_ptr<fm::Pipeline>> pipelines(workers);
  for (size_t w = 0; w < workers && s.ok(); ++w)
    s = Guarded("pipeline", [&] {
      return fm::Pipeline::Create(m.detector, m.classifier, d.options, &pipelines[w]);
    });
  if (!s.ok())  // name the files behind "detector: ..." / "classifier: ..."
    return Fail(2, s.message() + " (detector " + d.detector_path +
                       (d.classifier_path.empty() ? "" : ", classifier " + d.classifier_path) +
                       ")");
  if (!d.annotate.empty()) {
    std::error_code ec;
    fs::create_directories(d.annotate, ec);
    if (ec) return Fail(2, "cannot create '" + d.annotate + "': " + ec.message());
    PlanAnnotated(d.annotate, &inputs);
  }
  return RunInputs(d, inputs, pipelines) ? 1 : 0;
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
  Status s = Guarded(input, [&] { return fm::ImportModel(input, options, &graph, &format); });
  // Through a temporary file, so a failed run never leaves a half-written OUTPUT.
  if (s.ok())
    s = fm::convert_util::WriteAtomically(output, [&](const std::string& tmp) {
      return Guarded(output, [&] { return fm::WriteModelFile(graph, tmp); });
    });
  if (!s.ok()) return Fail(2, s.message());
  const bool features = graph.metadata["kind"] == "features";
  std::printf("%s: %s model, input %s, %s %s, %zu nodes\n", Printable(output).c_str(),
              fm::ModelFormatName(format),
              fm::ShapeToString(graph.ShapeOf(graph.inputs[0])).c_str(),
              features ? "features" : "labels",
              features ? fm::ShapeToString(graph.ShapeOf(graph.outputs[0])).c_str()
                       : Printable(graph.metadata["labels"]).c_str(),
              graph.nodes.size());
  return 0;
}

// One image through a whole-image classifier.
Output ClassifyImage(bool json, fm::WholeImageClassifier& classifier, const Input& in,
                     fm::Image& image, std::vector<float>& probs) {
  if (!in.error.empty()) return ErrorOutput(json, in.file, in.error);
  const Status s = Guarded("", [&] {
    FM_RETURN_IF_ERROR(fm::DecodeImageFile(in.file, &image));
    return classifier.Run(image, &probs);
  });
  if (!s.ok()) return ErrorOutput(json, in.file, s.message());
  const auto& labels = classifier.labels();
  const size_t best = fm::BestLabel(probs.data(), probs.size());
  Output o;
  char num[32];
  if (!json) {
    std::snprintf(num, sizeof num, " %.1f%%\n", double(probs[best]) * 100.0);
    o.out = Printable(in.file) + ": " + Printable(labels[best]) + num;
    return o;
  }
  fm::JsonMembers extra;
  extra.file = in.file;
  o.out = fm::ImageLabelJson(image.width, image.height, labels, probs, extra) + "\n";
  return o;
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
  const Status s = Guarded(model, [&] {
    FM_RETURN_IF_ERROR(fm::ReadModelFile(model, graph.get()));
    return classifier.Load(graph, threads).Prefix(model + ": ");
  });
  if (!s.ok()) return Fail(2, s.message());
  int failures = 0;
  fm::Image image;
  std::vector<float> probs;
  for (const Input& in : ExpandInputs(inputs)) {
    const Output o = ClassifyImage(json, classifier, in, image, probs);
    failures += o.failed;
    Print(o);
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
  const Status s = Guarded(model, [&] {
    FM_RETURN_IF_ERROR(fm::ReadModelFile(model, &graph));
    if (!tfjs.empty()) FM_RETURN_IF_ERROR(fm::ExportTfjsToDir(graph, tfjs).Prefix(model + ": "));
    if (!onnx.empty()) FM_RETURN_IF_ERROR(fm::ExportOnnxFile(graph, onnx).Prefix(model + ": "));
    return Status::Ok();
  });
  if (!s.ok()) return Fail(2, s.message());
  for (const std::string& out : {tfjs, onnx})
    if (!out.empty())
      std::printf("%s: %zu nodes exported\n", Printable(out).c_str(), graph.nodes.size());
  return 0;
}

// Writes MODEL.fmm with int8 weights (tools/convert/quantize.h) and says what it changed.
int Quantize(int argc, char** argv) {
  std::string model, output;
  fm::QuantizeOptions options;
  bool list = false;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--list") {
      list = true;
    } else if (a == "--output-layers") {
      options.keep_output_layers = false;
    } else if (a == "-o" || a == "--min-elements" || a == "--keep-float") {
      if (i + 1 >= argc) return Usage((a + " needs a value").c_str());
      const std::string v = argv[++i];
      if (a == "-o") {
        output = v;
      } else if (a == "--keep-float") {
        options.keep_float.push_back(v);
      } else {
        char* end = nullptr;
        const long long n = std::strtoll(v.c_str(), &end, 10);
        if (v.empty() || *end || n < 1 || n > (1ll << 26))
          return Usage("--min-elements needs a whole number in 1..67108864");
        options.min_elements = n;
      }
    } else if (a.size() > 1 && a[0] == '-') {
      return Usage(("unknown option " + a).c_str());
    } else if (model.empty()) {
      model = a;
    } else {
      return Usage("quantize takes one MODEL");
    }
  }
  if (model.empty() || output.empty()) return Usage("quantize needs MODEL.fmm and -o OUTPUT.fmm");
  std::error_code ec;
  if (fs::equivalent(model, output, ec))
    return Usage("quantize: OUTPUT is MODEL; write the int8 model to another file");
  fm::Graph graph;
  std::vector<fm::QuantizedTensor> report;
  std::vector<uint8_t> before, after;
  Status s = Guarded(model, [&] {
    FM_RETURN_IF_ERROR(fm::ReadModelFile(model, &graph));
    FM_RETURN_IF_ERROR(fm::WriteModel(graph, &before));
    FM_RETURN_IF_ERROR(fm::QuantizeWeights(&graph, options, &report).Prefix(model + ": "));
    return fm::WriteModel(graph, &after);
  });
  // Through a temporary file, so a failed run never leaves a half-written OUTPUT.
  if (s.ok())
    s = fm::convert_util::WriteAtomically(output, [&](const std::string& tmp) {
      return Guarded(output, [&] { return fm::WriteModelFile(graph, tmp); });
    });
  if (!s.ok()) return Fail(2, s.message());
  int64_t elements = 0;
  float worst = 0.f;  // largest error relative to its tensor's largest weight
  for (const fm::QuantizedTensor& q : report) {
    elements += q.elements;
    const float relative = q.max_abs_weight > 0.f ? q.max_abs_error / q.max_abs_weight : 0.f;
    worst = std::max(worst, relative);
    if (list)
      std::printf("  %s: %lld values, axis %d, largest weight %.4g, largest rounding error %.4g\n",
                  Printable(q.name).c_str(), static_cast<long long>(q.elements), q.axis,
                  double(q.max_abs_weight), double(q.max_abs_error));
  }
  std::printf(
      "%s: %zu weight tensors (%lld values) as int8, %zu -> %zu bytes (%.1f%%); largest "
      "rounding error %.4f of a tensor's largest weight\n",
      Printable(output).c_str(), report.size(), static_cast<long long>(elements), before.size(),
      after.size(), 100.0 * double(after.size()) / double(before.size()), double(worst));
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
  if (command == "quantize") return Quantize(argc - 2, argv + 2);
  if (command == "--help" || command == "-h" || command == "help") {
    Usage();
    return 0;
  }
  return Usage(("unknown command '" + command + "'").c_str());
}
