// `blr bench-layer --breakdown` and `--sweep`, and the launch-cost probe.
//
// Breakdown: a BLR layer is two kernels. Timing each stage alone as its own graph
// (same rotation over sets) and the pair says where the time goes: "gap" = pair − s1 − s2 is what the
// stage boundary costs (positive: launch latency / full-grid dependency; negative: PDL overlap). The probe
// says what an empty kernel node costs, the floor under every stage.
//
// Sweep: tries every stage-1 path and tile (with stage 2 on auto), then every stage-2 path, tile, cuBLASLt
// heuristic entry and PDL setting (with the best stage 1), then PDL-first. Configurations whose plan
// repeats one already timed are skipped (a forced tile that does
// not apply falls back to a plan that already ran), as are those that cannot run (the reason is printed).
// Each timed configuration is checked against the CPU reference first.
#include <algorithm>
#include <cstdio>
#include <initializer_list>
#include <set>
#include <string>
#include <vector>

#include "app/cli/bench_layer.h"
#include "engine/core/error.h"

namespace blr::cli {
namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// The plan without the layer's "blast b=9 r=256: " prefix, at most `width` characters.
std::string short_plan(const std::string& plan, size_t width) {
  const size_t colon = plan.find(": ");
  std::string s = colon == std::string::npos ? plan : plan.substr(colon + 2);
  if (s.size() > width) s = s.substr(0, width - 2) + "..";
  return s;
}

struct Candidate {
  std::string label;
  BlrKernelOptions o;
};

struct Row {
  BlrKernelOptions o;
  std::string label, plan, error;
  double us = 0, min_us = 0, rel_err = 0;
  bool finite = true;
};

}  // namespace

nlohmann::json probe_launch_cost(CudaOps& ops, int sms, std::string* line) {
  nlohmann::json j = nlohmann::json::array();
  std::string text = "probe (empty kernel per graph node, us):";
  struct P {
    int ctas;
    bool pdl;
  };
  const P probes[] = {{1, false}, {sms, false}, {4 * sms, false}, {sms, true}};
  for (const P& pr : probes) {
    const TimingStats t = time_graph(
        ops.stream(), [&](int) { blr_launch_probe(ops, pr.ctas, pr.pdl); }, 64, 100, 10);
    text += cat(" ", pr.ctas, " CTAs", pr.pdl ? " pdl" : "", " ", fmt("%.2f", t.median_ms * 1e3), ";");
    j.push_back({{"ctas", pr.ctas}, {"pdl", pr.pdl}, {"us_per_node", t.median_ms * 1e3}});
  }
  text.pop_back();
  *line = text;
  return j;
}

nlohmann::json run_breakdown(LayerBench& bench, const BlrKernelOptions& base, const DeviceInfo& dev, int samples,
                             int warmup, std::string* summary) {
  const VariantSpec& v = bench.variant();
  const LayerProblem& p = bench.problem();
  nlohmann::json j;
  auto with = [&](auto&& edit) {
    BlrKernelOptions o = base;
    edit(o);
    return o;
  };
  const Timed pair = bench.time(base, samples, warmup, true);
  auto us = [](const Timed& t) { return t.error.empty() ? t.t.median_ms * 1e3 : -1.0; };
  auto show = [](double u) { return u < 0 ? std::string("n/a") : fmt("%.2f", u); };
  if (v.kind == LayerKind::Dense) {
    const Cost c = layer_cost(v, p);
    const double s = pair.t.median_ms * 1e-3;
    std::printf("breakdown %-8s one kernel %s us  %.0f TFLOP/s  %.0f GB/s  [%s]\n", v.name.c_str(),
                show(us(pair)).c_str(), c.flops / s / 1e12, c.bytes / s / 1e9, short_plan(pair.plan, 120).c_str());
    *summary = cat("dense ", show(us(pair)));
    j = {{"us", us(pair)}, {"plan", pair.plan}};
    return j;
  }
  const Timed s1 = bench.time(with([](BlrKernelOptions& o) { o.only_stage = 1; }), samples, warmup, false);
  const Timed s2 = bench.time(with([](BlrKernelOptions& o) { o.only_stage = 2; }), samples, warmup, false);
  const Timed& two = pair;
  const Timed nopdl = bench.time(with([](BlrKernelOptions& o) { o.pdl = false; }), samples, warmup, true);
  const Timed first = bench.time(with([](BlrKernelOptions& o) { o.pdl_first = true; }), samples, warmup, true);
  auto stage_line = [&](const char* name, const Timed& t, int stage) {
    const Cost c = stage_cost(v, p, stage);
    const double s = t.t.median_ms * 1e-3;
    if (!t.error.empty()) return cat(name, " n/a (", t.error.substr(0, 60), ")");
    return cat(name, " ", fmt("%.2f", s * 1e6), " us ", fmt("%.0f", c.flops / s / 1e12), " TF/s ",
               fmt("%.0f", c.bytes / s / 1e9), " GB/s");
  };
  const bool have_gap = us(two) > 0 && us(s1) > 0 && us(s2) > 0;
  const double gap = have_gap ? us(two) - us(s1) - us(s2) : 0.0;
  std::printf("breakdown %-8s %s | %s | pair %s (gap %s) | no-pdl %s | pdl-first %s\n", v.name.c_str(),
              stage_line("s1", s1, 1).c_str(), stage_line("s2", s2, 2).c_str(), show(us(two)).c_str(),
              have_gap ? fmt("%+.2f", gap).c_str() : "n/a", show(us(nopdl)).c_str(), show(us(first)).c_str());
  std::printf("  plan: %s\n", short_plan(two.plan, 170).c_str());
  for (const Timed* t : std::initializer_list<const Timed*>{&two, &nopdl, &first})
    if (t->error.empty() && (!t->err.finite || t->err.rel() > 3e-2))
      std::printf("  WARNING: wrong output (rel err %.3g, finite %d) for plan %s\n", t->err.rel(), t->err.finite,
                  t->plan.c_str());
  (void)dev;
  *summary = cat("s1 ", show(us(s1)), " s2 ", show(us(s2)), " pair ", show(us(two)), " gap ",
                 have_gap ? fmt("%+.1f", gap) : std::string("n/a"), " nopdl ", show(us(nopdl)), " pf ",
                 show(us(first)));
  j = {{"stage1_us", us(s1)},         {"stage2_us", us(s2)},       {"pair_us", us(two)},
       {"gap_us", have_gap ? gap : 0.0}, {"no_pdl_us", us(nopdl)},    {"pdl_first_us", us(first)},
       {"plan_two", two.plan},        {"plan_stage1", s1.plan},    {"plan_stage2", s2.plan}};
  return j;
}

