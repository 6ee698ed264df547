// dataset.cpp - see dataset.h.
#include "dataset.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <numeric>
#include <sstream>

#include "common.h"
#include "detect_data.h"
#include "model/model_format.h"
#include "scenes.h"
#include "vision/pipeline.h"

namespace fs = std::filesystem;

namespace fm::train {

const char* LabelName(int label) {
  static const char* names[] = {"with_mask", "without_mask", "mask_worn_incorrectly"};
  return label >= 0 && label < kNumClasses ? names[label] : "?";
}
const char* SourceName(int source) {
  static const char* names[] = {"faces", "maskedfacenet", "scenes"};
  return source >= 0 && source < 3 ? names[source] : "?";
}
const char* SplitName(int split) {
  static const char* names[] = {"train", "val", "dev"};
  return split >= 0 && split < 3 ? names[split] : "?";
}

std::string DefaultCachePath(int size) {
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.cache/facemask/crops/crops-" + std::to_string(size) +
         ".bin";
}

// ---------------------------------------------------------------- cache file

namespace {

constexpr char kMagic[8] = {'F', 'M', 'C', 'R', 'O', 'P', 'S', '1'};

template <typename T>
void Put(std::ofstream& f, const T& v) {
  f.write(reinterpret_cast<const char*>(&v), sizeof(T));
}
template <typename T>
bool Get(std::ifstream& f, T* v) {
  return bool(f.read(reinterpret_cast<char*>(v), sizeof(T)));
}

}  // namespace

Status CropSet::Save(const std::string& path) const {
  std::error_code ec;
  if (fs::path(path).has_parent_path()) fs::create_directories(fs::path(path).parent_path(), ec);
  const std::string tmp = path + ".tmp";
  std::ofstream f(tmp, std::ios::binary);
  if (!f) return Errorf("cannot write ", tmp);
  f.write(kMagic, 8);
  Put(f, int32_t(size));
  Put(f, int32_t(ctx_size));
  Put(f, context);
  Put(f, margin);
  Put(f, uint64_t(samples.size()));
  for (const Sample& s : samples) {
    Put(f, s.label), Put(f, s.source), Put(f, s.split), Put(f, s.detected);
    Put(f, s.face_px), Put(f, s.group);
    Put(f, uint32_t(s.name.size()));
    f.write(s.name.data(), std::streamsize(s.name.size()));
  }
  f.write(reinterpret_cast<const char*>(exact.data()), std::streamsize(exact.size()));
  f.write(reinterpret_cast<const char*>(ctx.data()), std::streamsize(ctx.size()));
  f.close();
  if (!f) return Errorf("writing ", tmp, " failed");
  fs::rename(tmp, path, ec);
  if (ec) return Errorf("cannot rename ", tmp, ": ", ec.message());
  return Status::Ok();
}

Status CropSet::Load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Errorf("cannot open crop cache ", path, " (run: fm_train crops)");
  char magic[8];
  int32_t sz = 0, csz = 0;
  uint64_t n = 0;
  if (!f.read(magic, 8) || std::string(magic, 8) != std::string(kMagic, 8) || !Get(f, &sz) ||
      !Get(f, &csz) || !Get(f, &context) || !Get(f, &margin) || !Get(f, &n) || sz < 8 || sz > 512 ||
      csz < sz || csz > 1024 || n > 10'000'000)
    return Errorf(path, ": not a crop cache");
  size = sz;
  ctx_size = csz;
  samples.resize(n);
  for (Sample& s : samples) {
    uint32_t len = 0;
    if (!Get(f, &s.label) || !Get(f, &s.source) || !Get(f, &s.split) || !Get(f, &s.detected) ||
        !Get(f, &s.face_px) || !Get(f, &s.group) || !Get(f, &len) || len > 4096 ||
        s.label >= kNumClasses)
      return Errorf(path, ": truncated sample list");
    s.name.resize(len);
    if (!f.read(s.name.data(), len)) return Errorf(path, ": truncated name");
  }
  exact.resize(n * size_t(size) * size_t(size) * 3);
  ctx.resize(n * size_t(ctx_size) * size_t(ctx_size) * 3);
  if (!f.read(reinterpret_cast<char*>(exact.data()), std::streamsize(exact.size())) ||
      !f.read(reinterpret_cast<char*>(ctx.data()), std::streamsize(ctx.size())))
    return Errorf(path, ": truncated pixels");
  return Status::Ok();
}

