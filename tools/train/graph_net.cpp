// graph_net.cpp - see graph_net.h. One Step per graph node; each op is a row of kOps (build from
// the node, forward, backward); a new op is one more row. Convolutions reuse the trainer's
// Conv2D / DepthwiseConv2D layers (im2col + OpenBLAS, threaded over the batch).
#include "graph_net.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace fm::train {

namespace {

struct Dims {
  int h, w, c;
};

// Batch-free dims of an activation of the graph (batch must be 1).
Status ToDims(const Shape& s, Dims* d) {
  if (s.empty() || s[0] != 1) return Errorf("shape ", ShapeToString(s), " has no batch of 1");
  if (s.size() == 4)
    *d = {int(s[1]), int(s[2]), int(s[3])};
  else if (s.size() == 3)
    *d = {1, int(s[1]), int(s[2])};
  else if (s.size() == 2)
    *d = {1, 1, int(s[1])};
  else
    return Errorf("shape ", ShapeToString(s), " has an unsupported rank");
  return Status::Ok();
}

}  // namespace

struct Step;

struct OpKind {
  const char* name;
  Status (*build)(const Graph& g, const Node& n, Step* s);
  void (*forward)(GraphNet::Impl& net, Step& s, bool train);
  // Computes the gradient of each activation input from dy and hands it to Accumulate().
  void (*backward)(GraphNet::Impl& net, Step& s, Tensor& dy);
};

struct Step {
  const OpKind* kind = nullptr;
  size_t node = 0;
  std::vector<int> in;  // activation inputs (tensor indices)
  int out = -1;
  bool clamp = false;
  float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
  std::unique_ptr<Layer> layer;  // conv2d / depthwise_conv2d
  int weight_tensor = -1, bias_tensor = -1;
  std::vector<int64_t> ints;  // op attributes: resize (mode, out_h, out_w), d2s (block), pad
  Dims out_dims{};
};

struct GraphNet::Impl {
  Graph graph;
  std::vector<Step> steps;
  std::vector<Dims> dims;  // per tensor (activations)
  std::vector<Tensor> act, grad;
  std::vector<char> has_grad;
  std::vector<Param*> params;
  std::vector<std::vector<uint8_t>> zero_masks;  // per param: 1 = kept zero
  Tensor scratch;
  bool input_grad = false;
  int n = 0;

  void Accumulate(int tensor, Tensor& d) {
    const size_t t = size_t(tensor);
    if (!input_grad && tensor == graph.inputs[0]) return;
    if (!has_grad[t]) {
      std::swap(grad[t], d);
      has_grad[t] = 1;
      return;
    }
    float* g = grad[t].data();
    const float* s = d.data();
    for (size_t i = 0; i < grad[t].Size(); ++i) g[i] += s[i];
  }
};

