// Everything the user can do, by name. Buttons, menu items and shortcuts call do_action(); the headless
// script runner calls the same functions, and sets the same settings through the field registry, so a
// scripted session exercises exactly what a user's clicks do. User mistakes (no model loaded, a bad
// value) become messages; they never throw out of here.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include "app/studio/studio.h"
#include "engine/core/error.h"
#include "engine/io/labels.h"
#include "engine/io/png.h"

namespace studio {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string slug(const std::string& text) {
  std::string out;
  for (char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u)) out.push_back(static_cast<char>(std::tolower(u)));
    else if (!out.empty() && out.back() != '-') out.push_back('-');
    if (out.size() >= 32) break;
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "image" : out;
}

blr::SamplerKind sampler_of(int s) { return s == 0 ? blr::SamplerKind::DDPM : blr::SamplerKind::DDIM; }

int vae_for_generation(const App& app) {
  const auto vaes = models_of(app, blr::ModelKind::Vae);
  return vaes.empty() ? -1 : vaes.back().id;
}

blr::GenerationJob generation_job(const App& app, std::vector<int> dits) {
  const GenerateSettings& g = app.settings.gen;
  blr::GenerationJob job;
  job.dit_ids = std::move(dits);
  job.vae_id = vae_for_generation(app);
  job.classes.assign(static_cast<size_t>(std::max(1, g.images)), g.class_id);
  job.seed = g.seed;
  job.steps = g.steps;
  job.sampler = sampler_of(g.sampler);
  job.guidance = g.guidance;
  job.previews = true;
  job.preview_every = g.preview_every;
  job.use_graphs = g.graphs;
  return job;
}

void start_generation(App& app, std::vector<int> dits, bool compare) {
  if (app.gen->busy()) {
    message(app, Message::Level::Warning, "A generation is already running (Esc cancels it)");
    return;
  }
  if (dits.empty() || std::any_of(dits.begin(), dits.end(), [](int id) { return id < 0; })) {
    message(app, Message::Level::Warning, "No DiT model loaded: load one in the Models tab first");
    return;
  }
  try {
    app.gen_compare_job = compare;
    app.gen->start(generation_job(app, std::move(dits)));
  } catch (const std::exception& e) {
    message(app, Message::Level::Warning, e.what());
  }
}

blr::SourceSpec source_spec(const ClassifySettings& c) {
  blr::SourceSpec s;
  static const blr::SourceSpec::Kind kinds[] = {blr::SourceSpec::Kind::Camera, blr::SourceSpec::Kind::Video,
                                                blr::SourceSpec::Kind::Images, blr::SourceSpec::Kind::Pipeline};
  s.kind = kinds[std::clamp(c.source, 0, 3)];
  switch (c.source) {
    case 0: s.text = c.camera; break;
    case 1: s.text = c.video; break;
    case 2: s.text = c.images; break;
    default: s.text = c.pipeline; break;
  }
  s.loop = c.loop && (c.source == 1 || c.source == 2);
  return s;
}

void start_classify(App& app, std::vector<int> vits, bool compare) {
  if (vits.empty() || vits.front() < 0) {
    message(app, Message::Level::Warning, "No ViT loaded: load one in the Models tab first");
    return;
  }
  blr::ClassifyJob job;
  job.source = source_spec(app.settings.cls);
  job.model_ids = std::move(vits);
  job.topk = app.settings.cls.topk;
  job.use_graphs = app.settings.gen.graphs;
  app.cls_compare_job = compare;
  app.seen_frame = 0;
  app.cls->start(job);
}

// The two variants the Compare tab runs: A (reference, usually dense) and B (BLR).
bool compare_pair(App& app, blr::ModelKind kind, int* a, int* b) {
  const auto all = models_of(app, kind);
  *a = -1;
  *b = -1;
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    if (*a < 0 && it->mode == app.settings.cmp.mode_a) *a = it->id;
    if (*b < 0 && it->mode == app.settings.cmp.mode_b && it->id != *a) *b = it->id;
  }
  if (*a < 0 || *b < 0) {
    const char* what = kind == blr::ModelKind::Dit ? "DiT" : "ViT";
    message(app, Message::Level::Warning,
            blr::cat("Compare needs a ", what, " in mode '", app.settings.cmp.mode_a, "' and one in mode '",
                     app.settings.cmp.mode_b, "': load the file, then load it again with a BLR mode (Models tab)"));
    return false;
  }
  return true;
}

