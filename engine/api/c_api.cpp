// c_api.cpp - the C API over Graph + Runtime (see facemask.h).
#include <algorithm>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>

#include "api/facemask.h"
#include "api/results_json.h"
#include "model/model_format.h"
#include "runtime/runtime.h"
#include "version.h"
#include "vision/pipeline.h"
#include "vision/tracker.h"
#include "vision/whole_image.h"

struct fm_model {
  std::shared_ptr<const fm::Graph> graph;
  std::unique_ptr<fm::Runtime> runtime;
};

struct fm_classifier {
  fm::WholeImageClassifier classifier;
  fm::Image image;  // reused decode buffer (raw pixels are read in place)
  std::vector<float> probs;
  std::string json;
};

struct fm_pipeline {
  std::unique_ptr<fm::Pipeline> pipeline;
  fm::Image image;  // reused decode buffer (raw pixels are read in place, through a view)
  std::vector<fm::Face> faces;
  std::string json;  // the last result
  fm::Tracker tracker;
  std::vector<int> ids;
};

namespace {

// The last error lives in a fixed buffer, so reporting "out of memory" never needs memory (a
// std::string here could throw from inside a catch handler and out through the C API).
thread_local char g_last_error[2048];

void SetError(const char* fn, const char* message) noexcept {
  std::snprintf(g_last_error, sizeof g_last_error, "%s%s%s", fn ? fn : "", fn ? ": " : "", message);
}

void SetError(const std::string& message) noexcept {
  SetError(nullptr, message.c_str());
}

// The C API's one catch ladder: runs body() and turns any exception into the last error and a
// NULL result, so no exception ever leaves the C API.
template <typename Body>
auto Guarded(const char* fn, Body&& body) noexcept -> decltype(body()) {
  try {
    return body();
  } catch (const std::exception& e) {
    SetError(fn, e.what());
  } catch (...) {
    SetError(fn, "unknown exception");
  }
  return nullptr;
}

// The C API's one check of a Status: false when fine, else the message becomes the last error.
bool Failed(const fm::Status& status) noexcept {
  if (status.ok()) return false;
  SetError(status.message());
  return true;
}

fm_model* Finish(fm::Status status, std::shared_ptr<fm::Graph> graph, int backend, int threads) {
  if (Failed(status)) return nullptr;
  if (backend != FM_BACKEND_XNNPACK && backend != FM_BACKEND_REFERENCE &&
      backend != FM_BACKEND_XNNPACK_DENSE) {
    SetError(
        "fm_model_load: backend must be FM_BACKEND_XNNPACK (0), FM_BACKEND_REFERENCE (1) or "
        "FM_BACKEND_XNNPACK_DENSE (2), got " +
        std::to_string(backend));
    return nullptr;
  }
  fm::RuntimeOptions options;
  options.backend =
      backend == FM_BACKEND_REFERENCE ? fm::Backend::kReference : fm::Backend::kXnnpack;
  options.threads = threads;
  options.sparse_hint = backend == FM_BACKEND_XNNPACK;
  auto model = std::make_unique<fm_model>();
  model->graph = std::move(graph);
  status = fm::Runtime::Create(model->graph, options, &model->runtime);
  if (Failed(status)) return nullptr;
  return model.release();  // owned by the caller until fm_model_free
}

bool CheckModel(const fm_model* model, const char* fn) {
  if (model && model->runtime) return true;
  SetError(fn, "model is NULL");
  return false;
}

bool CheckPipeline(const fm_pipeline* pipeline, const char* fn) {
  if (pipeline && pipeline->pipeline) return true;
  SetError(fn, "pipeline is NULL");
  return false;
}

bool CheckClassifier(const fm_classifier* classifier, const char* fn) {
  if (classifier) return true;
  SetError(fn, "classifier is NULL");
  return false;
}

bool CheckIndex(const fm_model* model, int i, bool input, const char* fn) {
  if (!CheckModel(model, fn)) return false;
  const size_t n = input ? model->runtime->num_inputs() : model->runtime->num_outputs();
  if (i >= 0 && size_t(i) < n) return true;
  SetError(std::string(fn) + ": index " + std::to_string(i) + " is outside 0.." +
           std::to_string(int(n) - 1));
  return false;
}

int Dim(const fm::Shape& shape, int d, const char* fn) {
  if (d >= 0 && size_t(d) < shape.size()) return int(shape[size_t(d)]);
  SetError(std::string(fn) + ": dimension " + std::to_string(d) + " is outside the rank " +
           std::to_string(shape.size()));
  return -1;
}

// Raw pixels are read in place, so the decode buffer is idle while frames come: a large photo's
// is given back.
void ReleaseDecodeBuffer(fm::Image* image) {
  if (image->rgb.capacity() > (size_t(1) << 20)) *image = fm::Image();
}

// Runs on `image`; with a timestamp (video) the tracker smooths and numbers the faces.
const char* RunPipeline(fm_pipeline* p, const fm::ImageView& image,
                        const double* timestamp_ms = nullptr) {
  // Video frames go through the tracker, which runs the detector on every detect_every-th frame.
  fm::Status s = timestamp_ms
                     ? p->tracker.Track(p->pipeline.get(), image, *timestamp_ms, &p->faces, &p->ids)
                     : p->pipeline->Run(image, &p->faces);
  if (Failed(s)) return nullptr;
  p->json = fm::FacesResultJson(image.width, image.height, p->faces, p->pipeline->labels(),
                                timestamp_ms ? &p->ids : nullptr);
  return p->json.c_str();
}

const char* RunClassifier(fm_classifier* c, const fm::ImageView& image) {
  fm::Status s = c->classifier.Run(image, &c->probs);
  if (Failed(s)) return nullptr;
  c->json = fm::ImageLabelJson(image.width, image.height, c->classifier.labels(), c->probs);
  return c->json.c_str();
}

}  // namespace