// ---------------------------------------------------------------- building

namespace {

struct Job {
  std::string path, rel;  // file, and its name relative to the data dir
  int source = 0, label = 0;
};

// VOC class names -> our labels.
int LabelOf(const std::string& name) {
  return name == "with_mask" ? kWithMask : name == "without_mask" ? kWithoutMask : kIncorrect;
}

// A level detection for a box (no keypoints: the crop is not turned).
Detection BoxDetection(float x0, float y0, float x1, float y1) {
  Detection d{};
  d.x0 = x0, d.y0 = y0, d.x1 = x1, d.y1 = y1;
  d.score = 0;
  const float cy = (y0 + y1) * 0.5f;
  d.keypoints[0][0] = x0, d.keypoints[0][1] = cy;
  d.keypoints[1][0] = x1, d.keypoints[1][1] = cy;
  return d;
}

void Cut(const Image& img, const Detection& det, int side, float margin, uint8_t* out) {
  std::vector<float> buf(size_t(side) * size_t(side) * 3);
  WarpToTensor(img, Pipeline::UprightCrop(det, side, margin), side, side, Normalization(),
               buf.data());
  for (size_t i = 0; i < buf.size(); ++i)
    out[i] = uint8_t(std::lround(std::min(255.f, std::max(0.f, buf[i]))));
}

// 9x9 grid of mean luma over the whole photo.
std::array<float, 81> LumaGrid(const Image& img) {
  std::array<float, 81> g{};
  std::array<int, 81> cnt{};
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) {
      const uint8_t* p = &img.rgb[(size_t(y) * size_t(img.width) + size_t(x)) * 3];
      const int cell = (y * 9 / img.height) * 9 + x * 9 / img.width;
      g[size_t(cell)] += 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
      cnt[size_t(cell)]++;
    }
  for (size_t i = 0; i < 81; ++i) g[i] /= float(std::max(cnt[i], 1));
  return g;
}

// dHash (64 bits) of the grid under each of the 8 flips / quarter turns.
std::array<uint64_t, 8> DihedralHashes(const std::array<float, 81>& g) {
  std::array<uint64_t, 8> out{};
  for (int t = 0; t < 8; ++t) {
    auto at = [&](int y, int x) {
      if (t & 4) std::swap(x, y);
      if (t & 1) x = 8 - x;
      if (t & 2) y = 8 - y;
      return g[size_t(y * 9 + x)];
    };
    uint64_t h = 0;
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 8; ++x) h = (h << 1) | (at(y, x) < at(y, x + 1) ? 1u : 0u);
    out[size_t(t)] = h;
  }
  return out;
}

struct UnionFind {
  std::vector<int> p;
  explicit UnionFind(size_t n) : p(n) { std::iota(p.begin(), p.end(), 0); }
  int Find(int a) { return p[size_t(a)] == a ? a : p[size_t(a)] = Find(p[size_t(a)]); }
  void Join(int a, int b) {
    a = Find(a), b = Find(b);
    if (a != b) p[size_t(std::max(a, b))] = std::min(a, b);
  }
};

struct Result {
  std::vector<Sample> samples;
  std::vector<std::vector<uint8_t>> exact, ctx;
  std::array<uint64_t, 8> hashes{};
  std::string error;
};

// The photos of one folder (sorted; with o.limit an evenly spread subset, still deterministic).
void AddJobs(const CropOptions& o, const std::string& rel_dir, int source, int label,
             const char* ext, std::vector<Job>* jobs) {
  const fs::path dir = fs::path(o.data_dir) / rel_dir;
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ext) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  if (o.limit > 0 && int(names.size()) > o.limit) {
    std::vector<std::string> sub;
    for (int i = 0; i < o.limit; ++i)
      sub.push_back(names[size_t(i) * names.size() / size_t(o.limit)]);
    names = sub;
  }
  for (const auto& n : names)
    jobs->push_back(Job{(dir / n).string(), rel_dir + "/" + n, source, label});
}