void save_image(App& app) {
  if (app.history.empty()) {
    message(app, Message::Level::Warning, "Nothing to save yet: generate an image first");
    return;
  }
  const int idx = app.history_selected >= 0 && app.history_selected < static_cast<int>(app.history.size())
                      ? app.history_selected
                      : static_cast<int>(app.history.size()) - 1;
  HistoryEntry& h = app.history[static_cast<size_t>(idx)];
  const auto& names = class_names(app);
  const std::string label = class_label(names, h.params.class_id);
  try {
    const fs::path dir = output_dir(app);
    fs::create_directories(dir);
    fs::path path;
    for (int n = 1;; ++n) {
      char num[16];
      std::snprintf(num, sizeof(num), "%04d", n);
      path = dir / blr::cat("blr_", num, "_", slug(label), "_seed", h.params.seed, "_", h.params.mode, ".png");
      if (!fs::exists(path)) break;
    }
    json p = {{"model", h.dit_name},
              {"mode", h.params.mode},
              {"layers", h.variant},
              {"decoder", h.decoder},
              {"class", h.params.class_id},
              {"label", label},
              {"seed", h.params.seed},
              {"steps", h.params.steps},
              {"sampler", h.params.sampler == 0 ? "ddpm" : "ddim"},
              {"cfg", h.params.guidance},
              {"images", h.params.images},
              {"device", app.session->backend().device},
              {"mean_step_ms", h.mean_step_ms},
              {"software", "blr-studio"}};
    const blr::Tensor grid = grid_of(h.rgba);
    blr::write_png(path.string(), grid, {{"parameters", p.dump()}});
    h.saved_path = path.string();
    app.saved.push_back(path.string());
    message(app, Message::Level::Info, "Saved " + path.string());
  } catch (const std::exception& e) {
    message(app, Message::Level::Error, blr::cat("Could not save the image: ", e.what()));
  }
}

void load_model(App& app) {
  ModelsSettings& m = app.settings.models;
  blr::LoadRequest r;
  r.kind = static_cast<blr::ModelKind>(std::clamp(m.kind, 0, 2));
  r.path = m.path[r.kind == blr::ModelKind::Dit ? 0 : r.kind == blr::ModelKind::Vae ? 1 : 2];
  r.mode = r.kind == blr::ModelKind::Vae ? "dense" : m.mode;
  r.rules_text = m.rules;
  if (r.path.empty()) {
    message(app, Message::Level::Warning, "Type or pick a model file first");
    return;
  }
  app.session->submit(r);
  mark_dirty(app);
}

void inspect_model(App& app) {
  ModelsSettings& m = app.settings.models;
  const auto kind = static_cast<blr::ModelKind>(std::clamp(m.kind, 0, 2));
  app.inspection.reset();
  app.inspection_error.clear();
  try {
    app.inspection = app.session->inspect(kind, m.path[m.kind]);
    for (const auto& mr : app.inspection->modes)
      if (mr.mode == m.mode && m.mode != "custom") m.rules = mr.text;
  } catch (const std::exception& e) {
    app.inspection_error = e.what();
    message(app, Message::Level::Error, blr::cat("Cannot inspect ", m.path[m.kind], ": ", e.what()));
  }
}

void apply_budget(App& app) {
  const std::string& text = app.settings.models.budget;
  try {
    if (text.empty()) app.session->set_budget(std::nullopt);
    else app.session->set_budget(blr::parse_bytes(text));
    message(app, Message::Level::Info,
            text.empty() ? std::string("Memory budget removed") : blr::cat("Memory budget per model: ", text));
    mark_dirty(app);
  } catch (const std::exception& e) {
    message(app, Message::Level::Warning, blr::cat("Memory budget '", text, "': ", e.what()));
  }
}

int arg_int(const std::vector<std::string>& args, size_t i, int fallback) {
  if (i >= args.size()) return fallback;
  try {
    return std::stoi(args[i]);
  } catch (const std::exception&) {
    throw blr::InputError(blr::cat("'", args[i], "' is not a number"));
  }
}

}  // namespace

void do_action(App& app, const std::string& name, const std::vector<std::string>& args) {
  auto it = app.actions.find(name);
  if (it == app.actions.end()) throw blr::InputError(blr::cat("unknown action '", name, "'"));
  it->second(app, args);
}