namespace {

using Impl = GraphNet::Impl;

void ApplyClamp(const Step& s, Tensor* y) {
  if (!s.clamp) return;
  for (float& v : y->v) v = std::min(std::max(v, s.lo), s.hi);
}

// Gradient through the clamp: zero where the output sits on a bound it was clamped to.
void ClampBackward(const Step& s, const Tensor& y, Tensor* dy) {
  if (!s.clamp) return;
  const float* yv = y.data();
  float* d = dy->data();
  for (size_t i = 0; i < dy->Size(); ++i)
    if (yv[i] <= s.lo || yv[i] >= s.hi) d[i] = 0.f;
}

Status ReadClamp(const Node& n, Step* s) {
  if (!n.Has("clamp")) return Status::Ok();
  const std::vector<float> c = n.Floats("clamp", {});
  s->clamp = true;
  s->lo = c[0];
  s->hi = c[1];
  return Status::Ok();
}

// ---- conv2d / depthwise_conv2d

Status BuildConv(const Graph& g, const Node& n, Step* s) {
  const bool depthwise = n.op == "depthwise_conv2d";
  const Shape& w = g.ShapeOf(n.inputs[1]);
  const Shape& x = g.ShapeOf(n.inputs[0]);
  if (w[1] != w[2]) return Errorf("kernel ", w[1], "x", w[2], " is not square");
  const std::vector<int64_t> stride = n.Ints("stride", {1, 1});
  const std::vector<int64_t> dilation = n.Ints("dilation", {1, 1});
  if (stride[0] != stride[1]) return Errorf("strides ", stride[0], ",", stride[1], " differ");
  if (dilation[0] != 1 || dilation[1] != 1) return Errorf("dilation is not 1");
  if (depthwise && w[3] != x[3]) return Errorf("depth multiplier is not 1");
  int pad[4] = {-1, -1, -1, -1};
  if (n.Has("padding")) {
    const std::vector<int64_t> p = n.Ints("padding", {});
    for (int i = 0; i < 4; ++i) pad[i] = int(p[size_t(i)]);
  } else if (n.Int("same", 0) != 1) {
    for (int& v : pad) v = 0;
  }
  const bool bias = n.inputs.size() > 2 && n.inputs[2] != kNoTensor;
  Rng rng(1);
  Param *wp, *bp;
  if (depthwise) {
    auto l = std::make_unique<DepthwiseConv2D>(int(w[3]), int(w[1]), int(stride[0]), bias, &rng);
    std::copy(pad, pad + 4, l->pad);
    wp = &l->w, bp = &l->b;
    s->layer = std::move(l);
  } else {
    auto l = std::make_unique<Conv2D>(int(w[3]), int(w[0]), int(w[1]), int(stride[0]), bias, &rng);
    std::copy(pad, pad + 4, l->pad);
    wp = &l->w, bp = &l->b;
    s->layer = std::move(l);
  }
  wp->name = n.name + "/weights";
  wp->value = g.tensors[size_t(n.inputs[1])].data;
  s->weight_tensor = n.inputs[1];
  if (bias) {
    bp->name = n.name + "/bias";
    bp->value = g.tensors[size_t(n.inputs[2])].data;
    s->bias_tensor = n.inputs[2];
  }
  return ReadClamp(n, s);
}

void ForwardLayer(Impl& net, Step& s, bool train) {
  Tensor& y = net.act[size_t(s.out)];
  s.layer->Forward(net.act[size_t(s.in[0])], &y, train);
  ApplyClamp(s, &y);
}

void BackwardLayer(Impl& net, Step& s, Tensor& dy) {
  s.layer->Backward(net.act[size_t(s.in[0])], net.act[size_t(s.out)], dy, &net.scratch);
  net.Accumulate(s.in[0], net.scratch);
}

// ---- add (two activations of the same shape) and clamp

Status BuildAdd(const Graph& g, const Node& n, Step* s) {
  if (g.tensors[size_t(n.inputs[0])].kind != TensorKind::kActivation ||
      g.tensors[size_t(n.inputs[1])].kind != TensorKind::kActivation)
    return Errorf("add of a constant is not trainable here");
  if (g.ShapeOf(n.inputs[0]) != g.ShapeOf(n.inputs[1]))
    return Errorf("add with broadcasting is not supported");
  return ReadClamp(n, s);
}

void ForwardAdd(Impl& net, Step& s, bool) {
  const Tensor& a = net.act[size_t(s.in[0])];
  const Tensor& b = net.act[size_t(s.in[1])];
  Tensor& y = net.act[size_t(s.out)];
  y.Reshape(a.n, a.h, a.w, a.c);
  for (size_t i = 0; i < y.Size(); ++i) y.v[i] = a.v[i] + b.v[i];
  ApplyClamp(s, &y);
}

void BackwardAdd(Impl& net, Step& s, Tensor& dy) {
  net.scratch = dy;
  net.Accumulate(s.in[0], net.scratch);
  net.scratch = dy;
  net.Accumulate(s.in[1], net.scratch);
}

Status BuildClamp(const Graph&, const Node& n, Step* s) {
  return ReadClamp(n, s);
}

void ForwardCopy(Impl& net, Step& s, bool) {
  const Tensor& x = net.act[size_t(s.in[0])];
  Tensor& y = net.act[size_t(s.out)];
  y.Reshape(x.n, s.out_dims.h, s.out_dims.w, s.out_dims.c);
  std::copy(x.v.begin(), x.v.end(), y.v.begin());
  ApplyClamp(s, &y);
}

void BackwardCopy(Impl& net, Step& s, Tensor& dy) {
  const Tensor& x = net.act[size_t(s.in[0])];
  net.scratch.Reshape(x.n, x.h, x.w, x.c);
  std::copy(dy.v.begin(), dy.v.end(), net.scratch.v.begin());
  net.Accumulate(s.in[0], net.scratch);
}

Status BuildReshape(const Graph&, const Node&, Step*) {
  return Status::Ok();
}

// ---- resize_bilinear

Status BuildResize(const Graph& g, const Node& n, Step* s) {
  if (g.ShapeOf(n.inputs[0]).size() != 4) return Errorf("input is not rank 4");
  const std::vector<int64_t> size = n.Ints("size", {});
  s->ints = {n.Int("mode", 0), size[0], size[1]};
  return Status::Ok();
}

struct Tap {
  int i0, i1;
  float f;
};

// The engine's source coordinates (ops/resize_bilinear.cpp), per output index of one axis.
std::vector<Tap> Taps(int64_t mode, int in, int out) {
  std::vector<Tap> t(static_cast<size_t>(out));
  for (int i = 0; i < out; ++i) {
    double src;
    if (mode == 1)
      src = out > 1 ? double(i) * double(in - 1) / double(out - 1) : 0.0;
    else if (mode == 2)
      src = double(i) * double(in) / double(out);
    else
      src = std::max(0.0, (double(i) + 0.5) * double(in) / double(out) - 0.5);
    const int i0 = std::min(int(std::floor(src)), in - 1);
    t[size_t(i)] = {i0, std::min(i0 + 1, in - 1), float(src - double(i0))};
  }
  return t;
}

void ForwardResize(Impl& net, Step& s, bool) {
  const Tensor& x = net.act[size_t(s.in[0])];
  Tensor& y = net.act[size_t(s.out)];
  const int oh = int(s.ints[1]), ow = int(s.ints[2]), C = x.c;
  y.Reshape(x.n, oh, ow, C);
  const std::vector<Tap> ty = Taps(s.ints[0], x.h, oh), tx = Taps(s.ints[0], x.w, ow);
  ParallelFor(x.n, [&](int b, int e, int) {
    for (int n = b; n < e; ++n) {
      const float* p = x.data() + size_t(n) * x.PerSample();
      float* out = y.data() + size_t(n) * y.PerSample();
      for (int oy = 0; oy < oh; ++oy)
        for (int ox = 0; ox < ow; ++ox) {
          const Tap a = ty[size_t(oy)], c = tx[size_t(ox)];
          const float* p00 = p + (size_t(a.i0) * size_t(x.w) + size_t(c.i0)) * size_t(C);
          const float* p01 = p + (size_t(a.i0) * size_t(x.w) + size_t(c.i1)) * size_t(C);
          const float* p10 = p + (size_t(a.i1) * size_t(x.w) + size_t(c.i0)) * size_t(C);
          const float* p11 = p + (size_t(a.i1) * size_t(x.w) + size_t(c.i1)) * size_t(C);
          for (int ch = 0; ch < C; ++ch) {
            const float top = p00[ch] * (1 - c.f) + p01[ch] * c.f;
            const float bot = p10[ch] * (1 - c.f) + p11[ch] * c.f;
            *out++ = top * (1 - a.f) + bot * a.f;
          }
        }
    }
  });
}

void BackwardResize(Impl& net, Step& s, Tensor& dy) {
  const Tensor& x = net.act[size_t(s.in[0])];
  Tensor& dx = net.scratch;
  dx.Resize(x.n, x.h, x.w, x.c);
  const int oh = int(s.ints[1]), ow = int(s.ints[2]), C = x.c;
  const std::vector<Tap> ty = Taps(s.ints[0], x.h, oh), tx = Taps(s.ints[0], x.w, ow);
  ParallelFor(x.n, [&](int b, int e, int) {
    for (int n = b; n < e; ++n) {
      float* p = dx.data() + size_t(n) * dx.PerSample();
      const float* d = dy.data() + size_t(n) * dy.PerSample();
      for (int oy = 0; oy < oh; ++oy)
        for (int ox = 0; ox < ow; ++ox, d += C) {
          const Tap a = ty[size_t(oy)], c = tx[size_t(ox)];
          float* p00 = p + (size_t(a.i0) * size_t(x.w) + size_t(c.i0)) * size_t(C);
          float* p01 = p + (size_t(a.i0) * size_t(x.w) + size_t(c.i1)) * size_t(C);
          float* p10 = p + (size_t(a.i1) * size_t(x.w) + size_t(c.i0)) * size_t(C);
          float* p11 = p + (size_t(a.i1) * size_t(x.w) + size_t(c.i1)) * size_t(C);
          const float w00 = (1 - a.f) * (1 - c.f), w01 = (1 - a.f) * c.f;
          const float w10 = a.f * (1 - c.f), w11 = a.f * c.f;
          for (int ch = 0; ch < C; ++ch) {
            p00[ch] += d[ch] * w00;
            p01[ch] += d[ch] * w01;
            p10[ch] += d[ch] * w10;
            p11[ch] += d[ch] * w11;
          }
        }
    }
  });
  net.Accumulate(s.in[0], dx);
}

// ---- depth_to_space (TensorFlow DCR order)

Status BuildDepthToSpace(const Graph&, const Node& n, Step* s) {
  s->ints = {n.Int("block", 0)};
  return Status::Ok();
}

// Calls fn(input index, output index) for every element of one sample.
template <typename Fn>
void ForEachD2s(const Tensor& x, int b, Fn fn) {
  const int co = x.c / (b * b), ow = x.w * b;
  for (int oy = 0; oy < x.h * b; ++oy)
    for (int ox = 0; ox < ow; ++ox)
      for (int c = 0; c < co; ++c) {
        const int iy = oy / b, ix = ox / b, i = oy % b, j = ox % b;
        fn((size_t(iy) * size_t(x.w) + size_t(ix)) * size_t(x.c) + size_t((i * b + j) * co + c),
           (size_t(oy) * size_t(ow) + size_t(ox)) * size_t(co) + size_t(c));
      }
}

void ForwardDepthToSpace(Impl& net, Step& s, bool) {
  const Tensor& x = net.act[size_t(s.in[0])];
  Tensor& y = net.act[size_t(s.out)];
  const int b = int(s.ints[0]);
  y.Reshape(x.n, x.h * b, x.w * b, x.c / (b * b));
  for (int n = 0; n < x.n; ++n) {
    const float* xi = x.data() + size_t(n) * x.PerSample();
    float* yo = y.data() + size_t(n) * y.PerSample();
    ForEachD2s(x, b, [&](size_t i, size_t o) { yo[o] = xi[i]; });
  }
}

void BackwardDepthToSpace(Impl& net, Step& s, Tensor& dy) {
  const Tensor& x = net.act[size_t(s.in[0])];
  net.scratch.Reshape(x.n, x.h, x.w, x.c);
  for (int n = 0; n < x.n; ++n) {
    float* dxi = net.scratch.data() + size_t(n) * x.PerSample();
    const float* dyo = dy.data() + size_t(n) * dy.PerSample();
    ForEachD2s(x, int(s.ints[0]), [&](size_t i, size_t o) { dxi[i] = dyo[o]; });
  }
  net.Accumulate(s.in[0], net.scratch);
}

// ---- concatenate (last axis)

Status BuildConcat(const Graph& g, const Node& n, Step*) {
  const int64_t rank = int64_t(g.ShapeOf(n.output).size());
  int64_t axis = n.Int("axis", 0);
  if (axis < 0) axis += rank;
  if (axis != rank - 1) return Errorf("concatenation is only supported on the last axis");
  return Status::Ok();
}

void ForwardConcat(Impl& net, Step& s, bool) {
  Tensor& y = net.act[size_t(s.out)];
  const Tensor& x0 = net.act[size_t(s.in[0])];
  y.Reshape(x0.n, s.out_dims.h, s.out_dims.w, s.out_dims.c);
  const size_t rows = size_t(y.n) * size_t(y.h) * size_t(y.w);
  int offset = 0;
  for (int t : s.in) {
    const Tensor& x = net.act[size_t(t)];
    for (size_t r = 0; r < rows; ++r)
      std::memcpy(y.data() + r * size_t(y.c) + size_t(offset), x.data() + r * size_t(x.c),
                  sizeof(float) * size_t(x.c));
    offset += x.c;
  }
}

void BackwardConcat(Impl& net, Step& s, Tensor& dy) {
  const size_t rows = size_t(dy.n) * size_t(dy.h) * size_t(dy.w);
  int offset = 0;
  for (int t : s.in) {
    const Tensor& x = net.act[size_t(t)];
    net.scratch.Reshape(x.n, x.h, x.w, x.c);
    for (size_t r = 0; r < rows; ++r)
      std::memcpy(net.scratch.data() + r * size_t(x.c),
                  dy.data() + r * size_t(dy.c) + size_t(offset), sizeof(float) * size_t(x.c));
    offset += x.c;
    net.Accumulate(t, net.scratch);
  }
}

// ---- pad (rank 4, zero value, no batch padding)

Status BuildPad(const Graph& g, const Node& n, Step* s) {
  if (g.ShapeOf(n.inputs[0]).size() != 4) return Errorf("input is not rank 4");
  if (n.Float("value", 0.f) != 0.f) return Errorf("only zero padding is supported");
  s->ints = n.Ints("pads", {});
  if (s->ints[0] != 0 || s->ints[4] != 0) return Errorf("batch padding is not supported");
  return Status::Ok();
}

// Calls fn(input offset, output offset) for each input row of C channels of one sample.
template <typename Fn>
void ForEachPadRow(const Tensor& x, const Step& s, Fn fn) {
  const int top = int(s.ints[1]), left = int(s.ints[2]), cb = int(s.ints[3]);
  const Dims o = s.out_dims;
  for (int yy = 0; yy < x.h; ++yy)
    for (int xx = 0; xx < x.w; ++xx)
      fn((size_t(yy) * size_t(x.w) + size_t(xx)) * size_t(x.c),
         (size_t(yy + top) * size_t(o.w) + size_t(xx + left)) * size_t(o.c) + size_t(cb));
}

void ForwardPad(Impl& net, Step& s, bool) {
  const Tensor& x = net.act[size_t(s.in[0])];
  Tensor& y = net.act[size_t(s.out)];
  y.Resize(x.n, s.out_dims.h, s.out_dims.w, s.out_dims.c);
  for (int n = 0; n < x.n; ++n) {
    const float* xi = x.data() + size_t(n) * x.PerSample();
    float* yo = y.data() + size_t(n) * y.PerSample();
    ForEachPadRow(x, s, [&](size_t i, size_t o) { std::memcpy(yo + o, xi + i, 4 * size_t(x.c)); });
  }
}

void BackwardPad(Impl& net, Step& s, Tensor& dy) {
  const Tensor& x = net.act[size_t(s.in[0])];
  net.scratch.Reshape(x.n, x.h, x.w, x.c);
  for (int n = 0; n < x.n; ++n) {
    float* dxi = net.scratch.data() + size_t(n) * x.PerSample();
    const float* dyo = dy.data() + size_t(n) * dy.PerSample();
    ForEachPadRow(x, s,
                  [&](size_t i, size_t o) { std::memcpy(dxi + i, dyo + o, 4 * size_t(x.c)); });
  }
  net.Accumulate(s.in[0], net.scratch);
}

const OpKind kOps[] = {
    {"conv2d", BuildConv, ForwardLayer, BackwardLayer},
    {"depthwise_conv2d", BuildConv, ForwardLayer, BackwardLayer},
    {"add", BuildAdd, ForwardAdd, BackwardAdd},
    {"clamp", BuildClamp, ForwardCopy, BackwardCopy},
    {"reshape", BuildReshape, ForwardCopy, BackwardCopy},
    {"resize_bilinear", BuildResize, ForwardResize, BackwardResize},
    {"depth_to_space", BuildDepthToSpace, ForwardDepthToSpace, BackwardDepthToSpace},
    {"concatenate", BuildConcat, ForwardConcat, BackwardConcat},
    {"pad", BuildPad, ForwardPad, BackwardPad},
};

}  // namespace

