// common.cpp - see common.h.
#include "common.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace fm::train {
namespace {
int g_threads = 2;
}

float Rng::Normal() {
  const float u1 = std::max(Uniform(), 1e-7f), u2 = Uniform();
  return std::sqrt(-2.f * std::log(u1)) * std::cos(6.2831853f * u2);
}

void SetThreads(int threads) {
  g_threads = std::max(1, std::min(threads, 64));
  // The trainer splits batches over its own threads; OpenBLAS threads would only spin against them.
  openblas_set_num_threads(1);
}

int Threads() {
  return g_threads;
}

namespace {

// A persistent pool of Threads() - 1 workers (the caller runs chunk 0). Each ParallelFor call
// publishes one job; workers pick their fixed chunk, so the partition (and with it every
// reduction order) is the same as with freshly created threads, without the creation cost.
class Pool {
 public:
  static Pool& Get() {
    static Pool pool;
    return pool;
  }
  void Run(int n, int t, const std::function<void(int, int, int)>& fn) {
    std::unique_lock<std::mutex> lock(mu_);
    while (static_cast<int>(workers_.size()) < t - 1) {
      const int id = static_cast<int>(workers_.size()) + 1;
      const uint64_t seen = generation_;  // the worker's first job is the next generation
      workers_.emplace_back([this, id, seen] { Loop(id, seen); });
    }
    fn_ = &fn;
    n_ = n;
    t_ = t;
    pending_ = t - 1;
    ++generation_;
    lock.unlock();
    cv_.notify_all();
    fn(0, int(int64_t(n) / t), 0);
    lock.lock();
    done_.wait(lock, [this] { return pending_ == 0; });
    fn_ = nullptr;
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      ++generation_;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
  }

 private:
  void Loop(int id, uint64_t seen) {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      if (id >= t_) continue;  // this job uses fewer threads
      const auto* fn = fn_;
      const int n = n_, t = t_;
      lock.unlock();
      (*fn)(int(int64_t(n) * id / t), int(int64_t(n) * (id + 1) / t), id);
      lock.lock();
      if (--pending_ == 0) done_.notify_one();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_, done_;
  std::vector<std::thread> workers_;
  const std::function<void(int, int, int)>* fn_ = nullptr;
  int n_ = 0, t_ = 1, pending_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

std::mutex g_call_mu;  // one ParallelFor at a time (calls from inside a job run inline)
thread_local bool g_in_job = false;

}  // namespace

void ParallelFor(int n, const std::function<void(int, int, int)>& fn) {
  const int t = std::max(1, std::min(g_threads, n));
  if (t == 1 || g_in_job) {
    // Same partition as the parallel path, run in order on this thread.
    for (int i = 0; i < t; ++i) fn(int(int64_t(n) * i / t), int(int64_t(n) * (i + 1) / t), i);
    return;
  }
  std::lock_guard<std::mutex> call(g_call_mu);
  const std::function<void(int, int, int)> wrapped = [&fn](int b, int e, int c) {
    g_in_job = true;
    fn(b, e, c);
    g_in_job = false;
  };
  Pool::Get().Run(n, t, wrapped);
}

void Gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

uint32_t Fnv1a(const std::string& s) {
  uint32_t h = 2166136261u;
  for (unsigned char ch : s) h = (h ^ ch) * 16777619u;
  return h;
}

}  // namespace fm::train