void set_field(App& app, const std::string& name, const std::string& value) {
  auto it = app.fields.find(name);
  if (it == app.fields.end()) throw blr::InputError(blr::cat("unknown field '", name, "'"));
  it->second.set(app, value);
  mark_dirty(app);
}

void register_actions(App& app) {
  auto& a = app.actions;
  a["generate"] = [](App& app, const std::vector<std::string>&) {
    start_generation(app, {resolve_model(app, blr::ModelKind::Dit, app.settings.gen.mode)}, false);
  };
  a["generate.cancel"] = [](App& app, const std::vector<std::string>&) { app.gen->cancel(); };
  a["generate.save"] = [](App& app, const std::vector<std::string>&) { save_image(app); };
  a["generate.dice"] = [](App& app, const std::vector<std::string>&) {
    std::random_device rd;
    app.settings.gen.seed = (static_cast<uint64_t>(rd()) << 20 ^ rd()) % 1000000000ULL;
    mark_dirty(app);
  };
  a["history.restore"] = [](App& app, const std::vector<std::string>& args) {
    const int i = arg_int(args, 0, static_cast<int>(app.history.size()) - 1);
    if (i < 0 || i >= static_cast<int>(app.history.size()))
      throw blr::InputError(blr::cat("history has ", app.history.size(), " entries, no entry ", i));
    const HistoryEntry& h = app.history[static_cast<size_t>(i)];
    const std::string out = app.settings.gen.output_dir;
    app.settings.gen = h.params;
    app.settings.gen.output_dir = out;
    app.history_selected = i;
    upload_rgba(app, app.gen_texture, h.rgba);
    app.showing_preview = false;
    mark_dirty(app);
  };
  a["classify.start"] = [](App& app, const std::vector<std::string>&) {
    start_classify(app, {resolve_model(app, blr::ModelKind::Vit, app.settings.cls.mode)}, false);
  };
  a["classify.stop"] = [](App& app, const std::vector<std::string>&) { app.cls->stop(); };
  a["classify.retry"] = [](App& app, const std::vector<std::string>&) {
    app.seen_frame = 0;
    app.cls->retry();
  };
  a["classify.toggle"] = [](App& app, const std::vector<std::string>&) {
    if (app.cls->active()) do_action(app, "classify.stop");
    else do_action(app, app.tab == Tab::Compare ? "compare.classify" : "classify.start");
  };
  a["compare.classify"] = [](App& app, const std::vector<std::string>&) {
    int x = -1, y = -1;
    if (compare_pair(app, blr::ModelKind::Vit, &x, &y)) start_classify(app, {x, y}, true);
  };
  a["compare.generate"] = [](App& app, const std::vector<std::string>&) {
    int x = -1, y = -1;
    if (compare_pair(app, blr::ModelKind::Dit, &x, &y)) start_generation(app, {x, y}, true);
  };
  a["compare.stop"] = [](App& app, const std::vector<std::string>&) {
    app.cls->stop();
    app.gen->cancel();
  };
  a["models.load"] = [](App& app, const std::vector<std::string>&) { load_model(app); };
  a["models.inspect"] = [](App& app, const std::vector<std::string>&) { inspect_model(app); };
  a["models.cancel"] = [](App& app, const std::vector<std::string>&) { app.session->cancel_job(); };
  a["models.unload"] = [](App& app, const std::vector<std::string>& args) {
    const int id = arg_int(args, 0, app.selected_model);
    app.session->unload(id);
  };
  a["models.save"] = [](App& app, const std::vector<std::string>& args) {
    const int id = arg_int(args, 0, app.selected_model);
    if (args.size() < 2) throw blr::InputError("models.save needs a model id and a file path");
    try {
      app.session->save_compressed(id, args[1]);
      message(app, Message::Level::Info, "Saved compressed model to " + args[1]);
    } catch (const std::exception& e) {
      message(app, Message::Level::Error, blr::cat("Could not save: ", e.what()));
    }
  };
  a["models.select"] = [](App& app, const std::vector<std::string>& args) {
    const int id = arg_int(args, 0, -1);
    if (!find_model(app, id)) throw blr::InputError(blr::cat("no loaded model has id ", id));
    app.selected_model = id;
  };
  a["models.budget"] = [](App& app, const std::vector<std::string>&) { apply_budget(app); };
  a["view.overlay"] = [](App& app, const std::vector<std::string>&) {
    app.settings.window.overlay = !app.settings.window.overlay;
    mark_dirty(app);
  };
  a["view.messages"] = [](App& app, const std::vector<std::string>&) {
    app.settings.window.messages = !app.settings.window.messages;
    mark_dirty(app);
  };
  a["view.filter"] = [](App& app, const std::vector<std::string>&) {
    app.settings.window.nearest = !app.settings.window.nearest;
    mark_dirty(app);
  };
  a["view.fit"] = [](App& app, const std::vector<std::string>&) {
    for (ViewState* v : {&app.gen_view, &app.cls_view, &app.cmp_view}) {
      v->zoom = 1.0f;
      v->pan = ImVec2(0, 0);
    }
  };
  a["view.zoom"] = [](App& app, const std::vector<std::string>& args) {
    const float z = args.empty() ? 1.0f : std::stof(args[0]);
    for (ViewState* v : {&app.gen_view, &app.cls_view, &app.cmp_view}) v->zoom = std::clamp(z, 0.05f, 256.0f);
  };
  a["help"] = [](App& app, const std::vector<std::string>&) { app.show_help = !app.show_help; };
  a["shaders.reload"] = [](App& app, const std::vector<std::string>&) {
    app.shaders.load();
    for (const auto& e : app.shaders.errors) message(app, Message::Level::Error, "shader: " + e);
    if (app.shaders.errors.empty()) message(app, Message::Level::Info, "Shaders reloaded from " + app.shaders.dir);
  };
  a["tab"] = [](App& app, const std::vector<std::string>& args) {
    Tab t;
    if (args.empty() || !parse_tab(args[0], &t)) throw blr::InputError("tab needs Generate, Classify, Compare or Models");
    app.tab = t;
    app.settings.window.tab = t;
    app.switch_tab = true;
    mark_dirty(app);
  };
  a["app.quit"] = [](App& app, const std::vector<std::string>&) { app.quit = true; };
}

