// fm_run_raw.cpp - runs a model once and writes its raw outputs, for comparisons with other
// runtimes (tests/parity):
//   fm_run_raw MODEL.fmm --input IN.f32 --out OUT.f32 [--backend xnnpack|xnnpack-sparse|reference]
//   fm_run_raw MODEL.fmm --image PHOTO --write-input IN.f32
// --input reads the input tensor as little-endian float32 (exactly the input's element count);
// the outputs are written one after another as float32. --image letterboxes a photo into the
// input tensor with the model's normalisation metadata (padding 0) and writes that tensor.
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "model/model_format.h"
#include "runtime/runtime.h"
#include "vision/image.h"
#include "vision/pipeline.h"

namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "fm_run_raw: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model, input, out, image, write_input, backend = "xnnpack";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const std::string v = i + 1 < argc ? argv[i + 1] : "";
    if (a == "--input")
      input = v, ++i;
    else if (a == "--out")
      out = v, ++i;
    else if (a == "--image")
      image = v, ++i;
    else if (a == "--write-input")
      write_input = v, ++i;
    else if (a == "--backend")
      backend = v, ++i;
    else if (model.empty() && !a.empty() && a[0] != '-')
      model = a;
    else
      return Fail("unknown argument '" + a + "'");
  }
  if (model.empty() || (input.empty() == image.empty()) ||
      (backend != "xnnpack" && backend != "xnnpack-sparse" && backend != "reference"))
    return Fail(
        "usage: fm_run_raw MODEL.fmm (--input IN.f32 --out OUT.f32 | --image PHOTO --write-input "
        "IN.f32) [--backend xnnpack|xnnpack-sparse|reference]");
  auto graph = std::make_shared<fm::Graph>();
  fm::Status s = fm::ReadModelFile(model, graph.get());
  if (!s.ok()) return Fail(s.message());
  if (graph->inputs.size() != 1) return Fail("the model must have one input");
  const fm::Shape shape = graph->ShapeOf(graph->inputs[0]);
  const size_t count = size_t(fm::NumElements(shape));

  if (!image.empty()) {
    if (write_input.empty()) return Fail("--image needs --write-input");
    if (shape.size() != 4 || shape[0] != 1 || shape[3] != 3) return Fail("input is not [1,H,W,3]");
    fm::Image img;
    s = fm::DecodeImageFile(image, &img);
    fm::Normalization norm;
    if (s.ok()) s = fm::ReadNormalization(*graph, &norm);
    if (!s.ok()) return Fail(s.message());
    const int h = int(shape[1]), w = int(shape[2]);
    const fm::Letterbox lb = fm::ComputeLetterbox(img.width, img.height, w, h);
    std::vector<float> tensor(count);
    fm::WarpToTensor(img, lb.map, w, h, norm, tensor.data());
    std::ofstream f(write_input, std::ios::binary);
    f.write(reinterpret_cast<const char*>(tensor.data()), std::streamsize(count * sizeof(float)));
    return f ? 0 : Fail("cannot write '" + write_input + "'");
  }

  std::ifstream in(input, std::ios::binary | std::ios::ate);
  if (!in) return Fail("cannot open '" + input + "'");
  if (size_t(in.tellg()) != count * sizeof(float))
    return Fail("'" + input + "' must hold " + std::to_string(count) + " float32 values for " +
                fm::ShapeToString(shape));
  in.seekg(0);
  fm::RuntimeOptions options;
  options.backend = backend == "reference" ? fm::Backend::kReference : fm::Backend::kXnnpack;
  options.sparse_hint = backend == "xnnpack-sparse";
  std::unique_ptr<fm::Runtime> rt;
  s = fm::Runtime::Create(graph, options, &rt);
  if (!s.ok()) return Fail(s.message());
  in.read(reinterpret_cast<char*>(rt->input(0)), std::streamsize(count * sizeof(float)));
  s = rt->Run();
  if (!s.ok()) return Fail(s.message());
  if (out.empty()) return Fail("--input needs --out");
  std::ofstream f(out, std::ios::binary);
  for (size_t o = 0; o < rt->num_outputs(); ++o)
    f.write(reinterpret_cast<const char*>(rt->output(o)),
            std::streamsize(size_t(fm::NumElements(rt->output_shape(o))) * sizeof(float)));
  return f ? 0 : Fail("cannot write '" + out + "'");
}
