// pipeline.cpp - see pipeline.h.
#include "vision/pipeline.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <new>
#include <sstream>

#include "model/model_format.h"

namespace fm {
namespace {

bool ParseFloats(const std::string& text, std::vector<float>* out) {
  out->clear();
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    char* end = nullptr;
    const float v = std::strtof(item.c_str(), &end);
    if (end == item.c_str() || *end != '\0' || !(v - v == 0.f)) return false;
    out->push_back(v);
  }
  return !out->empty();
}

std::string Meta(const Graph& g, const std::string& key, const std::string& fallback = "") {
  auto it = g.metadata.find(key);
  return it == g.metadata.end() ? fallback : it->second;
}

Status CheckImageInput(const Graph& g, const char* what, int* h, int* w, int* c) {
  if (g.inputs.size() != 1) return Errorf(what, ": expected 1 input, got ", g.inputs.size());
  const Shape& s = g.ShapeOf(g.inputs[0]);
  if (s.size() != 4 || s[0] != 1 || s[1] < 8 || s[2] < 8 || s[1] > 1024 || s[2] > 1024 ||
      (s[3] != 3 && s[3] != 1))
    return Errorf(what, ": input ", ShapeToString(s), " is not an image [1, H, W, 1 or 3]");
  *h = int(s[1]);
  *w = int(s[2]);
  *c = int(s[3]);
  return Status::Ok();
}

// The first `max` characters of metadata for a message.
std::string Abbreviated(const std::string& text, size_t max = 40) {
  return text.size() <= max ? text : text.substr(0, max) + "...";
}

}  // namespace

Status ReadAnchorOptions(const Graph& d, int input_size, int64_t rows, AnchorOptions* anchors) {
  anchors->input_size = input_size;
  std::vector<float> v;
  const std::string strides = Meta(d, "anchor_strides");
  if (!strides.empty()) {
    if (!ParseFloats(strides, &v))
      return Errorf("detector: bad anchor_strides '", Abbreviated(strides), "'");
    anchors->strides.clear();
    for (float s : v) {
      if (s < 1 || s > input_size) return Errorf("detector: anchor stride ", s, " out of range");
      anchors->strides.push_back(int(s));
    }
    if (!ParseFloats(Meta(d, "anchor_interpolated_scale_aspect_ratio", "1"), &v))
      return Errorf("detector: bad anchor_interpolated_scale_aspect_ratio");
    anchors->interpolated_scale_aspect_ratio = v[0];
  } else if (rows == 2304) {  // BlazeFace full range: one 48x48 layer
    anchors->strides = {input_size / 48};
    anchors->interpolated_scale_aspect_ratio = 0.f;
  }
  const int64_t count = CountAnchors(*anchors);
  if (count == rows) return Status::Ok();
  std::string used;
  for (int s : anchors->strides) used += (used.empty() ? "" : ",") + std::to_string(s);
  return Errorf("detector: anchor_strides '", Abbreviated(used), "' (interpolated ",
                anchors->interpolated_scale_aspect_ratio, ") give ", count, " anchors for a ",
                input_size, " px input, but the output has ", rows, " rows");
}

std::vector<std::string> ReadLabels(const Graph& g) {
  std::vector<std::string> labels;
  std::stringstream in(Meta(g, "labels"));
  std::string item;
  while (std::getline(in, item, ',')) labels.push_back(item);
  if (!labels.empty() || g.outputs.size() != 1) return labels;
  const Shape& out = g.ShapeOf(g.outputs[0]);
  const int64_t n = out.size() == 2 && out[0] == 1 && out[1] <= 100000 ? out[1] : 0;
  for (int64_t k = 0; k < n; ++k) labels.push_back(std::to_string(k));
  return labels;
}

