// test_models.h - small graphs built in code for the tests: a CNN that touches most ops, with
// weights from the portable PRNG so native and wasm builds construct identical models; a
// detector-shaped graph for the pipeline's model checks.
#pragma once

#include <cmath>

#include "model/graph_builder.h"
#include "rng.h"

namespace fm::test {

inline Status BuildSmallCnn(uint64_t seed, Graph* out, bool fp16 = false) {
  Rng rng(seed);
  GraphBuilder b;
  auto W = [&](const std::string& name, const Shape& s, float scale) {
    return b.Constant(name, s, rng.Data(NumElements(s), -scale, scale), fp16);
  };
  const int32_t x = b.Input("image", {1, 33, 29, 3});
  int32_t t =
      b.Op("conv2d", "conv1", {x, W("conv1/w", {8, 3, 3, 3}, 0.4f), W("conv1/b", {8}, 0.1f)},
           {{"stride", Attr::Ints({2, 2})},
            {"same", Attr::Ints({1})},
            {"clamp", Attr::Floats({0.f, 6.f})}});
  t = b.Op("depthwise_conv2d", "dw1", {t, W("dw1/w", {1, 3, 3, 16}, 0.4f), W("dw1/b", {16}, 0.1f)},
           {{"padding", Attr::Ints({1, 1, 1, 1})}});
  t = b.Op("prelu", "prelu1", {t, W("prelu1/slope", {16}, 0.3f)});
  const int32_t branch = b.Op("conv2d", "conv2", {t, W("conv2/w", {16, 1, 1, 16}, 0.3f)});
  t = b.Op("add", "add1", {t, branch}, {{"clamp", Attr::Floats({0.f, INFINITY})}});
  t = b.Op(
      "max_pool2d", "pool1", {t},
      {{"kernel", Attr::Ints({2, 2})}, {"stride", Attr::Ints({2, 2})}, {"same", Attr::Ints({1})}});
  t = b.Op("pad", "pad1", {t}, {{"pads", Attr::Ints({0, 1, 0, 0, 0, 1, 1, 4})}});
  t = b.Op("avg_pool2d", "pool2", {t},
           {{"kernel", Attr::Ints({3, 3})}, {"padding", Attr::Ints({1, 1, 1, 1})}});
  const int32_t up = b.Op("resize_bilinear", "up", {t}, {{"size", Attr::Ints({22, 18})}});
  const int32_t d2s = b.Op("depth_to_space", "d2s",
                           {b.Op("conv2d", "conv3", {t, W("conv3/w", {16, 1, 1, 20}, 0.3f)})},
                           {{"block", Attr::Ints({2})}});
  t = b.Op("concatenate", "cat", {up, d2s}, {{"axis", Attr::Ints({-1})}});
  t = b.Op("leaky_relu", "lrelu", {t}, {{"alpha", Attr::Floats({0.2f})}});
  t = b.Op("multiply", "gate", {t, b.Op("sigmoid", "sig", {t})});
  t = b.Op("global_avg_pool", "gap", {t});
  t = b.Op("reshape", "flat", {t}, {{"shape", Attr::Ints({1, 24})}});
  t = b.Op("fully_connected", "fc1", {t, W("fc1/w", {10, 24}, 0.5f), W("fc1/b", {10}, 0.1f)});
  const int32_t logits = b.Op("tanh", "tanh", {t});
  const int32_t probs = b.Op("softmax", "probs", {logits});
  b.Metadata("kind", "test");
  b.Metadata("labels", "a,b,c,d,e,f,g,h,i,j");
  return b.Finish({probs, logits}, out);
}

// A graph shaped like a detector: input [1, size, size, 3] -> max pool by `stride` -> 1x1
// convolution to 17 channels -> output [1, (size / stride)^2, 17]. Metadata anchor_strides =
// stride without interpolated anchors, so Pipeline::Create accepts it.
inline Status BuildTinyDetector(int size, int stride, Graph* out) {
  GraphBuilder b;
  const int cells = size / stride;
  int32_t t = b.Input("image", {1, size, size, 3});
  t = b.Op("max_pool2d", "pool", {t},
           {{"kernel", Attr::Ints({stride, stride})}, {"stride", Attr::Ints({stride, stride})}});
  t = b.Op("conv2d", "head",
           {t, b.Constant("head/w", {17, 1, 1, 3}, std::vector<float>(17 * 3, 0.01f))});
  t = b.Op("reshape", "rows", {t}, {{"shape", Attr::Ints({1, cells * cells, 17})}});
  b.Metadata("kind", "detector");
  b.Metadata("anchor_strides", std::to_string(stride));
  b.Metadata("anchor_interpolated_scale_aspect_ratio", "0");
  return b.Finish({t}, out);
}

}  // namespace fm::test