namespace {

template <typename T>
void add_number(App& app, const std::string& name, T& (*ref)(App&), double lo, double hi) {
  App::Field f;
  f.get = [ref](const App& a) { return json(ref(const_cast<App&>(a))); };
  f.set = [ref, name, lo, hi](App& a, const std::string& v) {
    double x = 0;
    try {
      size_t used = 0;
      x = std::stod(v, &used);
      if (used != v.size()) throw std::invalid_argument(v);
    } catch (const std::exception&) {
      throw blr::InputError(blr::cat(name, ": '", v, "' is not a number"));
    }
    if (!(x >= lo && x <= hi)) throw blr::InputError(blr::cat(name, ": ", v, " is outside [", lo, ", ", hi, "]"));
    ref(a) = static_cast<T>(x);
  };
  app.fields[name] = f;
}

void add_bool(App& app, const std::string& name, bool& (*ref)(App&)) {
  App::Field f;
  f.get = [ref](const App& a) { return json(ref(const_cast<App&>(a))); };
  f.set = [ref, name](App& a, const std::string& v) {
    if (v == "1" || v == "true" || v == "on" || v == "yes") ref(a) = true;
    else if (v == "0" || v == "false" || v == "off" || v == "no") ref(a) = false;
    else throw blr::InputError(blr::cat(name, ": '", v, "' is not true/false"));
  };
  app.fields[name] = f;
}

void add_text(App& app, const std::string& name, std::string& (*ref)(App&)) {
  App::Field f;
  f.get = [ref](const App& a) { return json(ref(const_cast<App&>(a))); };
  f.set = [ref](App& a, const std::string& v) { ref(a) = v; };
  app.fields[name] = f;
}

void add_choice(App& app, const std::string& name, int& (*ref)(App&), std::vector<std::string> names) {
  App::Field f;
  f.get = [ref, names](const App& a) {
    const int i = ref(const_cast<App&>(a));
    return json(i >= 0 && i < static_cast<int>(names.size()) ? names[static_cast<size_t>(i)] : std::to_string(i));
  };
  f.set = [ref, name, names](App& a, const std::string& v) {
    for (size_t i = 0; i < names.size(); ++i)
      if (names[i] == v) {
        ref(a) = static_cast<int>(i);
        return;
      }
    std::string all;
    for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
    throw blr::InputError(blr::cat(name, ": '", v, "' is not one of ", all));
  };
  app.fields[name] = f;
}

}  // namespace