Status ReadNormalization(const Graph& g, Normalization* norm) {
  *norm = Normalization();
  std::vector<float> v;
  const std::string scale = Meta(g, "norm_scale", "1"), offset = Meta(g, "norm_offset", "0");
  if (!ParseFloats(scale, &v) || (v.size() != 1 && v.size() != 3))
    return Errorf("metadata norm_scale '", scale, "' must be 1 or 3 numbers");
  for (int c = 0; c < 3; ++c) norm->scale[c] = v[v.size() == 1 ? 0 : size_t(c)];
  if (!ParseFloats(offset, &v) || (v.size() != 1 && v.size() != 3))
    return Errorf("metadata norm_offset '", offset, "' must be 1 or 3 numbers");
  for (int c = 0; c < 3; ++c) norm->offset[c] = v[v.size() == 1 ? 0 : size_t(c)];
  const std::string order = Meta(g, "channel_order", "rgb");
  if (order != "rgb" && order != "bgr")
    return Errorf("metadata channel_order '", order, "' must be rgb or bgr");
  norm->bgr = order == "bgr";
  return Status::Ok();
}

Status Pipeline::Create(std::shared_ptr<const Graph> detector,
                        std::shared_ptr<const Graph> classifier, const PipelineOptions& options,
                        std::unique_ptr<Pipeline>* out) {
  if (!detector) return Errorf("pipeline: no detector model");
  auto p = std::make_unique<Pipeline>();
  const Graph& d = *detector;
  int h, w, c;
  FM_RETURN_IF_ERROR(CheckImageInput(d, "detector", &h, &w, &c));
  if (h != w || c != 3)
    return Errorf("detector: input must be square RGB, got ", h, "x", w, "x", c);
  if (d.outputs.empty()) return Errorf("detector: no outputs");
  const Shape& raw = d.ShapeOf(d.outputs[0]);
  if (raw.size() != 3 || raw[0] != 1 || raw[2] != 17)
    return Errorf("detector: output ", ShapeToString(raw), " is not BlazeFace's [1, anchors, 17]");
  p->det_size_ = h;
  std::vector<float> v;
  if (!ParseFloats(Meta(d, "score_column", "16"), &v) || (v[0] != 0 && v[0] != 16))
    return Errorf("detector: score_column must be 0 or 16");
  p->score_column_ = int(v[0]);
  p->regressor_column_ = p->score_column_ == 0 ? 1 : 0;
  AnchorOptions anchors;
  FM_RETURN_IF_ERROR(ReadAnchorOptions(d, h, raw[1], &anchors));
  p->anchors_ = GenerateAnchors(anchors);
  FM_RETURN_IF_ERROR(ReadNormalization(d, &p->det_norm_).Prefix("detector: "));
  p->det_norm_.pad = 0.f;  // letterbox padding: 0 in the normalised range
  // Default thresholds measured on the real scenes (tools/eval_scenes.cpp): BlazeFace scores
  // masked faces lower than MediaPipe's 0.5/0.6 cut-offs expect, so the whole-picture pass uses
  // 0.45; tiles see more clutter and use 0.7.
  // A trained detector carries the thresholds chosen for it (tools/train/detect_train.cpp).
  float default_min = 0.45f, default_tile = -1.f;
  const bool min_ok = ParseFloats(Meta(d, "pipeline_min_score", "0.45"), &v);
  if (min_ok) default_min = v[0];
  const bool tile_ok = ParseFloats(Meta(d, "pipeline_tile_min_score", "-1"), &v);
  if (tile_ok) default_tile = v[0];
  if (!min_ok || !tile_ok || !(default_min >= 0.f && default_min <= 1.f) || !(default_tile <= 1.f))
    return Errorf("detector: pipeline_min_score / pipeline_tile_min_score outside 0..1");
  p->decode_.min_score = options.min_score >= 0 ? options.min_score : default_min;
  if (!(p->decode_.min_score >= 0.f && p->decode_.min_score <= 1.f))
    return Errorf("pipeline: min score ", p->decode_.min_score, " is outside 0..1");
  p->tile_min_score_ = options.tile_min_score >= 0 ? options.tile_min_score
                       : default_tile >= 0         ? default_tile
                                                   : std::max(p->decode_.min_score, 0.7f);
  if (!(p->tile_min_score_ <= 1.f))
    return Errorf("pipeline: tile min score ", p->tile_min_score_, " is outside 0..1");
  // Where the classifier's crop goes relative to this detector's box
  // (tools/train/detect_train.cpp).
  const std::string crop_box = Meta(d, "crop_box", "1,0,0");
  if (!ParseFloats(crop_box, &v) || v.size() != 3 || !(v[0] >= 0.25f && v[0] <= 4.f) ||
      !(std::fabs(v[1]) <= 1.f && std::fabs(v[2]) <= 1.f))
    return Errorf("detector: crop_box '", crop_box,
                  "' is not scale (0.25..4), dx, dy (-1..1) separated by commas");
  std::copy(v.begin(), v.end(), p->crop_box_);
  if (options.max_faces < 1 || options.max_faces > 1000)
    return Errorf("pipeline: max_faces must be 1..1000");
  p->max_faces_ = options.max_faces;
  p->tiling_ = options.tiling;
  if (!(options.min_tile >= 0.5f && options.min_tile <= 8.f))
    return Errorf("pipeline: min_tile ", options.min_tile, " is outside 0.5..8 detector inputs");
  p->min_tile_ = options.min_tile;

  RuntimeOptions ro;
  ro.backend = options.backend;
  ro.threads = options.threads;
  ro.sparse_hint = options.sparse;
  FM_RETURN_IF_ERROR(Runtime::Create(detector, ro, &p->detector_).Prefix("detector: "));
  if (classifier) {
    const Graph& k = *classifier;
    FM_RETURN_IF_ERROR(CheckImageInput(k, "classifier", &p->cls_h_, &p->cls_w_, &p->cls_c_));
    const std::string labels = Meta(k, "labels");
    p->labels_ = ReadLabels(k);
    if (k.outputs.size() != 1 || k.ShapeOf(k.outputs[0]) != Shape{1, int64_t(p->labels_.size())})
      return Errorf("classifier: output must be [1, ", p->labels_.size(), "] for labels '", labels,
                    "'");
    FM_RETURN_IF_ERROR(ReadNormalization(k, &p->cls_norm_).Prefix("classifier: "));
    p->cls_norm_.pad = p->cls_norm_.offset[0];  // outside the photo: black
    p->cls_norm_.grey = p->cls_c_ == 1;
    if (ParseFloats(Meta(k, "crop_margin", "1.3"), &v) && v[0] >= 0.5f && v[0] <= 4.f)
      p->crop_margin_ = v[0];
    // Top probability under which a label is shown as a guess (tools/train: chosen on validation).
    const std::string unsure = Meta(k, "unsure_below");
    if (!unsure.empty()) {
      if (!ParseFloats(unsure, &v) || v.size() != 1 || !(v[0] >= 0.f && v[0] <= 1.f))
        return Errorf("classifier: unsure_below '", unsure, "' is not one number in 0..1");
      p->unsure_below_ = v[0];
    }
    FM_RETURN_IF_ERROR(Runtime::Create(classifier, ro, &p->classifier_).Prefix("classifier: "));
  }
  *out = std::move(p);
  return Status::Ok();
}