// The photo list, in a fixed order.
std::vector<Job> ListJobs(const CropOptions& o) {
  std::vector<Job> jobs;
  AddJobs(o, "faces/with_mask", kFaces, kWithMask, ".jpg", &jobs);
  AddJobs(o, "faces/without_mask", kFaces, kWithoutMask, ".jpg", &jobs);
  AddJobs(o, "maskedfacenet/with_mask", kMaskedFaceNet, kWithMask, ".jpg", &jobs);
  AddJobs(o, "maskedfacenet/mask_weared_incorrect", kMaskedFaceNet, kIncorrect, ".jpg", &jobs);
  AddJobs(o, "scenes", kScenes, 0, ".xml", &jobs);
  return jobs;
}

// One decoded photo being cut into the crops of its faces.
struct PhotoCutter {
  const CropOptions& o;
  int ctx_size;
  const Pipeline* pipe;  // null: no detector
  const Job& job;
  const Image& img;
  Result& r;

  // One face: its exact and context crops, and its sample.
  void Emit(const Detection& found, int label, bool detected, int face_px, const std::string& name,
            uint32_t group) const {
    // The deployed crop: the detector's crop_box maps its box (and a labelled box, drawn the same
    // way on scenes/) to the box the classifier is cut around.
    const Detection det =
        pipe && (detected || job.source == kScenes) ? pipe->ClassifierBox(found) : found;
    Sample smp;
    smp.label = uint8_t(label);
    smp.source = uint8_t(job.source);
    smp.detected = detected ? 1 : 0;
    smp.face_px = uint16_t(std::min(face_px, 65535));
    smp.group = group;
    smp.name = name;
    r.samples.push_back(smp);
    r.exact.emplace_back(size_t(o.size * o.size * 3));
    r.ctx.emplace_back(size_t(ctx_size * ctx_size * 3));
    Cut(img, det, o.size, o.margin, r.exact.back().data());
    Cut(img, det, ctx_size, o.margin * o.context, r.ctx.back().data());
  }

  // scenes/: every labelled box wide enough, cut around the detection matching it best (IoU >=
  // 0.3, each detection used once), else around the box itself.
  void SceneFaces(const std::vector<VocBox>& truth, const std::vector<Detection>& dets) const {
    const std::string stem = fs::path(job.path).stem().string();
    std::vector<char> used(dets.size(), 0);
    for (size_t b = 0; b < truth.size(); ++b) {
      const VocBox& tb = truth[b];
      if (tb.x1 - tb.x0 < float(o.min_scene_px)) continue;
      int best = -1;
      float best_iou = 0.3f;
      for (size_t d = 0; d < dets.size(); ++d) {
        const float iou = BoxIoU(tb, dets[d]);
        if (!used[d] && iou >= best_iou) best_iou = iou, best = int(d);
      }
      if (best >= 0) used[size_t(best)] = 1;
      const Detection det =
          best >= 0 ? dets[size_t(best)] : BoxDetection(tb.x0, tb.y0, tb.x1, tb.y1);
      Emit(det, LabelOf(tb.label), best >= 0, int(tb.x1 - tb.x0),
           "scenes/" + stem + ".jpg#" + std::to_string(b), Fnv1a(stem));
    }
  }

  // Face-centred photos: the largest detection centred in the photo and at least a fifth of its
  // shorter side wide (anything else is not the photo's subject), else a centred square.
  void CentredFace(const std::vector<Detection>& dets) const {
    int best = -1;
    float best_area = 0;
    for (size_t d = 0; d < dets.size(); ++d) {
      const float cxf = (dets[d].x0 + dets[d].x1) * 0.5f / float(img.width);
      const float cyf = (dets[d].y0 + dets[d].y1) * 0.5f / float(img.height);
      const float area = (dets[d].x1 - dets[d].x0) * (dets[d].y1 - dets[d].y0);
      const float wf = (dets[d].x1 - dets[d].x0) / float(std::min(img.width, img.height));
      if (cxf > 0.25f && cxf < 0.75f && cyf > 0.2f && cyf < 0.8f && wf > 0.2f && area > best_area)
        best_area = area, best = int(d);
    }
    const float side = float(std::min(img.width, img.height)) / o.margin;
    const float mx = float(img.width) * 0.5f, my = float(img.height) * 0.5f;
    const Detection det =
        best >= 0 ? dets[size_t(best)]
                  : BoxDetection(mx - side / 2, my - side / 2, mx + side / 2, my + side / 2);
    uint32_t group = 0;
    if (job.source == kMaskedFaceNet) {
      const std::string fname = fs::path(job.path).filename().string();
      group = Fnv1a(fname.substr(0, fname.find('_')));
    }
    Emit(det, job.label, best >= 0, int(det.x1 - det.x0), job.rel, group);
    r.hashes = DihedralHashes(LumaGrid(img));
  }
};

