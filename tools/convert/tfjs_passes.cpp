// tfjs_passes.cpp - stage 3 of the tfjs graph-model converter (tfjs_internal.h): peephole passes
// on the IR (a zero Pad -> the convolution's padding, multiply/add by constants -> convolution
// weights and bias, Relu/Relu6 -> the producer's fused clamp), then dead-node removal and the
// emission through GraphBuilder, which re-checks every op and validates the whole graph.
#include <algorithm>
#include <set>

#include "model/graph_builder.h"
#include "tfjs_internal.h"

namespace fm::tfjs {

std::vector<int> Converter::Consumers(int value) const {
  std::vector<int> out;
  for (size_t k = 0; k < nodes_.size(); ++k)
    if (!nodes_[k].dead)
      for (int in : nodes_[k].in)
        if (in == value) {
          out.push_back(int(k));
          break;
        }
  return out;
}

// A zero Pad of height/width only, in front of a convolution with explicit padding, becomes
// that padding (XNNPACK pads with zeros inside the convolution).
void Converter::FoldPads() {
  for (IrNode& conv : nodes_) {
    if (conv.dead || (conv.op != "conv2d" && conv.op != "depthwise_conv2d") ||
        conv.attrs.count("same"))
      continue;
    const int p = V(conv.in[0]).producer;
    if (p < 0 || nodes_[size_t(p)].op != "pad" || nodes_[size_t(p)].attrs.count("value")) continue;
    const std::vector<int64_t>& pads = nodes_[size_t(p)].attrs.at("pads").ints;
    if (pads.size() != 8 || pads[0] || pads[3] || pads[4] || pads[7]) continue;
    std::vector<int64_t> cp = conv.attrs.count("padding") ? conv.attrs.at("padding").ints
                                                          : std::vector<int64_t>{0, 0, 0, 0};
    cp[0] += pads[1];  // top
    cp[1] += pads[2];  // left
    cp[2] += pads[5];  // bottom
    cp[3] += pads[6];  // right
    if (*std::max_element(cp.begin(), cp.end()) > 1024) continue;
    conv.attrs["padding"] = Attr::Ints(cp);
    conv.in[0] = nodes_[size_t(p)].in[0];
  }
}

// multiply/add by a per-channel (or scalar) constant right after a conv, depthwise conv or fully
// connected layer with no other consumer becomes part of its weights and bias.
void Converter::FoldAffine() {
  for (IrNode& m : nodes_) {
    if (m.dead || (m.op != "multiply" && m.op != "add")) continue;
    int act = -1, cst = -1;
    for (int k = 0; k < 2; ++k)
      if (V(m.in[size_t(k)]).is_const)
        cst = m.in[size_t(k)];
      else
        act = m.in[size_t(k)];
    if (act < 0 || cst < 0) continue;
    const int p = V(act).producer;
    if (p < 0) continue;
    IrNode& conv = nodes_[size_t(p)];
    if (conv.dead || conv.attrs.count("clamp") ||
        (conv.op != "conv2d" && conv.op != "depthwise_conv2d" && conv.op != "fully_connected"))
      continue;
    if (Consumers(act).size() != 1 || IsOutput(output_uses_, act)) continue;
    // Copies: Const() below may reallocate values_.
    const Shape cshape = V(cst).shape;
    const std::vector<float> cf = V(cst).f;
    const bool c16 = V(cst).fp16;
    const Shape os = V(act).shape;
    const int64_t C = os.back();
    // The constant must broadcast along the last (channel) axis only, without growing the output.
    bool per_channel = cshape.size() <= os.size();
    for (size_t k = 0; per_channel && k < cshape.size(); ++k)
      per_channel = k + 1 == cshape.size() ? (cshape[k] == 1 || cshape[k] == C) : cshape[k] == 1;
    if (!per_channel) continue;
    auto at = [&](int64_t ch) { return cf.size() == 1 ? cf[0] : cf[size_t(ch)]; };
    if (conv.in.size() < 3) conv.in.push_back(-1);
    if (conv.in[2] < 0 && m.op == "add")
      conv.in[2] = Const(conv.name + "/bias", {C}, std::vector<float>(size_t(C), 0.f), true);
    if (m.op == "multiply") {
      Value& w = values_[size_t(conv.in[1])];
      if (conv.op == "depthwise_conv2d") {
        for (size_t e = 0; e < w.f.size(); ++e) w.f[e] *= at(int64_t(e % size_t(C)));
      } else {
        const size_t per = w.f.size() / size_t(C);
        for (size_t e = 0; e < w.f.size(); ++e) w.f[e] *= at(int64_t(e / per));
      }
      w.fp16 = w.fp16 && c16;
    }
    if (conv.in[2] >= 0) {
      Value& b = values_[size_t(conv.in[2])];
      for (int64_t ch = 0; ch < C; ++ch)
        b.f[size_t(ch)] = m.op == "multiply" ? b.f[size_t(ch)] * at(ch) : b.f[size_t(ch)] + at(ch);
      b.fp16 = b.fp16 && c16;
    }
    if (conv.in[2] < 0) conv.in.pop_back();
    conv.out = m.out;
    values_[size_t(m.out)].producer = p;
    m.dead = true;
  }
}

// clamp (Relu, Relu6) after an op with a fused clamp, when nothing else reads the op's output.
void Converter::FuseClamps() {
  static const std::set<std::string> kFusable = {"conv2d",    "depthwise_conv2d", "fully_connected",
                                                 "add",       "multiply",         "max_pool2d",
                                                 "avg_pool2d"};
  for (IrNode& c : nodes_) {
    if (c.dead || c.op != "clamp") continue;
    const int p = V(c.in[0]).producer;
    if (p < 0 || !kFusable.count(nodes_[size_t(p)].op)) continue;
    if (Consumers(c.in[0]).size() != 1 || IsOutput(output_uses_, c.in[0])) continue;
    IrNode& prod = nodes_[size_t(p)];
    std::vector<float> range = c.attrs.at("clamp").floats;
    if (prod.attrs.count("clamp")) {
      const std::vector<float>& old = prod.attrs.at("clamp").floats;
      range = {std::max(range[0], old[0]), std::min(range[1], old[1])};
      if (!(range[0] < range[1])) continue;
    }
    prod.attrs["clamp"] = Attr::Floats(range);
    prod.out = c.out;
    values_[size_t(c.out)].producer = p;
    c.dead = true;
  }
}

void Converter::Emit(const std::vector<int>& outputs, Graph* out) {
  // Live nodes: reachable backwards from the outputs.
  std::vector<uint8_t> live(nodes_.size(), 0);
  std::vector<int> stack(outputs.begin(), outputs.end());
  while (!stack.empty()) {
    const int v = stack.back();
    stack.pop_back();
    const int p = V(v).producer;
    if (p < 0 || live[size_t(p)]) continue;
    live[size_t(p)] = 1;
    for (int in : nodes_[size_t(p)].in)
      if (in >= 0) stack.push_back(in);
  }
  GraphBuilder b;
  std::map<int, int32_t> ids;
  std::set<std::string> used;
  auto unique = [&](const std::string& full) {
    const std::string& cut = options_.strip_prefix;
    const std::string base =
        !cut.empty() && full.size() > cut.size() && full.compare(0, cut.size(), cut) == 0
            ? full.substr(cut.size())
            : full;
    std::string name = base;
    for (int k = 1; used.count(name); ++k) name = base + "_" + std::to_string(k);
    used.insert(name);
    return name;
  };
  // Output names are reserved for the tensors they name.
  std::map<int, std::string> out_names;
  for (int v : inputs_) ids[v] = b.Input(unique(V(v).name), V(v).shape);
  for (const auto& [v, name] : out_name_hint_)
    if (!used.count(name)) out_names[v] = unique(name);
  for (size_t k = 0; k < nodes_.size(); ++k) {
    if (!live[k]) continue;
    const IrNode& n = nodes_[k];
    std::vector<int32_t> in;
    for (int v : n.in) {
      if (v < 0) {
        in.push_back(kNoTensor);
        continue;
      }
      auto it = ids.find(v);
      if (it == ids.end()) {
        const Value& c = V(v);
        if (!c.is_const) Fail("internal: value '", c.name, "' used before it is computed");
        it =
            ids.emplace(v, b.Constant(unique(c.name), c.shape, c.f, c.fp16 && !options_.force_fp32))
                .first;
      }
      in.push_back(it->second);
    }
    auto named = out_names.find(n.out);
    const std::string name = named != out_names.end() ? named->second : unique(n.name);
    ids[n.out] = b.Op(n.op, name, in, n.attrs);
    if (!b.status().ok()) Fail(b.status().message());
  }
  std::vector<int32_t> outs;
  for (int v : outputs) outs.push_back(ids.at(v));
  for (const auto& [k, v] : options_.metadata) b.Metadata(k, v);
  Status s = b.Finish(outs, out);
  if (!s.ok()) Fail("the converted graph is invalid: ", s.message());
}

}  // namespace fm::tfjs