GraphNet::~GraphNet() = default;

Status GraphNet::Create(const Graph& graph, bool keep_zeros, std::unique_ptr<GraphNet>* out) {
  if (!graph.validated()) return Errorf("graph net: the graph is not validated");
  if (graph.inputs.size() != 1) return Errorf("graph net: the graph needs exactly one input");
  if (graph.ShapeOf(graph.inputs[0]).size() != 4)
    return Errorf("graph net: the input is not [1, H, W, C]");
  auto net = std::make_unique<GraphNet>();
  net->impl_ = std::make_unique<Impl>();
  Impl& m = *net->impl_;
  m.graph = graph;
  FM_RETURN_IF_ERROR(m.graph.Validate());
  const size_t nt = m.graph.tensors.size();
  m.dims.resize(nt);
  m.act.resize(nt);
  m.grad.resize(nt);
  m.has_grad.assign(nt, 0);
  for (size_t t = 0; t < nt; ++t)
    if (m.graph.tensors[t].kind == TensorKind::kActivation)
      FM_RETURN_IF_ERROR(ToDims(m.graph.tensors[t].shape, &m.dims[t])
                             .Prefix("graph net: " + m.graph.DescribeTensor(int32_t(t)) + ": "));
  for (size_t i = 0; i < m.graph.nodes.size(); ++i) {
    const Node& n = m.graph.nodes[i];
    Step s;
    s.node = i;
    s.out = n.output;
    s.out_dims = m.dims[size_t(n.output)];
    for (const OpKind& k : kOps)
      if (n.op == k.name) s.kind = &k;
    if (!s.kind)
      return Errorf("graph net: ", m.graph.DescribeNode(i), ": op '", n.op,
                    "' cannot be trained (no backward)");
    for (size_t j = 0; j < n.inputs.size(); ++j) {
      const int32_t t = n.inputs[j];
      if (t != kNoTensor && m.graph.tensors[size_t(t)].kind == TensorKind::kActivation)
        s.in.push_back(t);
    }
    FM_RETURN_IF_ERROR(
        s.kind->build(m.graph, n, &s).Prefix("graph net: " + m.graph.DescribeNode(i) + ": "));
    if (s.layer)
      for (Param* p : s.layer->Params()) {
        m.params.push_back(p);
        std::vector<uint8_t> mask;
        if (keep_zeros && p->decay) {
          mask.resize(p->value.size());
          for (size_t e = 0; e < mask.size(); ++e) mask[e] = p->value[e] == 0.f;
        }
        m.zero_masks.push_back(std::move(mask));
        p->grad.assign(p->value.size(), 0.f);
      }
    m.steps.push_back(std::move(s));
  }
  *out = std::move(net);
  return Status::Ok();
}