Status Pipeline::DetectSquare(const ImageView& image, float x0, float y0, float side, bool drop_cut,
                              float min_score, std::vector<Detection>* out) {
  const Affine map = CropMap(x0, y0, x0 + side, y0 + side, det_size_, det_size_);
  WarpToTensor(image, map, det_size_, det_size_, det_norm_, detector_->input(0));
  FM_RETURN_IF_ERROR(detector_->Run());
  DecodeOptions decode = decode_;
  decode.min_score = min_score;
  std::vector<Detection> dets = DecodeBlazeFace(detector_->output(0), 17, score_column_,
                                                regressor_column_, anchors_, det_size_, decode);
  const float k = side / float(det_size_);
  const float margin = side * 0.02f;
  for (Detection& d : dets) {
    // Tensor pixels -> image pixels.
    d.x0 = x0 + d.x0 * k;
    d.x1 = x0 + d.x1 * k;
    d.y0 = y0 + d.y0 * k;
    d.y1 = y0 + d.y1 * k;
    for (auto& p : d.keypoints) {
      p[0] = x0 + p[0] * k;
      p[1] = y0 + p[1] * k;
    }
    if (drop_cut && ((d.x0 < x0 + margin && x0 > 0) || (d.y0 < y0 + margin && y0 > 0) ||
                     (d.x1 > x0 + side - margin && x0 + side < float(image.width)) ||
                     (d.y1 > y0 + side - margin && y0 + side < float(image.height))))
      continue;
    out->push_back(d);
  }
  return Status::Ok();
}

