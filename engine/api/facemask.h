/* facemask.h - the engine's C API: the door of the WebAssembly module (the page), of fm_soak and of
 * any program embedding the engine. The repository's native tools (CLI, fm_eval_scenes, trainer)
 * use the C++ headers for what this API leaves out; engine/README.md "Who uses what" says which.
 *
 * No C++ exceptions cross it. Every function checks its arguments; a failing call returns NULL or
 * a negative number and leaves a message for fm_last_error() (per thread). Pointers returned for
 * model inputs and outputs stay valid until fm_model_free(). */
#ifndef FACEMASK_H_
#define FACEMASK_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* FM_BACKEND_XNNPACK lets XNNPACK run models whose 1x1 convolutions are mostly zeros (the
 * full-range detector) on its sparse path where that is faster (WebAssembly, ARM; XNNPACK skips it
 * on x86 CPUs with AVX); FM_BACKEND_XNNPACK_DENSE never does (outputs agree within about 1e-4);
 * FM_BACKEND_REFERENCE is plain C++ loops (slow; the tests' oracle). */
enum { FM_BACKEND_XNNPACK = 0, FM_BACKEND_REFERENCE = 1, FM_BACKEND_XNNPACK_DENSE = 2 };

typedef struct fm_model fm_model;

/* Engine version string, e.g. "0.1.0". */
const char* fm_version(void);
/* Message of the last failed call on this thread ("" when none). */
const char* fm_last_error(void);

/* Loads a .fmm model from memory (the bytes are copied) and prepares it to run: for the XNNPACK
 * backend the weights are packed here, once. threads >= 1. */
fm_model* fm_model_load(const uint8_t* data, size_t size, int backend, int threads);
/* Same, from a file (native builds; in the browser pass bytes). */
fm_model* fm_model_load_file(const char* path, int backend, int threads);
void fm_model_free(fm_model* model);

int fm_model_num_inputs(const fm_model* model);
int fm_model_num_outputs(const fm_model* model);
/* Rank of input/output i, and its dimension d; -1 on a bad argument. */
int fm_model_input_rank(const fm_model* model, int i);
int fm_model_input_dim(const fm_model* model, int i, int d);
int fm_model_output_rank(const fm_model* model, int i);
int fm_model_output_dim(const fm_model* model, int i, int d);
/* Buffers of input/output i (float32, NHWC, element count = product of dims). */
float* fm_model_input(fm_model* model, int i);
const float* fm_model_output(const fm_model* model, int i);
/* Runs the model on the current input buffers: 0 on success, -1 on error. */
int fm_model_run(fm_model* model);
/* Metadata value for key, or NULL when absent. */
const char* fm_model_metadata(const fm_model* model, const char* key);

/* ---- The face pipeline: detector + optional classifier ----
 * Results are JSON text (the same shape the CLI prints):
 *   {"width": W, "height": H, "faces": [{"box": [x0, y0, x1, y1], "score": s,
 *     "keypoints": [[x, y] x6], "label": "with_mask", "probs": {"with_mask": p, ...},
 *     "confident": true}]}
 * "confident" is false when the label's probability is under the classifier's unsure_below
 * metadata (default 0.6): the label is then the most likely class, shown as a guess.
 * The returned string stays valid until the next run on the same pipeline or fm_pipeline_free. */
typedef struct fm_pipeline fm_pipeline;

/* detector: a BlazeFace .fmm; classifier: a classifier .fmm or NULL/0 for detection only.
 * min_score: detector threshold in 0..1, or a negative number for the model's default. */
fm_pipeline* fm_pipeline_create(const uint8_t* detector, size_t detector_size,
                                const uint8_t* classifier, size_t classifier_size, float min_score,
                                int threads);
/* Runs on raw pixels: channels 3 (RGB) or 4 (RGBA), stride = bytes per row. */
const char* fm_pipeline_run_pixels(fm_pipeline* pipeline, const uint8_t* pixels, int width,
                                   int height, int channels, int stride);
/* For video: as fm_pipeline_run_pixels, plus tracking across calls (faces get a stable "id";
 * probabilities and labels are smoothed over time). timestamp_ms must increase between frames;
 * a smaller one starts a new stream. */
const char* fm_pipeline_track_pixels(fm_pipeline* pipeline, const uint8_t* pixels, int width,
                                     int height, int channels, int stride, double timestamp_ms);
/* For fm_pipeline_track_pixels: the detector runs on every n-th frame, n in 1..30 (default 2; 1 =
 * every frame). On the frames between, each face of the last detection is moved along its measured
 * motion and classified there; the classifier then takes turns too (on detector frames only new
 * faces). The detector also runs when the frame size changes, when time goes backwards and when
 * its last run is over 250 ms old. Returns 0, or -1 on a bad argument. */
int fm_pipeline_set_detect_every(fm_pipeline* pipeline, int n);
/* Runs on an encoded image file (JPEG, PNG, ...; EXIF orientation applied). */
const char* fm_pipeline_run_encoded(fm_pipeline* pipeline, const uint8_t* bytes, size_t size);
void fm_pipeline_free(fm_pipeline* pipeline);

/* ---- Whole-image classifiers (e.g. a converted Keras model that labels a whole photo) ----
 * Results: {"width": W, "height": H, "label": "...", "probs": {"label": p, ...}}, valid until the
 * next run or free. */
typedef struct fm_classifier fm_classifier;

fm_classifier* fm_classifier_create(const uint8_t* model, size_t model_size, int threads);
const char* fm_classifier_run_pixels(fm_classifier* classifier, const uint8_t* pixels, int width,
                                     int height, int channels, int stride);
const char* fm_classifier_run_encoded(fm_classifier* classifier, const uint8_t* bytes, size_t size);
void fm_classifier_free(fm_classifier* classifier);

#ifdef __cplusplus
}
#endif

#endif /* FACEMASK_H_ */
