// common.cpp - helpers shared by the ops: window/padding resolution, fused clamp, broadcasting.
#include <cmath>
#include <limits>

#include "op.h"

namespace fm {

Status ResolveWindow(const Node& node, int64_t in_h, int64_t in_w, Window* w) {
  const std::vector<int64_t> stride = node.Ints("stride", {1, 1});
  const std::vector<int64_t> dilation = node.Ints("dilation", {1, 1});
  w->sh = stride[0];
  w->sw = stride[1];
  w->dh = dilation[0];
  w->dw = dilation[1];
  if (w->kh < 1 || w->kw < 1 || w->kh > 1024 || w->kw > 1024)
    return Errorf("kernel ", w->kh, "x", w->kw, " is outside 1..1024");
  if (w->sh < 1 || w->sw < 1 || w->sh > 1024 || w->sw > 1024)
    return Errorf("stride ", w->sh, "x", w->sw, " is outside 1..1024");
  if (w->dh < 1 || w->dw < 1 || w->dh > 1024 || w->dw > 1024)
    return Errorf("dilation ", w->dh, "x", w->dw, " is outside 1..1024");
  const int64_t eff_h = (w->kh - 1) * w->dh + 1;
  const int64_t eff_w = (w->kw - 1) * w->dw + 1;
  if (node.Has("padding") && node.Has("same"))
    return Errorf("'padding' and 'same' are mutually exclusive");
  if (node.Int("same", 0) != 0) {
    if (node.Int("same", 0) != 1) return Errorf("'same' must be 0 or 1");
    w->out_h = (in_h + w->sh - 1) / w->sh;
    w->out_w = (in_w + w->sw - 1) / w->sw;
    const int64_t total_h = std::max<int64_t>((w->out_h - 1) * w->sh + eff_h - in_h, 0);
    const int64_t total_w = std::max<int64_t>((w->out_w - 1) * w->sw + eff_w - in_w, 0);
    w->pad_top = total_h / 2;
    w->pad_bottom = total_h - w->pad_top;
    w->pad_left = total_w / 2;
    w->pad_right = total_w - w->pad_left;
    return Status::Ok();
  }
  const std::vector<int64_t> pad = node.Ints("padding", {0, 0, 0, 0});
  for (int64_t p : pad)
    if (p < 0 || p > 1024) return Errorf("padding ", p, " is outside 0..1024");
  w->pad_top = pad[0];
  w->pad_left = pad[1];
  w->pad_bottom = pad[2];
  w->pad_right = pad[3];
  const int64_t padded_h = in_h + w->pad_top + w->pad_bottom;
  const int64_t padded_w = in_w + w->pad_left + w->pad_right;
  if (padded_h < eff_h || padded_w < eff_w)
    return Errorf("window ", eff_h, "x", eff_w, " does not fit the padded input ", padded_h, "x",
                  padded_w);
  w->out_h = (padded_h - eff_h) / w->sh + 1;
  w->out_w = (padded_w - eff_w) / w->sw + 1;
  return Status::Ok();
}

Status InputRank(const Graph& graph, const Node& node, int input, size_t rank) {
  const Shape& s = graph.ShapeOf(node.inputs[static_cast<size_t>(input)]);
  if (s.size() != rank)
    return Errorf("input ", input, " must have rank ", rank, ", got ", ShapeToString(s));
  return Status::Ok();
}

void ClampRange(const Node& node, float* lo, float* hi) {
  const std::vector<float> c = node.Floats(
      "clamp", {-std::numeric_limits<float>::infinity(), std::numeric_limits<float>::infinity()});
  *lo = c[0];
  *hi = c[1];
}

Status CheckClamp(const Node& node) {
  float lo, hi;
  ClampRange(node, &lo, &hi);
  if (!(lo < hi)) return Errorf("clamp range [", lo, ", ", hi, "] is empty");
  return Status::Ok();
}

}  // namespace fm

namespace fm {

Status BroadcastShapes(const Shape& a, const Shape& b, Shape* out) {
  const size_t rank = std::max(a.size(), b.size());
  out->assign(rank, 1);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1)
      return Errorf("shapes ", ShapeToString(a), " and ", ShapeToString(b), " do not broadcast");
    (*out)[i] = std::max(da, db);
  }
  return Status::Ok();
}

void ReferenceBinary(const KernelArgs& args, float (*fn)(float, float)) {
  const Shape& out = *args.out_shape;
  const Shape& a = *args.in_shape[0];
  const Shape& b = *args.in_shape[1];
  const size_t rank = out.size();
  float lo, hi;
  ClampRange(*args.node, &lo, &hi);
  const int64_t total = NumElements(out);
  int64_t index[kMaxRank] = {};
  for (int64_t flat = 0; flat < total; ++flat) {
    // Offsets into a and b for the current output index.
    int64_t ia = 0, ib = 0;
    for (size_t d = 0; d < rank; ++d) {
      if (d >= rank - a.size()) {
        const int64_t dim = a[d - (rank - a.size())];
        ia = ia * dim + (dim == 1 ? 0 : index[d]);
      }
      if (d >= rank - b.size()) {
        const int64_t dim = b[d - (rank - b.size())];
        ib = ib * dim + (dim == 1 ? 0 : index[d]);
      }
    }
    args.out[flat] = ApplyClamp(fn(args.in[0][ia], args.in[1][ib]), lo, hi);
    for (size_t d = rank; d-- > 0;) {
      if (++index[d] < out[d]) break;
      index[d] = 0;
    }
  }
}

void ReferenceUnary(const KernelArgs& args, float (*fn)(float, const Node&)) {
  const int64_t total = NumElements(*args.out_shape);
  for (int64_t i = 0; i < total; ++i) args.out[i] = fn(args.in[0][i], *args.node);
}

Status InferSameShape(const Graph& graph, const Node& node, Shape* out) {
  *out = graph.ShapeOf(node.inputs[0]);
  return Status::Ok();
}

}  // namespace fm

namespace fm {

Status InferBinary(const Graph& g, const Node& n, Shape* out) {
  FM_RETURN_IF_ERROR(CheckClamp(n));
  if (g.tensors[size_t(n.inputs[0])].kind == TensorKind::kConstant &&
      g.tensors[size_t(n.inputs[1])].kind == TensorKind::kConstant)
    return Errorf("both inputs are constants (fold them when converting)");
  return BroadcastShapes(g.ShapeOf(n.inputs[0]), g.ShapeOf(n.inputs[1]), out);
}

}  // namespace fm
