#include "engine/diffusion/sampler_args.h"

#include "engine/core/error.h"
#include "engine/diffusion/schedule.h"

namespace blr {

static void require(const Tensor* t, const char* what, Device device) {
  BLR_CHECK(t && t->defined(), "sampler_step: ", what, " is missing");
  BLR_CHECK(t->device() == device, "sampler_step: ", what, " is on ", device_name(t->device()), ", expected ",
            device_name(device));
  BLR_CHECK(t->is_contiguous(), "sampler_step: ", what, " ", t->describe(), " must be contiguous");
}

SamplerShape check_sampler_args(const SamplerStepArgs& a, Device device) {
  require(a.model_out, "model_out", device);
  require(a.x, "x", device);
  require(a.tables, "tables", device);
  require(a.step, "step", device);
  require(a.seeds, "seeds", device);
  const Tensor &mo = *a.model_out, &x = *a.x;
  BLR_CHECK(x.ndim() == 4 && x.dtype() == DType::F32, "sampler_step: x must be f32 [B,H,W,C], got ", x.describe());
  SamplerShape s;
  s.batch = x.dim(0);
  s.height = x.dim(1);
  s.width = x.dim(2);
  s.channels = x.dim(3);
  BLR_CHECK(mo.ndim() == 4 && is_floating(mo.dtype()), "sampler_step: model_out must be [Bm,H,W,Cm], got ",
            mo.describe());
  BLR_CHECK(mo.dim(0) == s.batch || mo.dim(0) == 2 * s.batch, "sampler_step: model_out has ", mo.dim(0),
            " rows, expected ", s.batch, " or ", 2 * s.batch, " (with guidance)");
  BLR_CHECK(mo.dim(1) == s.height && mo.dim(2) == s.width, "sampler_step: model_out ", shape_str(mo.shape()),
            " and x ", shape_str(x.shape()), " differ in H, W");
  s.guided = mo.dim(0) == 2 * s.batch;
  s.out_channels = mo.dim(3);
  const int64_t need = a.learned_sigma ? 2 * s.channels : s.channels;
  BLR_CHECK(s.out_channels >= need, "sampler_step: model_out has ", s.out_channels, " channels, need ", need,
            a.learned_sigma ? " (noise + learned variance)" : "");
  BLR_CHECK(a.guided_channels >= 0 && a.guided_channels <= s.channels, "sampler_step: guided_channels ",
            a.guided_channels, " outside [0, ", s.channels, "]");
  const Tensor& tab = *a.tables;
  BLR_CHECK(tab.ndim() == 2 && tab.dim(1) == kScheduleColumns && tab.dtype() == DType::F32 && tab.dim(0) >= 1,
            "sampler_step: tables must be f32 [K, ", kScheduleColumns, "], got ", tab.describe());
  s.steps = tab.dim(0);
  BLR_CHECK(a.step->dtype() == DType::I32 && a.step->numel() >= 1, "sampler_step: step must be i32 [1], got ",
            a.step->describe());
  BLR_CHECK(a.seeds->dtype() == DType::I64 && a.seeds->numel() == s.batch, "sampler_step: seeds must be i64 [",
            s.batch, "], got ", a.seeds->describe());
  if (a.model_in) {
    require(a.model_in, "model_in", device);
    const Tensor& in = *a.model_in;
    BLR_CHECK(in.ndim() == 4 && is_floating(in.dtype()) && (in.dim(0) == s.batch || in.dim(0) == 2 * s.batch) &&
                  in.dim(1) == s.height && in.dim(2) == s.width && in.dim(3) == s.channels,
              "sampler_step: model_in must be [B or 2B, H, W, C] = [", s.batch, ",", s.height, ",", s.width, ",",
              s.channels, "], got ", in.describe());
    s.in_batch = in.dim(0);
  }
  if (a.noise) {
    require(a.noise, "noise", device);
    BLR_CHECK(a.noise->dtype() == DType::F32 &&
                  a.noise->shape() == Shape({s.steps, s.batch, s.height, s.width, s.channels}),
              "sampler_step: injected noise must be f32 [K,B,H,W,C] = [", s.steps, ",", s.batch, ",", s.height, ",",
              s.width, ",", s.channels, "], got ", a.noise->describe());
  }
  if (a.pred_x0) {
    require(a.pred_x0, "pred_x0", device);
    BLR_CHECK(a.pred_x0->dtype() == DType::F32 && a.pred_x0->shape() == x.shape(),
              "sampler_step: pred_x0 must be f32 ", shape_str(x.shape()), ", got ", a.pred_x0->describe());
  }
  return s;
}

void check_sampler_timesteps_args(const Tensor& tables, const Tensor& step, const Tensor& t, Device device) {
  for (const Tensor* p : {&tables, &step, &t}) {
    BLR_CHECK(p->defined() && p->device() == device && p->is_contiguous(),
              "sampler_timesteps: tensors must be contiguous and on ", device_name(device));
  }
  BLR_CHECK(tables.ndim() == 2 && tables.dim(1) == kScheduleColumns && tables.dtype() == DType::F32 &&
                tables.dim(0) >= 1,
            "sampler_timesteps: tables must be f32 [K, ", kScheduleColumns, "], got ", tables.describe());
  BLR_CHECK(step.dtype() == DType::I32 && step.numel() >= 1, "sampler_timesteps: step must be i32 [1]");
  BLR_CHECK(t.dtype() == DType::F32 && t.ndim() == 1, "sampler_timesteps: t must be f32 [B], got ", t.describe());
}

}  // namespace blr