// One job: decode its photo (scenes/: the photo beside the VOC file), detect, cut. A failure is
// kept in r->error. img and dets are the calling thread's buffers.
void CutJob(const CropOptions& o, int ctx_size, Pipeline* pipe, const Job& job, Image* img,
            std::vector<Detection>* dets, Result* r) {
  std::string photo = job.path;
  std::vector<VocBox> truth;
  if (job.source == kScenes) {
    truth = ReadVocBoxes(job.path);
    photo = fs::path(job.path).replace_extension(".jpg").string();
    if (!fs::exists(photo)) photo = fs::path(job.path).replace_extension(".png").string();
  }
  Status s = DecodeImageFile(photo, img);
  if (!s.ok()) {
    r->error = s.message();
    return;
  }
  dets->clear();
  if (pipe) {
    s = pipe->Detect(*img, dets);
    if (!s.ok()) {
      r->error = s.message();
      return;
    }
  }
  const PhotoCutter cutter{o, ctx_size, pipe, job, *img, *r};
  if (job.source == kScenes)
    cutter.SceneFaces(truth, *dets);
  else
    cutter.CentredFace(*dets);
}

// Every job cut, on Threads() threads (each with its own pipeline when there is a detector).
Status CutJobs(const CropOptions& o, int ctx_size, const std::shared_ptr<Graph>& detector,
               const std::vector<Job>& jobs, std::vector<Result>* results) {
  results->assign(jobs.size(), Result());
  std::vector<Status> errors(static_cast<size_t>(Threads()));
  ParallelFor(int(jobs.size()), [&](int begin, int end, int t) {
    std::unique_ptr<Pipeline> pipe;
    if (detector) {
      Status s = Pipeline::Create(detector, nullptr, PipelineOptions(), &pipe);
      if (!s.ok()) {
        errors[size_t(t)] = s;
        return;
      }
    }
    Image img;
    std::vector<Detection> dets;
    for (int j = begin; j < end; ++j)
      CutJob(o, ctx_size, pipe.get(), jobs[size_t(j)], &img, &dets, &(*results)[size_t(j)]);
  });
  for (const Status& s : errors) FM_RETURN_IF_ERROR(s);
  return Status::Ok();
}

struct DuplicateGroups {
  size_t groups = 0, photos = 0;
  int hash_links = 0, largest = 0;
};

// faces/: near-duplicate groups (name family, or perceptual hash under flips/turns); each face's
// sample gets its group's id.
DuplicateGroups GroupFaces(const std::vector<Job>& jobs, std::vector<Result>* results) {
  std::vector<size_t> face_jobs;
  for (size_t j = 0; j < jobs.size(); ++j)
    if (jobs[j].source == kFaces && !(*results)[j].samples.empty()) face_jobs.push_back(j);
  UnionFind uf(face_jobs.size());
  std::map<std::string, int> family;
  for (size_t i = 0; i < face_jobs.size(); ++i) {
    const std::string stem = fs::path(jobs[face_jobs[i]].path).stem().string();
    const size_t cp = stem.find("_copy");
    if (cp == std::string::npos) continue;
    const std::string key = jobs[face_jobs[i]].rel.substr(0, jobs[face_jobs[i]].rel.rfind('/')) +
                            "/" + stem.substr(0, cp);
    auto it = family.find(key);
    if (it == family.end())
      family[key] = int(i);
    else
      uf.Join(it->second, int(i));
  }
  // Strict: a loose threshold chains distinct photos into one giant group through union-find.
  constexpr int kHashBits = 3;
  DuplicateGroups g;
  for (size_t a = 0; a < face_jobs.size(); ++a) {
    const uint64_t ha = (*results)[face_jobs[a]].hashes[0];
    for (size_t b = a + 1; b < face_jobs.size(); ++b)
      for (uint64_t hb : (*results)[face_jobs[b]].hashes)
        if (__builtin_popcountll(ha ^ hb) <= kHashBits) {
          if (uf.Find(int(a)) != uf.Find(int(b))) ++g.hash_links;
          uf.Join(int(a), int(b));
          break;
        }
  }
  std::map<int, int> group_size;
  for (size_t i = 0; i < face_jobs.size(); ++i) {
    Sample& s = (*results)[face_jobs[i]].samples[0];
    const int root = uf.Find(int(i));
    group_size[root]++;
    s.group = Fnv1a(jobs[face_jobs[size_t(root)]].rel);
  }
  for (auto& kv : group_size) g.largest = std::max(g.largest, kv.second);
  g.groups = group_size.size();
  g.photos = face_jobs.size();
  return g;
}