void GraphNet::Forward(const Tensor& x, bool train) {
  Impl& m = *impl_;
  const size_t in = size_t(m.graph.inputs[0]);
  m.act[in] = x;
  m.n = x.n;
  for (Step& s : m.steps) s.kind->forward(m, s, train);
}

const Tensor& GraphNet::Output(size_t i) const {
  return impl_->act[size_t(impl_->graph.outputs[i])];
}
size_t GraphNet::NumOutputs() const {
  return impl_->graph.outputs.size();
}

void GraphNet::Backward(const std::vector<Tensor>& doutputs, bool want_input_grad) {
  Impl& m = *impl_;
  m.input_grad = want_input_grad;
  std::fill(m.has_grad.begin(), m.has_grad.end(), 0);
  for (Param* p : m.params) std::fill(p->grad.begin(), p->grad.end(), 0.f);
  for (size_t i = 0; i < doutputs.size() && i < m.graph.outputs.size(); ++i) {
    if (doutputs[i].Size() == 0) continue;
    m.scratch = doutputs[i];
    m.Accumulate(m.graph.outputs[i], m.scratch);
  }
  for (size_t i = m.steps.size(); i-- > 0;) {
    Step& s = m.steps[i];
    const size_t o = size_t(s.out);
    if (!m.has_grad[o]) continue;
    Tensor dy;
    std::swap(dy, m.grad[o]);
    m.has_grad[o] = 0;
    ClampBackward(s, m.act[o], &dy);
    s.kind->backward(m, s, dy);
    std::swap(dy, m.grad[o]);  // keep the buffer for the next call
  }
}

