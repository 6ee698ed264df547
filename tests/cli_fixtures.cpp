// cli_fixtures.cpp - writes the hostile models tests/test_cli.sh runs the CLI with. Usage:
// fm_cli_fixtures MODEL_DIR OUT_DIR; it writes into OUT_DIR
// - bomb.fmm: a detector whose anchor_strides ("1,2,1,2,...") ask for ~2.7e9 anchors;
// - labels.fmm: MODEL_DIR/classifier.fmm with labels holding UTF-8, ESC, BEL and DEL bytes;
// - unsure.fmm / sure.fmm: MODEL_DIR/classifier.fmm with unsure_below 1 (every label a guess) and
//   0 (none);
// - huge.fmm: a 2^25-element zero constant stored sparse, an 8 MB file that needs 128 MB to read
//   (for a memory limit below that);
// - decoded-bomb.fmm: three of those, 384 MiB decoded, refused by the 256 MiB budget (the page's
//   "Use your own model" e2e test).
#include <cstdio>
#include <string>

#include "model/graph_builder.h"
#include "model/model_format.h"
#include "test_models.h"

namespace {

fm::Status WriteAll(const std::string& models, const std::string& out) {
  fm::Graph g;
  FM_RETURN_IF_ERROR(fm::test::BuildTinyDetector(1024, 32, &g));
  std::string bomb = "1,2";
  while (bomb.size() + 4 <= 4096) bomb += ",1,2";
  g.metadata["anchor_strides"] = bomb;
  g.metadata["anchor_interpolated_scale_aspect_ratio"] = "1";
  FM_RETURN_IF_ERROR(fm::WriteModelFile(g, out + "/bomb.fmm"));
  FM_RETURN_IF_ERROR(fm::ReadModelFile(models + "/classifier.fmm", &g));
  g.metadata["unsure_below"] = "1";
  FM_RETURN_IF_ERROR(fm::WriteModelFile(g, out + "/unsure.fmm"));
  g.metadata["unsure_below"] = "0";
  FM_RETURN_IF_ERROR(fm::WriteModelFile(g, out + "/sure.fmm"));
  g.metadata["labels"] = "m\xc3\xa1scara,\x1b[31mred\x07,ok\x7f";
  FM_RETURN_IF_ERROR(fm::WriteModelFile(g, out + "/labels.fmm"));
  fm::GraphBuilder b;
  const fm::Shape shape{1, 8192, 4096, 1};
  const int32_t x = b.Input("image", shape);
  const int32_t zeros = b.Constant("zeros", shape, std::vector<float>(size_t(1) << 25), true);
  FM_RETURN_IF_ERROR(b.Finish({b.Op("add", "sum", {x, zeros})}, &g));
  FM_RETURN_IF_ERROR(fm::WriteModelFile(g, out + "/huge.fmm"));
  // Three such constants: 384 MiB decoded from a 12 MB file, over the 256 MiB budget.
  fm::GraphBuilder b3;
  int32_t sum = b3.Input("image", shape);
  for (int i = 0; i < 3; ++i) {
    const int32_t c =
        b3.Constant("zeros" + std::to_string(i), shape, std::vector<float>(size_t(1) << 25), true);
    sum = b3.Op("add", "sum" + std::to_string(i), {sum, c});
  }
  FM_RETURN_IF_ERROR(b3.Finish({sum}, &g));
  g.metadata["kind"] = "classifier";
  g.metadata["labels"] = "a";
  return fm::WriteModelFile(g, out + "/decoded-bomb.fmm");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: fm_cli_fixtures MODEL_DIR OUT_DIR\n");
    return 2;
  }
  const fm::Status s = WriteAll(argv[1], argv[2]);
  if (!s.ok()) std::fprintf(stderr, "fm_cli_fixtures: %s\n", s.message().c_str());
  return s.ok() ? 0 : 1;
}