// What went into the set: photos that failed, crops per source, split and label, detections used.
struct Tally {
  int failed = 0, counts[3][3][3] = {}, detected = 0;
  std::string first_error;
};

// Splits, then every crop into the set in job order.
Tally FillSet(const CropOptions& o, const std::vector<Job>& jobs, std::vector<Result>* results,
              CropSet* out) {
  out->samples.clear();
  out->exact.clear();
  out->ctx.clear();
  Tally t;
  for (size_t j = 0; j < jobs.size(); ++j) {
    Result& r = (*results)[j];
    if (!r.error.empty()) {
      if (t.first_error.empty()) t.first_error = jobs[j].rel + ": " + r.error;
      ++t.failed;
      continue;
    }
    for (size_t k = 0; k < r.samples.size(); ++k) {
      Sample& s = r.samples[k];
      if (s.source == kScenes) {
        const SceneSplit sp = SplitOf(fs::path(jobs[j].path).stem().string());
        s.split = sp == SceneSplit::kDev ? kDev : sp == SceneSplit::kVal ? kVal : kTrain;
      } else
        s.split = s.group % 100 < uint32_t(o.val_percent) ? kVal : kTrain;
      t.counts[s.source][s.split][s.label]++;
      t.detected += s.detected;
      out->samples.push_back(s);
      out->exact.insert(out->exact.end(), r.exact[k].begin(), r.exact[k].end());
      out->ctx.insert(out->ctx.end(), r.ctx[k].begin(), r.ctx[k].end());
    }
  }
  return t;
}

std::string CropReport(const CropSet& set, size_t photos, const DuplicateGroups& g,
                       const Tally& t) {
  std::ostringstream rep;
  rep << "crops: " << set.samples.size() << " faces from " << photos << " photos (" << t.failed
      << " unreadable" << (t.first_error.empty() ? "" : ", first: " + t.first_error) << "); "
      << t.detected << " cropped from a detection, " << set.samples.size() - size_t(t.detected)
      << " from the labelled/assumed box\n";
  rep << "faces/ near-duplicate groups: " << g.groups << " groups for " << g.photos << " photos ("
      << g.hash_links << " hash links, largest group " << g.largest << ")\n";
  for (int src = 0; src < 3; ++src)
    for (int sp = 0; sp < 3; ++sp) {
      const int* c = t.counts[src][sp];
      if (c[0] + c[1] + c[2] == 0) continue;
      rep << "  " << SourceName(src) << "/" << SplitName(sp) << ": with_mask " << c[0]
          << ", without_mask " << c[1] << ", incorrect " << c[2] << "\n";
    }
  return rep.str();
}

}  // namespace

Status BuildCrops(const CropOptions& o, CropSet* out, std::string* report) {
  out->size = o.size;
  out->context = o.context;
  out->margin = o.margin;
  out->ctx_size = int(std::lround(float(o.size) * o.context));
  std::shared_ptr<Graph> detector;
  if (!o.detector.empty()) {
    detector = std::make_shared<Graph>();
    FM_RETURN_IF_ERROR(ReadModelFile(o.detector, detector.get()));
  }
  const std::vector<Job> jobs = ListJobs(o);
  if (jobs.empty()) return Errorf("no photos under ", o.data_dir);
  std::vector<Result> results;
  FM_RETURN_IF_ERROR(CutJobs(o, out->ctx_size, detector, jobs, &results));
  const DuplicateGroups groups = GroupFaces(jobs, &results);
  const Tally tally = FillSet(o, jobs, &results, out);
  *report = CropReport(*out, jobs.size(), groups, tally);
  return Status::Ok();
}

}  // namespace fm::train