Status Pipeline::Detect(const ImageView& image, std::vector<Detection>* detections,
                        bool allow_tiles) {
  detections->clear();
  if (image.empty()) return Errorf("pipeline: empty or inconsistent image");
  // Large photos are box-filtered first so the detector does not see aliasing; coordinates are
  // mapped back to the original at the end.
  const int longer = std::max(image.width, image.height);
  const int shorter = std::min(image.width, image.height);
  const int factor = int(float(std::min(shorter, longer / 2)) / float(det_size_) / 2.f);
  ImageView src = image;
  if (factor >= 2) {
    Downscale(image, factor, &scaled_);
    src = scaled_;
  }
  const float W = float(src.width), H = float(src.height);
  // The whole picture, letterboxed into the centred square.
  const float side = std::max(W, H);
  FM_RETURN_IF_ERROR(DetectSquare(src, (W - side) * 0.5f, (H - side) * 0.5f, side, false,
                                  decode_.min_score, detections));
  const bool tiles =
      allow_tiles && (tiling_ == PipelineOptions::Tiling::kOn ||
                      (tiling_ == PipelineOptions::Tiling::kAuto && longer >= 2 * det_size_));
  if (tiles) {
    // Square tiles half the shorter side (at least min_tile detector inputs), overlapping by a
    // third.
    const float t = std::max(float(det_size_) * min_tile_, std::min(W, H) * 0.5f);
    const float step = t * 2.f / 3.f;
    const int nx = std::max(1, int(std::ceil((W - t) / step)) + 1);
    const int ny = std::max(1, int(std::ceil((H - t) / step)) + 1);
    for (int iy = 0; iy < ny; ++iy)
      for (int ix = 0; ix < nx; ++ix) {
        const float tx = nx == 1 ? (W - t) * 0.5f : std::min(float(ix) * step, W - t);
        const float ty = ny == 1 ? (H - t) * 0.5f : std::min(float(iy) * step, H - t);
        FM_RETURN_IF_ERROR(DetectSquare(src, tx, ty, t, true, tile_min_score_, detections));
      }
    *detections = WeightedNms(std::move(*detections), decode_.nms_iou);
  }
  const float bx = float(image.width) / W, by = float(image.height) / H;
  for (Detection& d : *detections) {
    d.x0 = std::max(0.f, d.x0 * bx);
    d.x1 = std::min(float(image.width), d.x1 * bx);
    d.y0 = std::max(0.f, d.y0 * by);
    d.y1 = std::min(float(image.height), d.y1 * by);
    for (auto& k : d.keypoints) {
      k[0] *= bx;
      k[1] *= by;
    }
  }
  if (int(detections->size()) > max_faces_) detections->resize(size_t(max_faces_));
  std::stable_sort(
      detections->begin(), detections->end(),
      [](const Detection& a, const Detection& b) { return a.x0 + a.x1 < b.x0 + b.x1; });
  return Status::Ok();
}

Affine Pipeline::UprightCrop(const Detection& det, int crop_w, int crop_h, float margin) {
  const float cx = (det.x0 + det.x1) * 0.5f, cy = (det.y0 + det.y1) * 0.5f;
  const float side = std::max(det.x1 - det.x0, det.y1 - det.y0) * margin;
  // Eye line: right eye (keypoint 0, image left) to left eye (keypoint 1).
  const float ex = det.keypoints[1][0] - det.keypoints[0][0];
  const float ey = det.keypoints[1][1] - det.keypoints[0][1];
  const float angle = (ex == 0.f && ey == 0.f) ? 0.f : std::atan2(ey, ex);
  // One scale for both axes: the shorter crop side spans `side`.
  const float k = side / float(std::min(crop_w, crop_h));
  const float c = std::cos(angle) * k, s = std::sin(angle) * k;
  const float half_w = float(crop_w) * 0.5f, half_h = float(crop_h) * 0.5f;
  // The crop centre (half_w, half_h) lands on the box centre.
  Affine a;
  a.m[0] = c;
  a.m[1] = -s;
  a.m[2] = cx - c * half_w + s * half_h;
  a.m[3] = s;
  a.m[4] = c;
  a.m[5] = cy - s * half_w - c * half_h;
  return a;
}