const Tensor& GraphNet::InputGrad() const {
  return impl_->grad[size_t(impl_->graph.inputs[0])];
}

std::vector<Param*> GraphNet::Params() {
  return impl_->params;
}

int64_t GraphNet::NumParams() {
  int64_t n = 0;
  for (Param* p : impl_->params) n += int64_t(p->value.size());
  return n;
}

int64_t GraphNet::Macs() const {
  int64_t macs = 0;
  for (const Step& s : impl_->steps) {
    if (!s.layer) continue;
    const Dims d = impl_->dims[size_t(s.in[0])];
    macs += s.layer->Macs(Tensor(0, d.h, d.w, d.c));
  }
  return macs;
}

void GraphNet::Reinitialize(uint64_t seed) {
  Rng rng(seed);
  for (Step& s : impl_->steps) {
    if (!s.layer) continue;
    int fan_in = 1;
    if (auto* c = dynamic_cast<Conv2D*>(s.layer.get())) fan_in = c->k * c->k * c->cin;
    if (auto* d = dynamic_cast<DepthwiseConv2D*>(s.layer.get())) fan_in = d->k * d->k;
    const std::vector<Param*> ps = s.layer->Params();
    const float sd = std::sqrt(2.f / float(fan_in));
    for (float& v : ps[0]->value) v = rng.Normal() * sd;
    if (ps.size() > 1) std::fill(ps[1]->value.begin(), ps[1]->value.end(), 0.f);
  }
  for (auto& m : impl_->zero_masks) m.clear();
}

