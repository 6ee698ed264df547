// multiply.cpp - elementwise a * b with numpy broadcasting, fused clamp [min, max].
#include "op.h"

namespace fm {
namespace {

void Reference(const KernelArgs& a) {
  ReferenceBinary(a, [](float x, float y) { return x * y; });
}

}  // namespace

extern const OpDef kMultiplyOp = {
    "multiply",  {{"a", InputRole::kAny}, {"b", InputRole::kAny}},
    false,       {{"clamp", Attr::kFloats, 2, 2, false}},
    InferBinary, Reference,
};

}  // namespace fm
