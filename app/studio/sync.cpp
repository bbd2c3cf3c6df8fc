// Once per frame, on the UI thread: read the tasks' snapshots, upload whatever is new to textures, and turn
// what happened (a model loaded, a generation finished, a camera lost) into messages and history entries.
#include "app/studio/studio.h"

namespace studio {

namespace {

Message::Level to_level(blr::SessionEvent::Level l) {
  switch (l) {
    case blr::SessionEvent::Level::Info: return Message::Level::Info;
    case blr::SessionEvent::Level::Warning: return Message::Level::Warning;
    case blr::SessionEvent::Level::Error: return Message::Level::Error;
  }
  return Message::Level::Info;
}

GenerateSettings params_of(const blr::GenerationJob& job, const std::string& mode) {
  GenerateSettings p;
  p.class_id = job.classes.empty() ? 0 : job.classes.front();
  p.seed = job.seed;
  p.steps = job.steps;
  p.sampler = job.sampler == blr::SamplerKind::DDPM ? 0 : 1;
  p.guidance = job.guidance;
  p.images = static_cast<int>(job.classes.size());
  p.preview_every = job.preview_every;
  p.graphs = job.use_graphs;
  p.mode = mode;
  return p;
}

void finish_generation(App& app, const blr::GenerationStatus& g) {
  if (app.gen_compare_job) {
    app.cmp_result = g;
    if (!g.outputs.empty() && g.outputs[0].rgba.defined())
      upload_rgba(app, app.cmp_a, g.outputs[0].rgba.slice(0, 0, 1),
                  g.outputs[0].device_rgba.defined() ? g.outputs[0].device_rgba.slice(0, 0, 1) : blr::Tensor{});
    if (g.outputs.size() > 1 && g.outputs[1].rgba.defined())
      upload_rgba(app, app.cmp_b, g.outputs[1].rgba.slice(0, 0, 1),
                  g.outputs[1].device_rgba.defined() ? g.outputs[1].device_rgba.slice(0, 0, 1) : blr::Tensor{});
    if (g.outputs.size() == 2 && g.psnr)
      message(app, Message::Level::Info,
              blr::cat("Compared ", g.outputs[0].mode, " and ", g.outputs[1].mode, ": PSNR ",
                       std::isinf(*g.psnr) ? std::string("inf (identical)") : blr::cat(static_cast<int>(*g.psnr * 10) / 10.0, " dB"),
                       ", ", static_cast<int>(g.outputs[0].median_step_ms * 100) / 100.0, " vs ",
                       static_cast<int>(g.outputs[1].median_step_ms * 100) / 100.0, " ms/step"));
    return;
  }
  if (g.outputs.empty() || !g.outputs[0].rgba.defined()) return;
  const blr::GenerationOutput& out = g.outputs[0];
  upload_rgba(app, app.gen_texture, out.rgba, out.rgba.dim(0) == 1 ? out.device_rgba : blr::Tensor{});
  app.showing_preview = false;
  HistoryEntry h;
  h.run = g.run;
  h.params = params_of(g.job, out.mode);
  h.dit_name = out.name;
  h.variant = out.variant;
  h.decoder = out.decoder;
  h.rgba = out.rgba;
  h.mean_step_ms = out.mean_step_ms;
  h.total_ms = out.total_ms;
  h.step_ms = out.step_ms;
  upload_rgba(app, h.texture, out.rgba);
  app.history.push_back(std::move(h));
  if (app.history.size() > 32) app.history.erase(app.history.begin());
  app.history_selected = static_cast<int>(app.history.size()) - 1;
  const auto& names = class_names(app);
  message(app, Message::Level::Info,
          blr::cat("Generated ", class_label(names, g.job.classes.front()), " (seed ", g.job.seed, ", ", g.job.steps,
                   " steps, ", out.mode, ") in ", static_cast<int>(out.total_ms), " ms, ",
                   static_cast<int>(out.median_step_ms * 100) / 100.0, " ms/step"));
}

}  // namespace

void sync_tasks(App& app) {
  refresh_models(app);
  for (const auto& e : app.session->take_events()) message(app, to_level(e.level), e.text);

  const blr::JobStatus job = app.session->job();
  if (job.id != 0 && job.id != app.seen_job && !job.running) {
    app.seen_job = job.id;
    if (job.stage == "done") {
      if (auto info = app.session->model(job.result_id)) {
        remember_recent(app.settings.models.recent[static_cast<int>(info->kind)], info->path);
        app.selected_model = info->id;
        mark_dirty(app);
      }
    }
  }

  const blr::GenerationStatus g = app.gen->status();
  if (g.state == blr::GenerationStatus::State::Running && g.preview.defined() && g.preview_version != app.seen_preview &&
      !app.gen_compare_job) {
    app.seen_preview = g.preview_version;
    upload_rgba(app, app.preview_texture, g.preview);
    app.showing_preview = true;
  }
  if (g.run != 0 && g.run != app.seen_gen_run && g.state != blr::GenerationStatus::State::Running &&
      g.state != blr::GenerationStatus::State::Idle) {
    app.seen_gen_run = g.run;
    app.showing_preview = false;
    switch (g.state) {
      case blr::GenerationStatus::State::Finished: finish_generation(app, g); break;
      case blr::GenerationStatus::State::Cancelled: message(app, Message::Level::Info, "Generation " + g.message); break;
      case blr::GenerationStatus::State::Failed:
        message(app, Message::Level::Error, "Generation failed: " + g.message);
        break;
      default: break;
    }
  }

  const blr::ClassifyStatus c = app.cls->status();
  if (c.frame.defined() && c.frame_version != app.seen_frame) {
    app.seen_frame = c.frame_version;
    const blr::Tensor f = c.frame.is_contiguous() ? c.frame : c.frame.clone();
    app.frame_texture.upload(f.data_as<const uint8_t>(), static_cast<int>(f.dim(1)), static_cast<int>(f.dim(0)), 3);
  }
  if (c.run != app.seen_cls_run) {
    app.seen_cls_run = c.run;
    app.last_cls_state = blr::ClassifyStatus::State::Opening;
  }
  if (c.run != 0 && c.state != app.last_cls_state) {
    app.last_cls_state = c.state;
    using S = blr::ClassifyStatus::State;
    if (c.state == S::Failed) message(app, Message::Level::Error, blr::cat("Classify: ", c.message));
    else if (c.state == S::Lost) message(app, Message::Level::Warning, blr::cat("Classify: ", c.message, " (press Retry)"));
    else if (c.state == S::Finished)
      message(app, Message::Level::Info,
              blr::cat("Classified ", c.classified, " frames of ", c.source, " at ", static_cast<int>(c.fps * 10) / 10.0,
                       " frames/s", c.compared ? blr::cat(", top-1 agreement ", static_cast<int>(c.agreement() * 1000) / 10.0, "%") : ""));
  }
}

}  // namespace studio