void GraphNet::MaskGradients() {
  for (size_t i = 0; i < impl_->params.size(); ++i) {
    const std::vector<uint8_t>& mask = impl_->zero_masks[i];
    std::vector<float>& g = impl_->params[i]->grad;
    for (size_t e = 0; e < mask.size(); ++e)
      if (mask[e]) g[e] = 0.f;
  }
}

Status GraphNet::Export(bool fp16, Graph* out) const {
  Graph g = impl_->graph;
  for (const Step& s : impl_->steps) {
    if (!s.layer) continue;
    const std::vector<Param*> ps = s.layer->Params();
    g.tensors[size_t(s.weight_tensor)].data = ps[0]->value;
    g.tensors[size_t(s.weight_tensor)].store_fp16 = fp16;
    if (s.bias_tensor >= 0) {
      g.tensors[size_t(s.bias_tensor)].data = ps[1]->value;
      g.tensors[size_t(s.bias_tensor)].store_fp16 = fp16;
    }
  }
  FM_RETURN_IF_ERROR(g.Validate());
  *out = std::move(g);
  return Status::Ok();
}

std::vector<std::vector<float>> GraphNet::Snapshot() {
  std::vector<std::vector<float>> s;
  for (Param* p : impl_->params) s.push_back(p->value);
  return s;
}

void GraphNet::Restore(const std::vector<std::vector<float>>& snapshot) {
  for (size_t i = 0; i < impl_->params.size(); ++i) impl_->params[i]->value = snapshot[i];
}

}  // namespace fm::train
