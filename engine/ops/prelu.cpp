// prelu.cpp - x >= 0 ? x : slope * x, with a learned slope per channel: slope is a constant of
// shape [C] (the input's last dimension) or any shape that broadcasts to the input.
#include "op.h"

namespace fm {
namespace {

Status Infer(const Graph& g, const Node& n, Shape* out) {
  FM_RETURN_IF_ERROR(BroadcastShapes(g.ShapeOf(n.inputs[0]), g.ShapeOf(n.inputs[1]), out));
  if (*out != g.ShapeOf(n.inputs[0]))
    return Errorf("slope ", ShapeToString(g.ShapeOf(n.inputs[1])), " must broadcast to the input ",
                  ShapeToString(g.ShapeOf(n.inputs[0])));
  return Status::Ok();
}

void Reference(const KernelArgs& a) {
  ReferenceBinary(a, [](float x, float slope) { return x >= 0.f ? x : slope * x; });
}

}  // namespace

extern const OpDef kPreluOp = {
    "prelu", {{"input", InputRole::kActivation}, {"slope", InputRole::kConstant}},
    false,   {},
    Infer,   Reference,
};

}  // namespace fm
