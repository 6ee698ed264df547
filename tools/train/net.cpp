// net.cpp - see net.h.
#include "net.h"

#include <cmath>
#include <limits>
#include <sstream>

#include "frozen.h"
#include "model/graph_builder.h"

namespace fm::train {

void Net::Forward(const Tensor& x, bool train) {
  acts_.resize(layers.size() + 1);
  acts_[0] = x;
  for (size_t i = 0; i < layers.size(); ++i) layers[i]->Forward(acts_[i], &acts_[i + 1], train);
}

void Net::Backward(const Tensor& dlogits) {
  grad_a_ = dlogits;
  for (size_t i = layers.size(); i-- > 0;) {
    layers[i]->Backward(acts_[i], acts_[i + 1], grad_a_, &grad_b_);
    std::swap(grad_a_, grad_b_);
  }
}

std::vector<Param*> Net::Params() {
  std::vector<Param*> out;
  for (auto& l : layers)
    for (Param* p : l->Params()) out.push_back(p);
  return out;
}

int64_t Net::NumParams() {
  int64_t n = 0;
  for (Param* p : Params()) n += int64_t(p->value.size());
  return n;
}

int64_t Net::Macs() {
  Tensor x(1, in_h, in_w, in_c);
  Forward(x, false);
  int64_t macs = 0;
  for (size_t i = 0; i < layers.size(); ++i) macs += layers[i]->Macs(acts_[i]);
  return macs;
}

std::vector<std::vector<float>> Net::Snapshot() {
  std::vector<std::vector<float>> s;
  for (auto& l : layers) {
    for (Param* p : l->Params()) s.push_back(p->value);
    for (auto* b : l->Buffers()) s.push_back(*b);
  }
  return s;
}

void Net::Restore(const std::vector<std::vector<float>>& snapshot) {
  size_t i = 0;
  for (auto& l : layers) {
    for (Param* p : l->Params()) p->value = snapshot[i++];
    for (auto* b : l->Buffers()) *b = snapshot[i++];
  }
}

std::unique_ptr<Net> BuildMobile(int size, float width, int classes, float dropout, uint64_t seed) {
  Rng rng(seed);
  auto net = std::make_unique<Net>(size, size, 3);
  auto ch = [width](int c) { return std::max(8, int(std::lround(float(c) * width / 8.f)) * 8); };
  const float relu6 = 6.f;
  int c = ch(16);
  net->Add(std::make_unique<Conv2D>(3, c, 3, 2, false, &rng));
  net->Add(std::make_unique<BatchNorm>(c));
  net->Add(std::make_unique<Activation>(relu6));
  const int blocks[][2] = {{32, 1}, {64, 2}, {64, 1}, {128, 2}, {128, 1}, {256, 2}, {256, 1}};
  for (const auto& blk : blocks) {
    const int out = ch(blk[0]);
    net->Add(std::make_unique<DepthwiseConv2D>(c, 3, blk[1], false, &rng));
    net->Add(std::make_unique<BatchNorm>(c));
    net->Add(std::make_unique<Activation>(relu6));
    net->Add(std::make_unique<Conv2D>(c, out, 1, 1, false, &rng));
    net->Add(std::make_unique<BatchNorm>(out));
    net->Add(std::make_unique<Activation>(relu6));
    c = out;
  }
  net->Add(std::make_unique<GlobalAvgPool>());
  if (dropout > 0) net->Add(std::make_unique<Dropout>(dropout, rng.Next()));
  net->Add(std::make_unique<Dense>(c, classes, &rng));
  return net;
}

Status BuildFrozenHead(std::shared_ptr<const Graph> extractor, int hidden, int classes,
                       float dropout, uint64_t seed, std::unique_ptr<Net>* out) {
  if (hidden < 0 || hidden > 4096) return Errorf("hidden units ", hidden, " outside 0..4096");
  std::unique_ptr<Frozen> frozen;
  FM_RETURN_IF_ERROR(Frozen::Create(std::move(extractor), &frozen));
  Rng rng(seed);
  const int size = frozen->size;
  int c = frozen->features;
  auto net = std::make_unique<Net>(size, size, 3);
  net->Add(std::move(frozen));
  if (dropout > 0) net->Add(std::make_unique<Dropout>(dropout, rng.Next()));
  if (hidden > 0) {
    net->Add(std::make_unique<Dense>(c, hidden, &rng));
    net->Add(std::make_unique<Activation>(std::numeric_limits<float>::infinity()));
    if (dropout > 0) net->Add(std::make_unique<Dropout>(dropout, rng.Next()));
    c = hidden;
  }
  net->Add(std::make_unique<Dense>(c, classes, &rng));
  *out = std::move(net);
  return Status::Ok();
}

std::unique_ptr<Net> BuildOriginal(int size, int classes, uint64_t seed) {
  Rng rng(seed);
  auto net = std::make_unique<Net>(size, size, 3);
  const float relu = std::numeric_limits<float>::infinity();
  int c = 3, s = size;
  for (int out : {32, 64, 128}) {
    net->Add(std::make_unique<Conv2D>(c, out, 3, 1, true, &rng));
    net->Add(std::make_unique<Activation>(relu));
    net->Add(std::make_unique<Pool2D>(true, 2, 2));
    c = out;
    s = (s + 1) / 2;
  }
  net->Add(std::make_unique<Dense>(s * s * c, 128, &rng));
  net->Add(std::make_unique<Activation>(relu));
  net->Add(std::make_unique<Dropout>(0.5f, rng.Next()));
  net->Add(std::make_unique<Dense>(128, classes, &rng));
  return net;
}

namespace {

std::vector<int64_t> Pads(const Shape& in, int k, int stride) {
  const SamePad py = ComputeSame(int(in[1]), k, stride), px = ComputeSame(int(in[2]), k, stride);
  return {py.before, px.before, py.after, px.after};
}

}  // namespace

Status ExportGraph(Net& net, const ExportOptions& o, Graph* graph) {
  GraphBuilder gb;
  int32_t t = gb.Input("input", {1, net.in_h, net.in_w, net.in_c});
  const auto& L = net.layers;
  for (size_t i = 0; i < L.size(); ++i) {
    Layer* layer = L[i].get();
    const std::string name = "l" + std::to_string(i) + "_" + layer->Name();
    auto* conv = dynamic_cast<Conv2D*>(layer);
    auto* dw = dynamic_cast<DepthwiseConv2D*>(layer);
    auto* dense = dynamic_cast<Dense*>(layer);
    if (auto* frozen = dynamic_cast<Frozen*>(layer)) {
      // The pretrained graph, node by node, in front of the head.
      if (i != 0) return Errorf("export: the frozen layer must be the first layer");
      const Graph& g = *frozen->graph;
      std::vector<int32_t> map(g.tensors.size(), kNoTensor);
      map[size_t(g.inputs[0])] = t;
      for (size_t k = 0; k < g.tensors.size(); ++k) {
        const fm::Tensor& src = g.tensors[k];
        if (src.kind == TensorKind::kConstant)
          map[k] = gb.Constant("frozen/" + src.name, src.shape, src.data, src.store_fp16 || o.fp16);
      }
      for (const Node& n : g.nodes) {
        std::vector<int32_t> in;
        for (int32_t x : n.inputs) in.push_back(x == kNoTensor ? kNoTensor : map[size_t(x)]);
        map[size_t(n.output)] = gb.Op(n.op, "frozen/" + n.name, in, n.attrs);
      }
      t = map[size_t(g.outputs[0])];
      FM_RETURN_IF_ERROR(gb.status());
    } else if (conv || dw || dense) {
      // Weights as [out, ...] rows (conv, dense) or [k, k, c] (depthwise; channel fastest).
      std::vector<float> w = conv ? conv->w.value : dw ? dw->w.value : dense->w.value;
      const int outs = conv ? conv->cout : dw ? dw->c : dense->out;
      std::vector<float> bias(size_t(outs), 0.f);
      const Param& b = conv ? conv->b : dw ? dw->b : dense->b;
      if (!b.value.empty()) bias = b.value;
      size_t next = i + 1;
      if (next < L.size()) {
        if (auto* bn = dynamic_cast<BatchNorm*>(L[next].get())) {
          const size_t per = w.size() / size_t(outs);
          for (int oc = 0; oc < outs; ++oc) {
            const float s = bn->gamma.value[size_t(oc)] /
                            float(std::sqrt(double(bn->running_var[size_t(oc)]) + bn->eps));
            if (dw) {
              for (size_t j = 0; j < per; ++j) w[j * size_t(outs) + size_t(oc)] *= s;
            } else {
              for (size_t j = 0; j < per; ++j) w[size_t(oc) * per + j] *= s;
            }
            bias[size_t(oc)] =
                (bias[size_t(oc)] - bn->running_mean[size_t(oc)]) * s + bn->beta.value[size_t(oc)];
          }
          ++next;
        }
      }
      std::map<std::string, Attr> attrs;
      if (next < L.size())
        if (auto* act = dynamic_cast<Activation*>(L[next].get())) {
          attrs["clamp"] = Attr::Floats({act->lo, act->hi});
          ++next;
        }
      if (dense) {
        const Shape& s = gb.ShapeOf(t);
        if (s.size() != 2)
          t = gb.Op("reshape", name + "_flatten", {t}, {{"shape", Attr::Ints({1, dense->in})}});
        const int32_t wt = gb.Constant(name + "/weights", {dense->out, dense->in}, w, o.fp16);
        const int32_t bt = gb.Constant(name + "/bias", {dense->out}, bias, o.fp16);
        t = gb.Op("fully_connected", name, {t, wt, bt}, attrs);
      } else {
        const int k = conv ? conv->k : dw->k, stride = conv ? conv->stride : dw->stride;
        attrs["stride"] = Attr::Ints({stride, stride});
        attrs["padding"] = Attr::Ints(Pads(gb.ShapeOf(t), k, stride));
        const Shape ws = conv ? Shape{conv->cout, k, k, conv->cin} : Shape{1, k, k, dw->c};
        const int32_t wt = gb.Constant(name + "/weights", ws, w, o.fp16);
        const int32_t bt = gb.Constant(name + "/bias", {outs}, bias, o.fp16);
        t = gb.Op(conv ? "conv2d" : "depthwise_conv2d", name, {t, wt, bt}, attrs);
      }
      i = next - 1;
    } else if (dynamic_cast<BatchNorm*>(layer)) {
      return Errorf("export: batch-norm layer ", i, " does not follow a convolution or dense");
    } else if (auto* act = dynamic_cast<Activation*>(layer)) {
      t = gb.Op("clamp", name, {t}, {{"clamp", Attr::Floats({act->lo, act->hi})}});
    } else if (dynamic_cast<Dropout*>(layer)) {
      continue;
    } else if (auto* pool = dynamic_cast<Pool2D*>(layer)) {
      t = gb.Op(pool->max ? "max_pool2d" : "avg_pool2d", name, {t},
                {{"kernel", Attr::Ints({pool->k, pool->k})},
                 {"stride", Attr::Ints({pool->stride, pool->stride})},
                 {"padding", Attr::Ints(Pads(gb.ShapeOf(t), pool->k, pool->stride))}});
    } else if (dynamic_cast<GlobalAvgPool*>(layer)) {
      t = gb.Op("global_avg_pool", name, {t});
    } else {
      return Errorf("export: layer ", i, " (", layer->Name(), ") has no engine equivalent");
    }
  }
  const Shape& last = gb.ShapeOf(t);
  if (last.size() != 2)
    t = gb.Op("reshape", "logits_flat", {t}, {{"shape", Attr::Ints({1, last.back()})}});
  t = gb.Op("softmax", "probs", {t});
  std::string labels;
  for (const auto& l : o.labels) labels += (labels.empty() ? "" : ",") + l;
  auto num = [](float v) {
    std::ostringstream s;
    s.precision(9);
    s << v;
    return s.str();
  };
  gb.Metadata("kind", "classifier");
  gb.Metadata("labels", labels);
  gb.Metadata("norm_scale", num(o.norm_scale));
  std::string offsets;
  for (float v : o.norm_offset) offsets += (offsets.empty() ? "" : ",") + num(v);
  gb.Metadata("norm_offset", offsets);
  gb.Metadata("channel_order", "rgb");
  gb.Metadata("crop_margin", num(o.crop_margin));
  for (const auto& kv : o.extra_metadata) gb.Metadata(kv.first, kv.second);
  return gb.Finish({t}, graph);
}

}  // namespace fm::train
