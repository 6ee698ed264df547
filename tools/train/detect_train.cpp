// detect_train.cpp - see detect_train.h.
#include "detect_train.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "detect_data.h"
#include "detect_loss.h"
#include "detection_metrics.h"
#include "graph_net.h"
#include "model/model_format.h"
#include "runtime/runtime.h"
#include "vision/pipeline.h"

#include <stb/stb_image_write.h>

namespace fm::train {

namespace {

// The anchors the pipeline generates for this detector (engine/vision/pipeline.h
// ReadAnchorOptions).
Status DetectorAnchors(const Graph& g, std::vector<Anchor>* anchors, int* size) {
  const Shape& in = g.ShapeOf(g.inputs[0]);
  if (in.size() != 4 || in[1] != in[2] || in[3] != 3)
    return Errorf("detector: input ", ShapeToString(in), " is not [1, S, S, 3]");
  *size = int(in[1]);
  if (g.outputs.size() != 1 || g.ShapeOf(g.outputs[0]).size() != 3 ||
      g.ShapeOf(g.outputs[0])[2] != kRawColumns)
    return Errorf("detector: the output is not BlazeFace's [1, anchors, 17]");
  auto it = g.metadata.find("score_column");
  if (it == g.metadata.end() || it->second != "0")
    return Errorf("detector: the trainer expects the score logit in column 0 (score_column=0)");
  AnchorOptions ao;
  FM_RETURN_IF_ERROR(ReadAnchorOptions(g, *size, g.ShapeOf(g.outputs[0])[1], &ao));
  *anchors = GenerateAnchors(ao);
  return Status::Ok();
}

struct ValScore {
  float min_score = 0.5f, tile_min_score = 0.7f;
  float min_tile = -1.f;  // the pipeline's smallest tile; < 0: its default
  int faces = 0, found = 0, false_boxes = 0, photos = 0;
  double Recall() const { return faces ? double(found) / faces : 0; }
  double FalsePerPhoto() const { return photos ? double(false_boxes) / photos : 0; }
};

// Runs the pipeline with the given thresholds over the val photos: face recall at IoU >= 0.5
// and false boxes as ../shared/eval/score.py counts them (detections by score each take the
// best free ground truth; IoU < 0.4 = unmatched), through tools/detection_metrics.h.
Status ScoreVal(std::shared_ptr<const Graph> model, const std::vector<Scene>& val, ValScore* vs) {
  PipelineOptions po;
  po.min_score = vs->min_score;
  po.tile_min_score = vs->tile_min_score;
  if (vs->min_tile > 0.f) po.min_tile = vs->min_tile;
  std::unique_ptr<Pipeline> p;
  FM_RETURN_IF_ERROR(Pipeline::Create(model, nullptr, po, &p));
  std::vector<Detection> dets;
  for (const Scene& s : val) {
    FM_RETURN_IF_ERROR(p->Detect(s.image, &dets));
    metrics::Photo photo;
    for (const VocBox& b : s.boxes) photo.truth.push_back({{b.x0, b.y0, b.x1, b.y1}});
    for (const Detection& d : dets) photo.detections.push_back({{d.x0, d.y0, d.x1, d.y1}, d.score});
    const std::vector<bool> found = metrics::FoundTruth(photo, 0.5);
    vs->faces += int(found.size());
    vs->found += int(std::count(found.begin(), found.end(), true));
    vs->false_boxes += metrics::UnmatchedBoxes(photo, 0.4);
    ++vs->photos;
  }
  return Status::Ok();
}

// One batch: augmented views, their faces and anchor assignments, the teacher's raw output on
// the same views (keypoint targets) and the loss gradient.
struct Batch {
  Tensor x, teacher, dout;
  std::vector<std::vector<GtBox>> gts;
  std::vector<std::vector<int>> assign;
};

Status MakeBatch(const std::vector<Scene>& fit, const std::vector<PasteFace>& pastes,
                 const std::vector<Anchor>& anchors, const ViewOptions& vo,
                 const DetLossOptions& lo, uint64_t seed, int step,
                 std::vector<std::unique_ptr<Runtime>>* teachers, Batch* b) {
  const int S = vo.size;
  const size_t rows = anchors.size() * kRawColumns;
  std::vector<Status> errors(teachers->size());
  ParallelFor(b->x.n, [&](int begin, int end, int t) {
    Runtime& rt = *(*teachers)[size_t(t)];
    for (int i = begin; i < end; ++i) {
      Rng rng(seed * 1000003ull + uint64_t(step) * 4099ull + uint64_t(i));
      float* xi = b->x.data() + size_t(i) * b->x.PerSample();
      SampleView(fit[rng.Next() % fit.size()], pastes, vo, &rng, xi, &b->gts[size_t(i)]);
      AssignAnchors(anchors, S, b->gts[size_t(i)], lo, &b->assign[size_t(i)]);
      std::copy(xi, xi + b->x.PerSample(), rt.input(0));
      const Status ts = rt.Run();
      if (!ts.ok()) errors[size_t(t)] = ts;
      std::copy(rt.output(0), rt.output(0) + rows, b->teacher.data() + size_t(i) * rows);
    }
  });
  for (Status& e : errors)
    if (!e.ok()) return e.Prefix("teacher: ");
  return Status::Ok();
}

// The classifier was trained on crops around the converted BlazeFace's boxes (tools/train
// crops); the trained detector draws boxes the way people do (lower and larger). crop_box maps a
// trained box back to the reference's: median side ratio and centre offset over the detections
// both make on the fit photos (IoU >= 0.4).
Status MeasureCropBox(std::shared_ptr<const Graph> reference, std::shared_ptr<const Graph> trained,
                      const std::vector<Scene>& photos, std::string* crop_box) {
  std::unique_ptr<Pipeline> pr, pt;
  FM_RETURN_IF_ERROR(Pipeline::Create(reference, nullptr, {}, &pr));
  FM_RETURN_IF_ERROR(Pipeline::Create(trained, nullptr, {}, &pt));
  std::vector<float> scale, dx, dy;
  std::vector<Detection> a, b;
  for (const Scene& s : photos) {
    FM_RETURN_IF_ERROR(pr->Detect(s.image, &a));
    FM_RETURN_IF_ERROR(pt->Detect(s.image, &b));
    for (const Detection& r : a) {
      const Detection* best = nullptr;
      for (const Detection& t : b)
        if (IoU(r, t) >= 0.4f && (!best || IoU(r, t) > IoU(r, *best))) best = &t;
      if (!best) continue;
      const float sr = std::max(r.x1 - r.x0, r.y1 - r.y0);
      const float st = std::max(best->x1 - best->x0, best->y1 - best->y0);
      scale.push_back(sr / st);
      dx.push_back(((r.x0 + r.x1) - (best->x0 + best->x1)) * 0.5f / st);
      dy.push_back(((r.y0 + r.y1) - (best->y0 + best->y1)) * 0.5f / st);
    }
  }
  if (scale.size() < 20) return Errorf("crop box: only ", scale.size(), " faces found by both");
  auto median = [](std::vector<float> v) {
    std::nth_element(v.begin(), v.begin() + ptrdiff_t(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  char buf[96];
  std::snprintf(buf, sizeof buf, "%.3f,%.3f,%.3f", double(median(scale)), double(median(dx)),
                double(median(dy)));
  *crop_box = buf;
  std::printf("crop_box %s (median over %zu faces both detectors find)\n", buf, scale.size());
  return Status::Ok();
}

constexpr double kMaxFalsePerPhoto = 0.10;

// Thresholds: the best val recall (IoU 0.5) with at most kMaxFalsePerPhoto false boxes per photo
// (the detector issue's target is 0.10 on unseen photos).
Status ChooseThresholds(std::shared_ptr<const Graph> trained, const std::vector<Scene>& val,
                        float min_tile, ValScore* best, std::string* sweep_json) {
  std::ostringstream sweep;
  sweep << "[";
  *best = ValScore{0.5f, 0.7f, min_tile};
  bool have = false;
  // Steps of 0.025 where the choice falls (recall drops fast with the tile threshold there).
  for (float m : {0.3f, 0.4f, 0.5f, 0.55f, 0.6f, 0.625f, 0.65f, 0.675f, 0.7f, 0.725f, 0.75f, 0.8f})
    for (float dt : {0.f, 0.025f, 0.05f, 0.075f, 0.1f, 0.15f, 0.2f, 0.25f, 0.3f}) {
      if (m + dt > 0.951f) continue;
      ValScore vs{m, m + dt, min_tile};
      FM_RETURN_IF_ERROR(ScoreVal(trained, val, &vs));
      std::printf("val  min %.3f tile %.3f: recall %.4f, false boxes/photo %.3f\n",
                  double(vs.min_score), double(vs.tile_min_score), vs.Recall(), vs.FalsePerPhoto());
      sweep << (have || sweep.tellp() > 1 ? "," : "") << "{\"min\":" << vs.min_score
            << ",\"tile\":" << vs.tile_min_score << ",\"recall\":" << vs.Recall()
            << ",\"false_per_photo\":" << vs.FalsePerPhoto() << "}";
      if (vs.FalsePerPhoto() <= kMaxFalsePerPhoto &&
          (!have || vs.Recall() > best->Recall() ||
           (vs.Recall() == best->Recall() && vs.FalsePerPhoto() < best->FalsePerPhoto())))
        *best = vs, have = true;
    }
  sweep << "]";
  if (!have)
    std::printf("val: no thresholds reach %.2f false boxes per photo; using 0.5/0.7\n",
                kMaxFalsePerPhoto);
  std::printf("chosen: min %.3f, tile %.3f\n", double(best->min_score),
              double(best->tile_min_score));
  *sweep_json = sweep.str();
  return Status::Ok();
}

void StampThresholds(const ValScore& chosen, Graph* g) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", double(chosen.min_score));
  g->metadata["pipeline_min_score"] = buf;
  std::snprintf(buf, sizeof buf, "%.3f", double(chosen.tile_min_score));
  g->metadata["pipeline_tile_min_score"] = buf;
}

void Stamp(const DetectFitOptions& o, const Graph& start, Graph* g) {
  g->metadata["name"] = "facemask detector (BlazeFace full-range fine-tuned on masked faces)";
  auto it = start.metadata.find("name");
  g->metadata["source"] = "tools/train-detector: fm_train detector from " +
                          (it == start.metadata.end() ? o.init : it->second);
  g->metadata.erase("min_score");  // MediaPipe's cut-off for the original; see pipeline_*
  std::ostringstream info;
  info << "steps=" << o.steps << ",batch=" << o.batch << ",lr=" << o.opt.lr << ",seed=" << o.seed;
  if (!o.faces.empty()) info << ",paste_faces=" << o.paste_faces;
  info << (o.from_scratch ? ",from_scratch" : ",fine_tuned");
  g->metadata["training"] = info.str();
}

// Thresholds (on val) and crop box (on fit, against the reference detector) for a trained
// detector, then the file.
Status TuneAndWrite(std::shared_ptr<const Graph> reference, std::shared_ptr<Graph> model,
                    const std::vector<Scene>& fit, const std::vector<Scene>& val, float min_tile,
                    const std::string& out, ValScore* chosen, std::string* sweep) {
  FM_RETURN_IF_ERROR(ChooseThresholds(model, val, min_tile, chosen, sweep));
  StampThresholds(*chosen, model.get());
  std::string crop_box;
  FM_RETURN_IF_ERROR(MeasureCropBox(reference, model, fit, &crop_box));
  model->metadata["crop_box"] = crop_box;
  FM_RETURN_IF_ERROR(WriteModelFile(*model, out));
  std::printf("wrote %s\n", out.c_str());
  return Status::Ok();
}

}  // namespace

Status FitDetector(const DetectFitOptions& o) {
  auto start = std::make_shared<Graph>();
  FM_RETURN_IF_ERROR(ReadModelFile(o.init, start.get()));
  std::vector<Anchor> anchors;
  int S = 0;
  FM_RETURN_IF_ERROR(DetectorAnchors(*start, &anchors, &S));
  std::vector<Scene> fit, val;
  FM_RETURN_IF_ERROR(LoadScenes(o.scenes, SceneSplit::kFit, &fit));
  FM_RETURN_IF_ERROR(LoadScenes(o.scenes, SceneSplit::kVal, &val));
  std::vector<PasteFace> pastes;
  if (!o.faces.empty()) FM_RETURN_IF_ERROR(LoadPasteFaces(o.faces, start, o.paste_faces, &pastes));
  std::unique_ptr<GraphNet> net;
  FM_RETURN_IF_ERROR(GraphNet::Create(*start, /*keep_zeros=*/!o.from_scratch, &net));
  if (o.from_scratch) net->Reinitialize(o.seed);
  std::vector<std::unique_ptr<Runtime>> teachers;
  for (int t = 0; t < Threads(); ++t) {
    std::unique_ptr<Runtime> rt;
    FM_RETURN_IF_ERROR(Runtime::Create(start, RuntimeOptions(), &rt));
    teachers.push_back(std::move(rt));
  }
  std::printf("detector: %s, %lld params, %.1f M MACs; %zu fit photos, %zu val photos\n",
              o.init.c_str(), static_cast<long long>(net->NumParams()), double(net->Macs()) / 1e6,
              fit.size(), val.size());
  ValScore base{0.45f, 0.7f, o.min_tile};  // the pipeline's defaults for the converted BlazeFace
  FM_RETURN_IF_ERROR(ScoreVal(start, val, &base));
  std::printf("start model on val (min 0.45, tile 0.70): recall %.4f, false boxes/photo %.3f\n",
              base.Recall(), base.FalsePerPhoto());

  Optimizer opt(net->Params(), o.opt);
  ViewOptions vo;
  vo.size = S;
  const DetLossOptions lo;
  const int B = o.batch, A = int(anchors.size());
  Batch batch{Tensor(B, S, S, 3), Tensor(B, 1, A, kRawColumns), Tensor(B, 1, A, kRawColumns),
              std::vector<std::vector<GtBox>>(static_cast<size_t>(B)),
              std::vector<std::vector<int>>(static_cast<size_t>(B))};
  std::ostringstream history;
  const auto t0 = std::chrono::steady_clock::now();
  DetLoss run;
  int run_steps = 0;
  for (int step = 0; step < o.steps; ++step) {
    FM_RETURN_IF_ERROR(MakeBatch(fit, pastes, anchors, vo, lo, o.seed, step, &teachers, &batch));
    net->Forward(batch.x, true);
    float pos = 0.f;
    for (int i = 0; i < B; ++i)
      pos += PositiveWeight(batch.gts[size_t(i)], batch.assign[size_t(i)]);
    const float norm = 1.f / std::max(pos, 1.f);
    const Tensor& raw = net->Output(0);
    const size_t rows = size_t(A) * kRawColumns;
    for (size_t i = 0; i < size_t(B); ++i) {
      const DetLoss l =
          SampleLoss(raw.data() + i * rows, batch.teacher.data() + i * rows, anchors, S,
                     batch.gts[i], batch.assign[i], norm, lo, batch.dout.data() + i * rows);
      run.cls += l.cls, run.box += l.box, run.keypoints += l.keypoints;
      run.positives += l.positives;
    }
    ++run_steps;
    net->Backward({batch.dout});
    net->MaskGradients();
    const float lr = ScheduledLr(o.opt.lr, float(step), o.warmup, float(o.steps));
    opt.Step(lr);
    if ((step + 1) % 50 == 0 || step + 1 == o.steps) {
      const double sec =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("step %5d  lr %.2e  loss cls %.4f box %.4f kp %.4f  pos/img %.1f  %.0f s\n",
                  step + 1, double(lr), run.cls / run_steps, run.box / run_steps,
                  run.keypoints / run_steps, double(run.positives) / (run_steps * B), sec);
      std::fflush(stdout);
      history << (history.tellp() > 0 ? "," : "") << "{\"step\":" << step + 1
              << ",\"cls\":" << run.cls / run_steps << ",\"box\":" << run.box / run_steps
              << ",\"kp\":" << run.keypoints / run_steps << "}";
      run = DetLoss();
      run_steps = 0;
    }
    if ((step + 1) % 500 == 0 && step + 1 < o.steps) {  // a checkpoint to look at
      Graph ckpt;
      FM_RETURN_IF_ERROR(net->Export(o.fp16, &ckpt));
      FM_RETURN_IF_ERROR(WriteModelFile(ckpt, o.out + ".partial"));
    }
  }

  auto trained = std::make_shared<Graph>();
  FM_RETURN_IF_ERROR(net->Export(o.fp16, trained.get()));
  ValScore chosen;
  std::string sweep;
  Stamp(o, *start, trained.get());
  FM_RETURN_IF_ERROR(TuneAndWrite(start, trained, fit, val, o.min_tile, o.out, &chosen, &sweep));
  if (!o.log_json.empty()) {
    std::ofstream f(o.log_json);
    f << "{\"start_val\":{\"recall\":" << base.Recall()
      << ",\"false_per_photo\":" << base.FalsePerPhoto() << "},\"history\":[" << history.str()
      << "],\"sweep\":" << sweep << ",\"chosen\":{\"min\":" << chosen.min_score
      << ",\"tile\":" << chosen.tile_min_score << "}}\n";
    if (!f) return Errorf("cannot write '", o.log_json, "'");
  }
  return Status::Ok();
}

Status AverageGraphs(const std::vector<Graph>& others, Graph* model) {
  for (size_t k = 0; k < others.size(); ++k) {
    const Graph& g = others[k];
    if (g.tensors.size() != model->tensors.size() || g.nodes.size() != model->nodes.size())
      return Errorf("model ", k + 2, " is not the same graph as the first (", g.nodes.size(),
                    " nodes and ", g.tensors.size(), " tensors against ", model->nodes.size(),
                    " and ", model->tensors.size(), ")");
    for (size_t n = 0; n < g.nodes.size(); ++n)
      if (g.nodes[n].op != model->nodes[n].op || g.nodes[n].inputs != model->nodes[n].inputs)
        return Errorf("model ", k + 2, ": node ", n, " (", g.nodes[n].op,
                      ") differs from the first model's (", model->nodes[n].op, ")");
    for (size_t t = 0; t < g.tensors.size(); ++t)
      if (g.tensors[t].kind != model->tensors[t].kind ||
          g.tensors[t].shape != model->tensors[t].shape ||
          g.tensors[t].data.size() != model->tensors[t].data.size())
        return Errorf("model ", k + 2, ": tensor ", t,
                      " differs in kind or shape from the first model's");
  }
  const double n = double(others.size() + 1);
  for (size_t t = 0; t < model->tensors.size(); ++t) {
    std::vector<float>& d = model->tensors[t].data;
    for (size_t i = 0; i < d.size(); ++i) {
      double sum = d[i];
      bool same = true;
      for (const Graph& g : others) {
        sum += double(g.tensors[t].data[i]);
        same = same && g.tensors[t].data[i] == d[i];
      }
      if (!same) d[i] = float(sum / n);
    }
  }
  std::string info = model->metadata["training"];
  for (const Graph& g : others) {
    auto it = g.metadata.find("training");
    info += " + " + (it == g.metadata.end() ? std::string("?") : it->second);
  }
  model->metadata["training"] = "average of " + std::to_string(others.size() + 1) + ": " + info;
  return Status::Ok();
}

Status RetuneDetector(const DetectFitOptions& o) {
  auto model = std::make_shared<Graph>();
  FM_RETURN_IF_ERROR(ReadModelFile(o.init, model.get()));
  if (!o.average.empty()) {
    std::vector<Graph> others(o.average.size());
    for (size_t k = 0; k < others.size(); ++k)
      FM_RETURN_IF_ERROR(ReadModelFile(o.average[k], &others[k]));
    FM_RETURN_IF_ERROR(AverageGraphs(others, model.get()));
  }
  auto reference = std::make_shared<Graph>();
  FM_RETURN_IF_ERROR(ReadModelFile(o.reference, reference.get()));
  std::vector<Scene> fit, val;
  FM_RETURN_IF_ERROR(LoadScenes(o.scenes, SceneSplit::kFit, &fit));
  FM_RETURN_IF_ERROR(LoadScenes(o.scenes, SceneSplit::kVal, &val));
  ValScore chosen;
  std::string sweep;
  FM_RETURN_IF_ERROR(TuneAndWrite(reference, model, fit, val, o.min_tile, o.out, &chosen, &sweep));
  if (!o.log_json.empty()) {
    std::ofstream f(o.log_json);
    f << "{\"sweep\":" << sweep << ",\"chosen\":{\"min\":" << chosen.min_score
      << ",\"tile\":" << chosen.tile_min_score << "}}\n";
    if (!f) return Errorf("cannot write '", o.log_json, "'");
  }
  return Status::Ok();
}

Status PreviewDetectorViews(const DetectFitOptions& o, int count, const std::string& png) {
  std::vector<Scene> fit;
  FM_RETURN_IF_ERROR(LoadScenes(o.scenes, SceneSplit::kFit, &fit));
  std::vector<PasteFace> pastes;
  if (!o.faces.empty()) {
    auto start = std::make_shared<Graph>();
    FM_RETURN_IF_ERROR(ReadModelFile(o.init, start.get()));
    FM_RETURN_IF_ERROR(LoadPasteFaces(o.faces, start, o.paste_faces, &pastes));
  }
  ViewOptions vo;
  const int S = vo.size, cols = 4, rows = (count + cols - 1) / cols;
  std::vector<uint8_t> grid(size_t(cols * S) * size_t(rows * S) * 3, 0);
  std::vector<float> t(size_t(S) * size_t(S) * 3);
  std::vector<GtBox> gts;
  for (int k = 0; k < count; ++k) {
    Rng rng(o.seed * 1000003ull + uint64_t(k));
    SampleView(fit[rng.Next() % fit.size()], pastes, vo, &rng, t.data(), &gts);
    const int gx = (k % cols) * S, gy = (k / cols) * S;
    auto px = [&](int x, int y) {
      return &grid[(size_t(gy + y) * size_t(cols * S) + size_t(gx + x)) * 3];
    };
    for (int y = 0; y < S; ++y)
      for (int x = 0; x < S; ++x)
        for (int c = 0; c < 3; ++c)
          px(x, y)[c] = uint8_t(
              std::lround((t[(size_t(y) * size_t(S) + size_t(x)) * 3 + size_t(c)] + 1.f) * 127.5f));
    for (const GtBox& b : gts) {
      const uint8_t colour[3] = {uint8_t(b.ignore ? 255 : 0), uint8_t(b.ignore ? 0 : 255), 0};
      const int x0 = std::max(0, int(b.x0)), x1 = std::min(S - 1, int(b.x1));
      const int y0 = std::max(0, int(b.y0)), y1 = std::min(S - 1, int(b.y1));
      for (int x = x0; x <= x1; ++x)
        for (int y : {y0, y1}) std::copy(colour, colour + 3, px(x, y));
      for (int y = y0; y <= y1; ++y)
        for (int x : {x0, x1}) std::copy(colour, colour + 3, px(x, y));
    }
  }
  std::vector<uint8_t> bytes;
  auto append = [](void* ctx, void* data, int size) {
    auto* out = static_cast<std::vector<uint8_t>*>(ctx);
    out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  };
  if (!stbi_write_png_to_func(append, &bytes, cols * S, rows * S, 3, grid.data(), cols * S * 3))
    return Errorf("cannot encode the preview");
  std::ofstream f(png, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  if (!f) return Errorf("cannot write '", png, "'");
  return Status::Ok();
}

}  // namespace fm::train
