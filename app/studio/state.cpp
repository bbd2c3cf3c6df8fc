// The studio's state as JSON: what the headless tests assert on and what a bug report should carry —
// backend, shaders, messages, settings, loaded models with memory, the generation (per-step times,
// outputs, PSNR), saved files, history, classification (per-frame top-k, FPS, agreement) and UI timing.
#include <algorithm>
#include <cmath>

#include "app/studio/studio.h"
#include "app/studio/widgets.h"
#include "engine/core/dtype.h"

namespace studio {

using nlohmann::json;

namespace {

json memory_json(const blr::MemoryReport& r) {
  json cats = json::object();
  for (int c = 0; c < blr::kMemCategoryCount; ++c) {
    const auto cat = static_cast<blr::MemCategory>(c);
    cats[blr::mem_category_name(cat)] = {{"bytes", r.of(cat)}, {"peak", r.peak_of(cat)}};
  }
  json j = {{"total", r.total}, {"high_water", r.high_water}, {"categories", cats}};
  j["budget"] = r.budget ? json(*r.budget) : json(nullptr);
  return j;
}

json prediction_json(const blr::Prediction& p) {
  json top = json::array();
  for (size_t i = 0; i < p.classes.size(); ++i) top.push_back({{"class", p.classes[i]}, {"prob", p.probs[i]}});
  return top;
}

json stats_json(const std::deque<float>& ms) {
  if (ms.empty()) return json::object();
  std::vector<float> v(ms.begin(), ms.end());
  double sum = 0;
  for (float x : v) sum += x;
  std::sort(v.begin(), v.end());
  const double mean = sum / static_cast<double>(v.size());
  return {{"frames", v.size()},
          {"mean_ms", mean},
          {"p95_ms", v[static_cast<size_t>(0.95 * static_cast<double>(v.size() - 1))]},
          {"max_ms", v.back()},
          {"fps", mean > 0 ? 1000.0 / mean : 0.0}};
}

json output_json(const blr::GenerationOutput& o) {
  json j = {{"model_id", o.dit_id},
            {"name", o.name},
            {"mode", o.mode},
            {"variant", o.variant},
            {"decoder", o.decoder},
            {"steps_done", o.steps_done},
            {"cancelled", o.cancelled},
            {"graphs", o.graphs},
            {"step_ms", o.step_ms},
            {"mean_step_ms", o.mean_step_ms},
            {"median_step_ms", o.median_step_ms},
            {"sampling_ms", o.sampling_ms},
            {"decode_ms", o.decode_ms},
            {"total_ms", o.total_ms},
            {"params", o.params},
            {"weight_bytes", o.weight_bytes},
            {"dit_memory", memory_json(o.dit_memory)},
            {"device_image", o.device_rgba.defined()}};
  if (o.rgba.defined()) j["image"] = {{"count", o.rgba.dim(0)}, {"height", o.rgba.dim(1)}, {"width", o.rgba.dim(2)}};
  return j;
}

json rect_json(ImVec2 a, ImVec2 b) { return {{"x", a.x}, {"y", a.y}, {"w", b.x - a.x}, {"h", b.y - a.y}}; }

}  // namespace

json state_json(const App& app, bool with_frames) {
  json j;
  const blr::BackendInfo& b = app.session->backend();
  j["backend"] = {{"gpu", b.gpu},
                  {"device", b.device},
                  {"reason", b.reason},
                  {"dtype", blr::dtype_name(b.dtype)},
                  {"gl_vendor", app.gl_vendor},
                  {"gl_renderer", app.gl_renderer},
                  {"gl_version", app.gl_version},
                  {"interop", app.interop.enabled()},
                  {"interop_reason", app.interop.reason()},
                  {"interop_uploads", app.interop.uploads()}};
  j["shaders"] = {{"dir", app.shaders.dir},
                  {"ok", app.shaders.errors.empty()},
                  {"errors", app.shaders.errors},
                  {"view", app.shaders.view.ok()},
                  {"diff", app.shaders.diff.ok()}};
  j["fonts"] = app.fonts.source;
  j["typographic_glyphs"] = typographic_glyphs();  // false: – … − ≥ drawn as - ... - >=
  json msgs = json::array();
  for (const auto& m : app.messages) msgs.push_back({{"level", level_name(m.level)}, {"text", m.text}, {"time", m.time}});
  j["messages"] = msgs;
  j["config"] = {{"dir", app.config_dir}, {"settings", app.settings_path}, {"imgui_ini", app.ini_path}};

  json fields = json::object();
  for (const auto& [name, f] : app.fields) fields[name] = f.get(app);
  j["fields"] = fields;

  json ui = stats_json(app.ui.frame_ms);
  auto mean_of = [](const std::deque<float>& d) {
    double sum = 0;
    for (float v : d) sum += v;
    return d.empty() ? 0.0 : sum / static_cast<double>(d.size());
  };
  ui["build_ms_mean"] = mean_of(app.ui.build_ms);
  ui["render_ms_mean"] = mean_of(app.ui.render_ms);
  ui["thread_cpu_ms_mean"] = mean_of(app.ui.cpu_ms);
  ui["tab"] = tab_name(app.tab);
  ui["frames_total"] = app.ui.frames;
  ui["overlay"] = app.settings.window.overlay;
  ui["image_rect"] = rect_json(app.image_rect_min, app.image_rect_max);
  ui["image_visible"] = rect_json(app.image_visible_min, app.image_visible_max);
  ui["while_generating"] = {{"frames", app.ui.busy_frames},
                            {"seconds", app.ui.busy_time_s},
                            {"fps", app.ui.busy_time_s > 0 ? static_cast<double>(app.ui.busy_frames) / app.ui.busy_time_s : 0.0},
                            {"worst_frame_ms", app.ui.worst_busy_frame_ms}};
  ui["while_classifying"] = {
      {"frames", app.ui.classify_frames},
      {"fps", app.ui.classify_time_s > 0 ? static_cast<double>(app.ui.classify_frames) / app.ui.classify_time_s : 0.0}};
  j["ui"] = ui;

  json models = json::array();
  for (const auto& m : app.session->models()) {
    json layers = json::array();
    for (const auto& l : m.compressed)
      layers.push_back({{"name", l.name}, {"spec", l.spec}, {"rel_error", l.rel_error}, {"seconds", l.seconds}});
    json costs = json::array();
    for (const auto& c : m.costs)
      costs.push_back({{"mode", c.mode}, {"params", c.params}, {"bytes", c.bytes}, {"ratio", c.ratio}, {"error", c.error}});
    models.push_back({{"id", m.id},
                      {"kind", blr::model_kind_name(m.kind)},
                      {"name", m.name},
                      {"path", m.path},
                      {"mode", m.mode},
                      {"variant", m.variant},
                      {"rules", m.rules},
                      {"config", m.config},
                      {"params", m.params},
                      {"weight_bytes", m.weight_bytes},
                      {"num_classes", m.num_classes},
                      {"memory", memory_json(m.memory)},
                      {"compressed_layers", layers},
                      {"costs", costs},
                      {"load_seconds", m.load_seconds}});
  }
  j["models"] = models;
  const blr::JobStatus job = app.session->job();
  j["job"] = {{"running", job.running}, {"title", job.title}, {"stage", job.stage},
              {"fraction", job.fraction}, {"error", job.error}, {"layers_done", job.done.size()}};

  const blr::GenerationStatus g = app.gen->status();
  json outs = json::array();
  for (const auto& o : g.outputs) outs.push_back(output_json(o));
  j["generation"] = {{"state", blr::generation_state_name(g.state)},
                     {"run", g.run},
                     {"message", g.message},
                     {"compare", app.gen_compare_job},
                     {"step", g.step},
                     {"steps", g.steps},
                     {"step_ms", g.step_ms},
                     {"preview_version", g.preview_version},
                     {"outputs", outs},
                     {"psnr", g.psnr ? (std::isinf(*g.psnr) ? json("inf") : json(*g.psnr)) : json(nullptr)},
                     {"max_abs_diff", g.max_abs_diff},
                     {"saved", app.saved}};
  json effects = json::object();
  for (const auto& [id, e] : app.gen->graph_effects())
    effects[std::to_string(id)] = {{"with_graphs_ms", e.with_graphs_ms}, {"without_graphs_ms", e.without_graphs_ms}};
  j["graph_effects"] = effects;
  json history = json::array();
  for (const auto& h : app.history)
    history.push_back({{"run", h.run},
                       {"class", h.params.class_id},
                       {"seed", h.params.seed},
                       {"steps", h.params.steps},
                       {"sampler", h.params.sampler == 0 ? "ddpm" : "ddim"},
                       {"guidance", h.params.guidance},
                       {"mode", h.params.mode},
                       {"saved", h.saved_path}});
  j["history"] = history;
  j["history_selected"] = app.history_selected;

  const blr::ClassifyStatus c = app.cls->status(with_frames);
  json cmodels = json::array();
  for (const auto& m : c.models)
    cmodels.push_back({{"model_id", m.model_id},
                       {"name", m.name},
                       {"variant", m.variant},
                       {"top", prediction_json(m.last)},
                       {"mean_preprocess_ms", m.mean_preprocess_ms},
                       {"mean_network_ms", m.mean_network_ms},
                       {"mean_total_ms", m.mean_total_ms},
                       {"graph", m.graph}});
  json frames = json::array();
  for (const auto& f : c.frames) {
    json preds = json::array();
    for (const auto& p : f.predictions) preds.push_back(prediction_json(p));
    json times = json::array();
    for (const auto& t : f.times)
      times.push_back({{"preprocess_ms", t.preprocess_ms + t.upload_ms}, {"network_ms", t.network_ms}, {"total_ms", t.total_ms}});
    frames.push_back({{"index", f.index}, {"capture_ms", f.capture_ms}, {"predictions", preds}, {"times", times}});
  }
  j["classify"] = {{"state", blr::classify_state_name(c.state)},
                   {"run", c.run},
                   {"message", c.message},
                   {"compare", app.cls_compare_job},
                   {"source", c.source},
                   {"live", c.live},
                   {"captured", c.captured},
                   {"classified", c.classified},
                   {"dropped", c.dropped},
                   {"fps", c.fps},
                   {"models", cmodels},
                   {"compared", c.compared},
                   {"agreed", c.agreed},
                   {"agreement", c.compared ? json(c.agreement()) : json(nullptr)},
                   {"frames", frames}};
  return j;
}

}  // namespace studio
