// frozen.cpp - see frozen.h.
#include "frozen.h"

#include <limits>

namespace fm::train {

Status Frozen::Create(std::shared_ptr<const Graph> graph, std::unique_ptr<Frozen>* out) {
  if (!graph || !graph->validated()) return Errorf("frozen layer: the graph is not validated");
  if (graph->inputs.size() != 1 || graph->outputs.size() != 1)
    return Errorf("frozen layer: the graph needs one input and one output");
  const Shape& in = graph->ShapeOf(graph->inputs[0]);
  if (in.size() != 4 || in[0] != 1 || in[1] != in[2] || in[3] != 3)
    return Errorf("frozen layer: input ", ShapeToString(in), " is not [1, S, S, 3]");
  const Shape& o = graph->ShapeOf(graph->outputs[0]);
  const bool flat = o.size() == 2 && o[0] == 1;
  const bool pooled = o.size() == 4 && o[0] == 1 && o[1] == 1 && o[2] == 1;
  if (!flat && !pooled)
    return Errorf("frozen layer: output ", ShapeToString(o), " is not [1, F] or [1, 1, 1, F]");
  auto f = std::make_unique<Frozen>();
  f->graph = graph;
  f->size = int(in[1]);
  f->features = int(o.back());
  for (int t = 0; t < Threads(); ++t) {
    std::unique_ptr<Runtime> rt;
    FM_RETURN_IF_ERROR(Runtime::Create(graph, RuntimeOptions(), &rt));
    f->runtimes_.push_back(std::move(rt));
  }
  f->errors_.resize(f->runtimes_.size());
  for (const Node& n : graph->nodes) {
    const Shape& y = graph->ShapeOf(n.output);
    if (n.op == "conv2d" || n.op == "depthwise_conv2d") {
      const Shape& w = graph->ShapeOf(n.inputs[1]);  // OHWI / [1, kh, kw, C]
      const int64_t per_out = n.op == "conv2d" ? w[1] * w[2] * w[3] : w[1] * w[2];
      f->macs_ += y[0] * y[1] * y[2] * y[3] * per_out;
    } else if (n.op == "fully_connected") {
      f->macs_ += NumElements(graph->ShapeOf(n.inputs[1]));
    }
  }
  *out = std::move(f);
  return Status::Ok();
}

void Frozen::Forward(const Tensor& x, Tensor* y, bool /*train*/) {
  y->Reshape(x.n, 1, 1, features);
  const size_t per = x.PerSample();
  if (x.h != size || x.w != size || x.c != 3) {
    status_ =
        Errorf("frozen layer: input ", x.h, "x", x.w, "x", x.c, " is not ", size, "x", size, "x3");
    std::fill(y->v.begin(), y->v.end(), std::numeric_limits<float>::quiet_NaN());
    return;
  }
  ParallelFor(x.n, [&](int b, int e, int t) {
    Runtime& rt = *runtimes_[size_t(t)];
    for (int i = b; i < e; ++i) {
      std::copy(x.data() + size_t(i) * per, x.data() + size_t(i + 1) * per, rt.input(0));
      float* dst = y->data() + size_t(i) * size_t(features);
      const Status s = rt.Run();
      if (!s.ok()) {
        if (errors_[size_t(t)].ok()) errors_[size_t(t)] = s;
        std::fill(dst, dst + features, std::numeric_limits<float>::quiet_NaN());
        continue;
      }
      std::copy(rt.output(0), rt.output(0) + features, dst);
    }
  });
  for (Status& s : errors_)
    if (!s.ok() && status_.ok()) status_ = s;
}

void Frozen::Backward(const Tensor&, const Tensor&, const Tensor&, Tensor* dx) {
  dx->Reshape(0, 0, 0, 0);  // frozen and first: no gradient to pass on
}

int64_t Frozen::Macs(const Tensor&) const {
  return macs_;
}

}  // namespace fm::train