void MarkConfidence(float unsure_below, Face* face) {
  face->confident = face->label < 0 || size_t(face->label) >= face->probs.size() ||
                    face->probs[size_t(face->label)] >= unsure_below;
}

Detection Pipeline::ClassifierBox(const Detection& det) const {
  Detection box = det;
  if (crop_box_[0] != 1.f || crop_box_[1] != 0.f || crop_box_[2] != 0.f) {
    const float side = std::max(det.x1 - det.x0, det.y1 - det.y0);
    const float cx = (det.x0 + det.x1) * 0.5f + crop_box_[1] * side;
    const float cy = (det.y0 + det.y1) * 0.5f + crop_box_[2] * side;
    const float hw = (det.x1 - det.x0) * 0.5f * crop_box_[0],
                hh = (det.y1 - det.y0) * 0.5f * crop_box_[0];
    box.x0 = cx - hw, box.x1 = cx + hw, box.y0 = cy - hh, box.y1 = cy + hh;
  }
  return box;
}

Status Pipeline::Classify(const ImageView& image, const Detection& det, Face* face) {
  face->det = det;
  face->label = -1;
  face->probs.clear();
  face->confident = true;
  if (!classifier_) return Status::Ok();
  float* in = classifier_->input(0);
  const Detection box = ClassifierBox(det);
  const Affine map = UprightCrop(box, cls_w_, cls_h_, crop_margin_);
  WarpToTensor(image, map, cls_w_, cls_h_, cls_norm_, in);
  FM_RETURN_IF_ERROR(classifier_->Run());
  const float* probs = classifier_->output(0);
  face->probs.assign(probs, probs + labels_.size());
  face->label = int(std::max_element(face->probs.begin(), face->probs.end()) - face->probs.begin());
  MarkConfidence(unsure_below_, face);
  return Status::Ok();
}

Status Pipeline::Run(const ImageView& image, std::vector<Face>* faces, bool allow_tiles) {
  FM_RETURN_IF_ERROR(Detect(image, &detections_, allow_tiles));
  faces->resize(detections_.size());
  for (size_t i = 0; i < detections_.size(); ++i)
    FM_RETURN_IF_ERROR(Classify(image, detections_[i], &(*faces)[i]));
  return Status::Ok();
}

namespace {

// One model from a file or from bytes; `what` ("detector", "classifier") names bytes in errors.
Status ReadModelSource(const ModelSource& src, const char* what,
                       std::shared_ptr<const Graph>* out) {
  const std::string name = src.path.empty() ? std::string(what) + " model" : src.path;
  try {
    auto graph = std::make_shared<Graph>();
    if (!src.path.empty()) {
      FM_RETURN_IF_ERROR(ReadModelFile(src.path, graph.get()));
    } else {
      if (!src.data || src.size == 0) return Errorf(name, ": no model bytes");
      FM_RETURN_IF_ERROR(
          ReadModel(src.data, src.size, graph.get()).Prefix(std::string(what) + " "));
    }
    *out = std::move(graph);
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return Errorf(name, ": out of memory");
  }
}

}  // namespace

Status ReadPipelineModels(const ModelSource& detector, const ModelSource& classifier,
                          PipelineModels* out) {
  *out = PipelineModels();
  PipelineModels m;  // handed out whole or not at all
  FM_RETURN_IF_ERROR(ReadModelSource(detector, "detector", &m.detector));
  if (classifier.given())
    FM_RETURN_IF_ERROR(ReadModelSource(classifier, "classifier", &m.classifier));
  *out = std::move(m);
  return Status::Ok();
}

Status LoadPipeline(const ModelSource& detector, const ModelSource& classifier,
                    const PipelineOptions& options, std::unique_ptr<Pipeline>* out) {
  PipelineModels models;
  FM_RETURN_IF_ERROR(ReadPipelineModels(detector, classifier, &models));
  return Pipeline::Create(models.detector, models.classifier, options, out);
}

}  // namespace fm