extern "C" {

const char* fm_version(void) {
  return FM_VERSION;
}
const char* fm_last_error(void) {
  return g_last_error;
}

fm_model* fm_model_load(const uint8_t* data, size_t size, int backend, int threads) {
  return Guarded("fm_model_load", [&]() -> fm_model* {
    if (!data || size == 0) {
      SetError("fm_model_load: no model bytes");
      return nullptr;
    }
    auto graph = std::make_shared<fm::Graph>();
    fm::Status s = fm::ReadModel(data, size, graph.get());
    return Finish(s, std::move(graph), backend, threads);
  });
}

fm_model* fm_model_load_file(const char* path, int backend, int threads) {
  return Guarded("fm_model_load_file", [&]() -> fm_model* {
    if (!path) {
      SetError("fm_model_load_file: path is NULL");
      return nullptr;
    }
    auto graph = std::make_shared<fm::Graph>();
    fm::Status s = fm::ReadModelFile(path, graph.get());
    return Finish(s, std::move(graph), backend, threads);
  });
}

void fm_model_free(fm_model* model) {
  std::unique_ptr<fm_model> owned(model);
}

int fm_model_num_inputs(const fm_model* model) {
  return CheckModel(model, "fm_model_num_inputs") ? int(model->runtime->num_inputs()) : -1;
}
int fm_model_num_outputs(const fm_model* model) {
  return CheckModel(model, "fm_model_num_outputs") ? int(model->runtime->num_outputs()) : -1;
}
int fm_model_input_rank(const fm_model* model, int i) {
  return CheckIndex(model, i, true, "fm_model_input_rank")
             ? int(model->runtime->input_shape(size_t(i)).size())
             : -1;
}
int fm_model_input_dim(const fm_model* model, int i, int d) {
  return CheckIndex(model, i, true, "fm_model_input_dim")
             ? Dim(model->runtime->input_shape(size_t(i)), d, "fm_model_input_dim")
             : -1;
}
int fm_model_output_rank(const fm_model* model, int i) {
  return CheckIndex(model, i, false, "fm_model_output_rank")
             ? int(model->runtime->output_shape(size_t(i)).size())
             : -1;
}
int fm_model_output_dim(const fm_model* model, int i, int d) {
  return CheckIndex(model, i, false, "fm_model_output_dim")
             ? Dim(model->runtime->output_shape(size_t(i)), d, "fm_model_output_dim")
             : -1;
}
float* fm_model_input(fm_model* model, int i) {
  return CheckIndex(model, i, true, "fm_model_input") ? model->runtime->input(size_t(i)) : nullptr;
}
const float* fm_model_output(const fm_model* model, int i) {
  return CheckIndex(model, i, false, "fm_model_output") ? model->runtime->output(size_t(i))
                                                        : nullptr;
}
int fm_model_run(fm_model* model) {
  if (!CheckModel(model, "fm_model_run")) return -1;
  fm::Status s = model->runtime->Run();
  if (Failed(s)) return -1;
  return 0;
}
const char* fm_model_metadata(const fm_model* model, const char* key) {
  if (!CheckModel(model, "fm_model_metadata")) return nullptr;
  if (!key) {
    SetError("fm_model_metadata: key is NULL");
    return nullptr;
  }
  auto it = model->graph->metadata.find(key);
  return it == model->graph->metadata.end() ? nullptr : it->second.c_str();
}

fm_pipeline* fm_pipeline_create(const uint8_t* detector, size_t detector_size,
                                const uint8_t* classifier, size_t classifier_size, float min_score,
                                int threads) {
  return Guarded("fm_pipeline_create", [&]() -> fm_pipeline* {
    if (!detector || detector_size == 0) {
      SetError("fm_pipeline_create: no detector model bytes");
      return nullptr;
    }
    if (!classifier && classifier_size != 0) {
      SetError("fm_pipeline_create: classifier is NULL but its size is not 0");
      return nullptr;
    }
    fm::ModelSource det, cls;
    det.data = detector;
    det.size = detector_size;
    cls.data = classifier;
    cls.size = classifier_size;
    fm::PipelineOptions options;
    options.min_score = min_score;
    options.threads = threads;
    auto p = std::make_unique<fm_pipeline>();
    if (Failed(fm::LoadPipeline(det, cls, options, &p->pipeline))) return nullptr;
    return p.release();  // owned by the caller until fm_pipeline_free
  });
}

const char* fm_pipeline_run_pixels(fm_pipeline* pipeline, const uint8_t* pixels, int width,
                                   int height, int channels, int stride) {
  if (!CheckPipeline(pipeline, "fm_pipeline_run_pixels")) return nullptr;
  return Guarded("fm_pipeline_run_pixels", [&]() -> const char* {
    fm::ImageView view;
    if (Failed(fm::ViewPixels(pixels, width, height, channels, stride, &view))) return nullptr;
    ReleaseDecodeBuffer(&pipeline->image);
    return RunPipeline(pipeline, view);
  });
}

const char* fm_pipeline_track_pixels(fm_pipeline* pipeline, const uint8_t* pixels, int width,
                                     int height, int channels, int stride, double timestamp_ms) {
  if (!CheckPipeline(pipeline, "fm_pipeline_track_pixels")) return nullptr;
  if (!(timestamp_ms - timestamp_ms == 0.0)) {
    SetError("fm_pipeline_track_pixels: timestamp_ms must be a finite number");
    return nullptr;
  }
  return Guarded("fm_pipeline_track_pixels", [&]() -> const char* {
    fm::ImageView view;
    if (Failed(fm::ViewPixels(pixels, width, height, channels, stride, &view))) return nullptr;
    ReleaseDecodeBuffer(&pipeline->image);
    return RunPipeline(pipeline, view, &timestamp_ms);
  });
}

int fm_pipeline_set_detect_every(fm_pipeline* pipeline, int n) {
  if (!CheckPipeline(pipeline, "fm_pipeline_set_detect_every")) return -1;
  fm::Status s = pipeline->tracker.SetDetectEvery(n);
  if (!s.ok()) {
    SetError("fm_pipeline_set_detect_every: " + s.message());
    return -1;
  }
  return 0;
}

const char* fm_pipeline_run_encoded(fm_pipeline* pipeline, const uint8_t* bytes, size_t size) {
  if (!CheckPipeline(pipeline, "fm_pipeline_run_encoded")) return nullptr;
  return Guarded("fm_pipeline_run_encoded", [&]() -> const char* {
    if (Failed(fm::DecodeImage(bytes, size, &pipeline->image))) return nullptr;
    return RunPipeline(pipeline, pipeline->image);
  });
}

void fm_pipeline_free(fm_pipeline* pipeline) {
  std::unique_ptr<fm_pipeline> owned(pipeline);
}

fm_classifier* fm_classifier_create(const uint8_t* model, size_t model_size, int threads) {
  return Guarded("fm_classifier_create", [&]() -> fm_classifier* {
    if (!model || model_size == 0) {
      SetError("fm_classifier_create: no model bytes");
      return nullptr;
    }
    auto graph = std::make_shared<fm::Graph>();
    fm::Status s = fm::ReadModel(model, model_size, graph.get());
    auto c = std::make_unique<fm_classifier>();
    if (s.ok()) s = c->classifier.Load(graph, threads);
    if (Failed(s)) return nullptr;
    return c.release();  // owned by the caller until fm_classifier_free
  });
}

const char* fm_classifier_run_pixels(fm_classifier* classifier, const uint8_t* pixels, int width,
                                     int height, int channels, int stride) {
  if (!CheckClassifier(classifier, "fm_classifier_run_pixels")) return nullptr;
  return Guarded("fm_classifier_run_pixels", [&]() -> const char* {
    fm::ImageView view;
    if (Failed(fm::ViewPixels(pixels, width, height, channels, stride, &view))) return nullptr;
    ReleaseDecodeBuffer(&classifier->image);
    return RunClassifier(classifier, view);
  });
}

const char* fm_classifier_run_encoded(fm_classifier* classifier, const uint8_t* bytes,
                                      size_t size) {
  if (!CheckClassifier(classifier, "fm_classifier_run_encoded")) return nullptr;
  return Guarded("fm_classifier_run_encoded", [&]() -> const char* {
    if (Failed(fm::DecodeImage(bytes, size, &classifier->image))) return nullptr;
    return RunClassifier(classifier, classifier->image);
  });
}

void fm_classifier_free(fm_classifier* classifier) {
  std::unique_ptr<fm_classifier> owned(classifier);
}

}  // extern "C"
