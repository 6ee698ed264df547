// resize_bilinear.cpp - the resize_bilinear op as an XNNPACK subgraph node (its shape rules and
// reference kernel: ops/resize_bilinear.cpp).
#include <cmath>

#include "runtime/xnn_ops/xnn_op.h"

namespace fm {
namespace {

Status DefineXnn(const XnnArgs& a) {
  const std::vector<int64_t> size = a.node->Ints("size", {});
  const int64_t mode = a.node->Int("mode", 0);
  const uint32_t flags =
      mode == 1 ? XNN_FLAG_ALIGN_CORNERS : (mode == 2 ? XNN_FLAG_TENSORFLOW_LEGACY_MODE : 0u);
  return XnnCheck(xnn_define_static_resize_bilinear_2d(a.subgraph, size_t(size[0]), size_t(size[1]),
                                                       a.in[0], a.out, flags),
                  "resize_bilinear");
}

}  // namespace

extern const XnnOpDef kXnnResizeBilinearOp = {"resize_bilinear", DefineXnn};

}  // namespace fm
