// reshape.cpp - same elements, new shape (row-major order kept); flatten is a reshape to
// [N, H * W * C]. Attribute: shape [d0, ...] (required, every dim >= 1, same element count).
#include <cstring>

#include "op.h"

namespace fm {
namespace {

Status Infer(const Graph& g, const Node& n, Shape* out) {
  const Shape shape = n.Ints("shape", {});
  FM_RETURN_IF_ERROR(CheckShape(shape));
  if (NumElements(shape) != NumElements(g.ShapeOf(n.inputs[0])))
    return Errorf("cannot reshape ", ShapeToString(g.ShapeOf(n.inputs[0])), " to ",
                  ShapeToString(shape));
  *out = shape;
  return Status::Ok();
}

void Reference(const KernelArgs& a) {
  std::memcpy(a.out, a.in[0], sizeof(float) * size_t(NumElements(*a.out_shape)));
}

}  // namespace

extern const OpDef kReshapeOp = {
    "reshape", {{"input", InputRole::kActivation}},
    false,     {{"shape", Attr::kInts, 1, kMaxRank, true}},
    Infer,     Reference,
};

}  // namespace fm