nlohmann::json run_sweep(LayerBench& bench, const BlrKernelOptions& base, double dense_ms, int samples, int warmup,
                         bool with_lt_algos, std::string* summary) {
  const VariantSpec& v = bench.variant();
  std::vector<Row> rows;
  std::set<std::string> seen;
  int skipped_dup = 0;
  // Times a candidate unless its plan already ran; returns its row index or -1.
  auto try_candidate = [&](const Candidate& c) -> int {
    bool dup = false;
    Timed t = bench.time(c.o, samples, warmup, true, [&](const std::string& plan) -> std::string {
      if (!seen.insert(plan).second) {
        dup = true;
        return "repeat";
      }
      return "";
    });
    if (dup) {
      ++skipped_dup;
      return -1;
    }
    Row r;
    r.o = c.o;
    r.label = c.label;
    r.plan = t.plan;
    r.error = t.error;
    r.us = t.error.empty() ? t.t.median_ms * 1e3 : 1e30;
    r.min_us = t.error.empty() ? t.t.min_ms * 1e3 : 1e30;
    r.rel_err = t.err.rel();
    r.finite = t.err.finite;
    if (r.error.empty() && (!r.finite || r.rel_err > 3e-2)) r.error = cat("WRONG OUTPUT rel err ", r.rel_err);
    rows.push_back(r);
    return static_cast<int>(rows.size()) - 1;
  };
  auto best_of = [&](const std::vector<int>& idx) {
    int best = -1;
    for (int i : idx)
      if (i >= 0 && rows[i].error.empty() && (best < 0 || rows[i].us < rows[best].us)) best = i;
    return best;
  };

  const BlrKernelOptions& two = base;
  const int auto_row = try_candidate({"auto", base});

  // Phase 1: stage-1 candidates, stage 2 on auto.
  std::vector<Candidate> s1_list;
  const BlrTileCatalog tiles = blr_tile_catalog();
  const int n_tiles1 = v.kind == LayerKind::Blast ? tiles.blast_stage1 : tiles.gemm;
  for (int t = 1; t <= n_tiles1; ++t) {
    BlrKernelOptions o = two;
    o.stage1 = BlrStagePath::TensorCore;
    o.tile1 = t;
    s1_list.push_back({cat("s1=t", t), o});
  }
  // SIMT (the f32 path) is for few tokens; at thousands it only costs sweep time.
  const bool many_tokens = bench.problem().tokens > 4096;
  if (!many_tokens) {
    BlrKernelOptions o = two;
    o.stage1 = BlrStagePath::Simt;
    s1_list.push_back({"s1=simt", o});
  }
  if (v.kind == LayerKind::LowRank)
    for (int a = 0; a < (with_lt_algos ? 4 : 1); ++a) {
      BlrKernelOptions o = two;
      o.stage1 = BlrStagePath::CublasLt;
      o.lt_algo = a;
      s1_list.push_back({cat("s1=lt#", a), o});
    }
  std::vector<int> p1 = {auto_row};
  for (const Candidate& c : s1_list) p1.push_back(try_candidate(c));
  const int best1 = best_of(p1);
  const BlrKernelOptions b1 = best1 >= 0 ? rows[best1].o : two;
  const std::string b1_label = best1 >= 0 && best1 != auto_row ? rows[best1].label : "s1=auto";

  // Phase 2: stage-2 candidates with the best stage 1.
  std::vector<Candidate> s2_list;
  for (int t = 1; t <= tiles.gemm; ++t)
    for (bool pdl : {true, false}) {
      BlrKernelOptions o = b1;
      o.stage2 = BlrStagePath::TensorCore;
      o.tile2 = t;
      o.pdl = pdl;
      s2_list.push_back({cat(b1_label, " s2=t", t, pdl ? "" : " nopdl"), o});
    }
  for (int a = 0; a < (with_lt_algos ? 8 : 1); ++a) {
    BlrKernelOptions o = b1;
    o.stage2 = BlrStagePath::CublasLt;
    o.lt_algo = a;
    s2_list.push_back({cat(b1_label, " s2=lt#", a), o});
  }
  if (!many_tokens) {
    BlrKernelOptions o = b1;
    o.stage2 = BlrStagePath::Simt;
    s2_list.push_back({cat(b1_label, " s2=simt"), o});
  }
  std::vector<int> p2 = {best1};
  for (const Candidate& c : s2_list) p2.push_back(try_candidate(c));
  const int best2 = best_of(p2);
  const BlrKernelOptions b2 = best2 >= 0 ? rows[best2].o : b1;
  const std::string b2_label = best2 >= 0 && best2 != auto_row ? rows[best2].label : "s1=auto s2=auto";

  // Phase 3: the best pair launched PDL-first.
  {
    BlrKernelOptions o = b2;
    o.pdl_first = true;
    try_candidate({cat(b2_label, " pf"), o});
  }

  // Report, fastest first.
  std::vector<int> order(rows.size());
  for (size_t k = 0; k < rows.size(); ++k) order[k] = static_cast<int>(k);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return rows[a].us < rows[b].us; });
  const int timed = static_cast<int>(std::count_if(rows.begin(), rows.end(), [](const Row& r) { return r.error.empty(); }));
  std::printf("sweep %s: %d configurations timed, %d skipped as repeats of a plan already timed\n", v.name.c_str(),
              timed, skipped_dup);
  std::printf("  %8s %8s %7s %8s  %-28s %s\n", "us", "min us", "x dense", "rel err", "config", "plan");
  nlohmann::json jrows = nlohmann::json::array();
  int auto_rank = -1, rank = 0;
  for (int k : order) {
    const Row& r = rows[k];
    if (r.error.empty()) {
      ++rank;
      if (k == auto_row) auto_rank = rank;
      std::printf("  %8.2f %8.2f %7s %8.1e  %-28s %s%s\n", r.us, r.min_us,
                  dense_ms > 0 ? fmt("%.3f", r.us / (dense_ms * 1e3)).c_str() : "-", r.rel_err, r.label.c_str(),
                  short_plan(r.plan, 110).c_str(), k == auto_row ? "   <= auto" : "");
    } else {
      std::printf("  %8s %8s %7s %8s  %-28s skipped: %s\n", "-", "-", "-", "-", r.label.c_str(),
                  r.error.substr(0, 100).c_str());
    }
    jrows.push_back({{"config", r.label},
                     {"plan", r.plan},
                     {"us", r.error.empty() ? r.us : -1.0},
                     {"min_us", r.error.empty() ? r.min_us : -1.0},
                     {"rel_err", r.rel_err},
                     {"error", r.error}});
  }
  std::string top;
  int shown = 0;
  for (int k : order) {
    if (!rows[k].error.empty() || shown == 3) continue;
    top += cat(shown ? ", " : "", rows[k].label, " ", fmt("%.2f", rows[k].us));
    ++shown;
  }
  const double auto_us = auto_row >= 0 && rows[auto_row].error.empty() ? rows[auto_row].us : -1;
  std::printf("  auto pick: %s us, rank %d of %d\n", auto_us > 0 ? fmt("%.2f", auto_us).c_str() : "n/a", auto_rank,
              timed);
  *summary = cat("auto ", auto_us > 0 ? fmt("%.2f", auto_us) : "n/a", " #", auto_rank, "/", timed, "; best ", top);
  return {{"rows", jrows}, {"auto_rank", auto_rank}, {"timed", timed}};
}

}  // namespace blr::cli