void register_fields(App& app) {
  add_number<int>(app, "generate.steps", [](App& a) -> int& { return a.settings.gen.steps; }, 1, 1000);
  add_number<uint64_t>(app, "generate.seed", [](App& a) -> uint64_t& { return a.settings.gen.seed; }, 0, 9.0e15);
  add_number<float>(app, "generate.guidance", [](App& a) -> float& { return a.settings.gen.guidance; }, 0, 50);
  add_number<int>(app, "generate.images", [](App& a) -> int& { return a.settings.gen.images; }, 1, 16);
  add_number<int>(app, "generate.preview_every", [](App& a) -> int& { return a.settings.gen.preview_every; }, 1, 100);
  add_bool(app, "generate.graphs", [](App& a) -> bool& { return a.settings.gen.graphs; });
  add_text(app, "generate.output_dir", [](App& a) -> std::string& { return a.settings.gen.output_dir; });
  add_text(app, "generate.mode", [](App& a) -> std::string& { return a.settings.gen.mode; });
  add_choice(app, "generate.sampler", [](App& a) -> int& { return a.settings.gen.sampler; }, {"ddpm", "ddim"});
  {
    App::Field f;
    f.get = [](const App& a) { return json(a.settings.gen.class_id); };
    f.set = [](App& a, const std::string& v) {
      const auto names = class_names(a);
      const auto idx = blr::find_label(names, v);
      if (!idx) throw blr::InputError(blr::cat("generate.class: '", v, "' is not a class of the model (0..",
                                               names.size() - 1, " or a name)"));
      a.settings.gen.class_id = *idx;
    };
    app.fields["generate.class"] = f;
  }
  add_choice(app, "classify.source", [](App& a) -> int& { return a.settings.cls.source; },
             {"camera", "video", "images", "pipeline"});
  add_text(app, "classify.camera", [](App& a) -> std::string& { return a.settings.cls.camera; });
  add_text(app, "classify.video", [](App& a) -> std::string& { return a.settings.cls.video; });
  add_text(app, "classify.images", [](App& a) -> std::string& { return a.settings.cls.images; });
  add_text(app, "classify.pipeline", [](App& a) -> std::string& { return a.settings.cls.pipeline; });
  add_bool(app, "classify.loop", [](App& a) -> bool& { return a.settings.cls.loop; });
  add_number<int>(app, "classify.topk", [](App& a) -> int& { return a.settings.cls.topk; }, 1, 10);
  add_text(app, "classify.mode", [](App& a) -> std::string& { return a.settings.cls.mode; });
  add_choice(app, "compare.section", [](App& a) -> int& { return a.settings.cmp.section; }, {"classify", "generate"});
  add_number<float>(app, "compare.gain", [](App& a) -> float& { return a.settings.cmp.gain; }, 0.1, 1000);
  add_text(app, "compare.mode_a", [](App& a) -> std::string& { return a.settings.cmp.mode_a; });
  add_text(app, "compare.mode_b", [](App& a) -> std::string& { return a.settings.cmp.mode_b; });
  add_choice(app, "models.kind", [](App& a) -> int& { return a.settings.models.kind; }, {"dit", "vae", "vit"});
  add_text(app, "models.dit", [](App& a) -> std::string& { return a.settings.models.path[0]; });
  add_text(app, "models.vae", [](App& a) -> std::string& { return a.settings.models.path[1]; });
  add_text(app, "models.vit", [](App& a) -> std::string& { return a.settings.models.path[2]; });
  add_text(app, "models.mode", [](App& a) -> std::string& { return a.settings.models.mode; });
  add_text(app, "models.rules", [](App& a) -> std::string& { return a.settings.models.rules; });
  add_text(app, "models.budget", [](App& a) -> std::string& { return a.settings.models.budget; });
  add_bool(app, "view.overlay", [](App& a) -> bool& { return a.settings.window.overlay; });
  add_bool(app, "view.messages", [](App& a) -> bool& { return a.settings.window.messages; });
  add_bool(app, "view.nearest", [](App& a) -> bool& { return a.settings.window.nearest; });
  add_number<float>(app, "view.panel_width", [](App& a) -> float& { return a.settings.window.panel_width; }, 260, 900);
}

}  // namespace studio
