// facemask dependency smoke test: one XNNPACK subgraph (3x3 convolution + clamp),
// run and compared with a naive loop. Prints "OK ..." and exits 0 on success.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthreadpool.h>
#include <xnnpack.h>

enum { N = 1, IH = 13, IW = 11, IC = 5, OC = 7, KH = 3, KW = 3, SH = 2, SW = 2, PAD = 1 };
enum { OH = (IH + 2 * PAD - KH) / SH + 1, OW = (IW + 2 * PAD - KW) / SW + 1 };
static const float kMin = -0.75f, kMax = 0.5f;

#define CHECK(call)                                                              \
  do {                                                                           \
    enum xnn_status s_ = (call);                                                 \
    if (s_ != xnn_status_success) {                                              \
      fprintf(stderr, "FAIL: %s -> status %d (line %d)\n", #call, (int)s_, __LINE__); \
      return 1;                                                                  \
    }                                                                            \
  } while (0)

static uint32_t rng = 12345u;
static float frand(void) {  // deterministic, in [-1, 1)
  rng = rng * 1664525u + 1013904223u;
  return (float)((rng >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

int main(void) {
  // XNN_EXTRA_BYTES: XNNPACK may read (never write) that many bytes past external buffers.
  float* input = calloc(1, N * IH * IW * IC * sizeof(float) + XNN_EXTRA_BYTES);
  float* output = calloc(1, N * OH * OW * OC * sizeof(float) + XNN_EXTRA_BYTES);
  static float filter[OC * KH * KW * IC], bias[OC], ref[N * OH * OW * OC];
  for (int i = 0; i < N * IH * IW * IC; i++) input[i] = frand();
  for (int i = 0; i < OC * KH * KW * IC; i++) filter[i] = 0.5f * frand();
  for (int i = 0; i < OC; i++) bias[i] = 0.25f * frand();

  // Naive reference: NHWC input, OHWI filter, then clamp.
  for (int oy = 0; oy < OH; oy++)
    for (int ox = 0; ox < OW; ox++)
      for (int oc = 0; oc < OC; oc++) {
        float acc = bias[oc];
        for (int ky = 0; ky < KH; ky++)
          for (int kx = 0; kx < KW; kx++) {
            int iy = oy * SH - PAD + ky, ix = ox * SW - PAD + kx;
            if (iy < 0 || iy >= IH || ix < 0 || ix >= IW) continue;
            for (int ic = 0; ic < IC; ic++)
              acc += input[(iy * IW + ix) * IC + ic] * filter[((oc * KH + ky) * KW + kx) * IC + ic];
          }
        ref[(oy * OW + ox) * OC + oc] = fminf(fmaxf(acc, kMin), kMax);
      }

  CHECK(xnn_initialize(NULL));
  xnn_subgraph_t sg = NULL;
  CHECK(xnn_create_subgraph(/*external_value_ids=*/2, 0, &sg));
  const size_t in_dims[4] = {N, IH, IW, IC}, out_dims[4] = {N, OH, OW, OC};
  const size_t w_dims[4] = {OC, KH, KW, IC}, b_dims[1] = {OC};
  uint32_t in_id, out_id, w_id, b_id, conv_id;
  CHECK(xnn_define_tensor_value(sg, xnn_datatype_fp32, 4, in_dims, NULL, 0,
                                XNN_VALUE_FLAG_EXTERNAL_INPUT, &in_id));
  CHECK(xnn_define_tensor_value(sg, xnn_datatype_fp32, 4, out_dims, NULL, 1,
                                XNN_VALUE_FLAG_EXTERNAL_OUTPUT, &out_id));
  CHECK(xnn_define_tensor_value(sg, xnn_datatype_fp32, 4, w_dims, filter, XNN_INVALID_VALUE_ID, 0, &w_id));
  CHECK(xnn_define_tensor_value(sg, xnn_datatype_fp32, 1, b_dims, bias, XNN_INVALID_VALUE_ID, 0, &b_id));
  CHECK(xnn_define_tensor_value(sg, xnn_datatype_fp32, 4, out_dims, NULL, XNN_INVALID_VALUE_ID, 0, &conv_id));
  CHECK(xnn_define_convolution_2d(sg, PAD, PAD, PAD, PAD, KH, KW, SH, SW, 1, 1, /*groups=*/1, IC, OC,
                                  -INFINITY, INFINITY, in_id, w_id, b_id, conv_id, 0));
  union xnn_unary_params clamp;
  memset(&clamp, 0, sizeof clamp);
  clamp.clamp.min = kMin;
  clamp.clamp.max = kMax;
  CHECK(xnn_define_unary(sg, xnn_unary_clamp, &clamp, conv_id, out_id, 0));

  pthreadpool_t pool = pthreadpool_create(2);  // the single-threaded shim returns a dummy pool
  xnn_runtime_t rt = NULL;
  CHECK(xnn_create_runtime_v2(sg, pool, 0, &rt));
  const struct xnn_external_value ext[2] = {{in_id, input}, {out_id, output}};
  CHECK(xnn_reshape_runtime(rt));
  CHECK(xnn_setup_runtime_v2(rt, 2, ext));
  CHECK(xnn_invoke_runtime(rt));

  float max_err = 0.0f;
  int clamped = 0;
  for (int i = 0; i < N * OH * OW * OC; i++) {
    float e = fabsf(output[i] - ref[i]);
    if (!(e <= max_err)) max_err = e;  // also catches NaN
    if (ref[i] == kMin || ref[i] == kMax) clamped++;
  }
  CHECK(xnn_delete_runtime(rt));
  CHECK(xnn_delete_subgraph(sg));
  const size_t threads = pthreadpool_get_threads_count(pool);
  pthreadpool_destroy(pool);
  CHECK(xnn_deinitialize());
  free(input);
  free(output);
  if (!(max_err <= 1e-4f) || clamped == 0) {
    fprintf(stderr, "FAIL: max abs error %g, %d clamped values\n", max_err, clamped);
    return 1;
  }
  printf("OK conv %dx%d/%d %dx%dx%d->%dx%dx%d + clamp, %d outputs (%d clamped), max abs err %.2g, "
         "%zu threads\n",
         KH, KW, SH, IH, IW, IC, OH, OW, OC, N * OH * OW * OC, clamped, (double)max_err, threads);
  return 0;
}
