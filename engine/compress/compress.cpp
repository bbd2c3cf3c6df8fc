// compress_weight(): input checks shared by both paths, and the choice between GPU and CPU.
#include "engine/compress/compress.h"

#include <cmath>

#include "engine/compress/compress_util.h"
#include "engine/compress/gpu_compress.h"
#include "engine/core/device.h"
#include "engine/core/error.h"
#include "engine/core/log.h"

namespace blr {

namespace compress_detail {

Tensor host_f32(const Tensor& t) {
  Tensor h = t.device() == Device::CPU ? t : t.to_host();
  if (h.dtype() == DType::F32 && h.is_contiguous()) return h;
  return h.to_dtype(DType::F32);
}

Tensor checked_host_f32(const Tensor& W, const LinearSpec& spec) {
  if (!W.defined() || W.ndim() != 2)
    throw InputError(cat("compress: expected a 2-D weight [out, in], got ", W.defined() ? W.describe() : "nothing"));
  if (!is_floating(W.dtype())) throw InputError(cat("compress: weight ", W.describe(), " is not floating point"));
  validate_spec(spec, W.dim(1), W.dim(0), "weight");
  Tensor w = host_f32(W);
  const float* p = w.data_as<const float>();
  for (int64_t i = 0; i < w.numel(); ++i)
    if (!std::isfinite(p[i]))
      throw InputError(cat("compress: weight ", W.describe(), " holds a non-finite value at flat index ", i));
  return w;
}

bool all_zero(const Tensor& w) {
  const float* p = w.data_as<const float>();
  for (int64_t i = 0; i < w.numel(); ++i)
    if (p[i] != 0.0f) return false;
  return true;
}

Linear zero_layer(const LinearSpec& spec, int64_t in, int64_t out) {
  Linear l;
  l.kind = spec.kind;
  l.in = in;
  l.out = out;
  const int64_t b = spec.blocks, r = spec.rank;
  switch (spec.kind) {
    case LinearKind::Dense: l.weight = Tensor::zeros({out, in}); break;
    case LinearKind::LowRank:
      l.lowrank.A = Tensor::zeros({r, in});
      l.lowrank.B = Tensor::zeros({out, r});
      break;
    case LinearKind::Monarch:
      l.monarch.blocks = b;
      l.monarch.R = Tensor::zeros({b, r, in / b});
      l.monarch.L = Tensor::zeros({b, out / b, r});
      break;
    case LinearKind::Blast:
      l.blast.blocks = b;
      l.blast.U = Tensor::zeros({b, out / b, r});
      l.blast.S = Tensor::zeros({b, b, r});
      l.blast.V = Tensor::zeros({b, r, in / b});
      break;
  }
  return l;
}

}  // namespace compress_detail

CompressResult compress_weight(const Tensor& W, const LinearSpec& spec, const CompressOptions& options) {
  if (options.use_gpu && spec.kind != LinearKind::Dense && gpu_compression_available()) {
    try {
      return compress_weight_gpu(W, spec, options);
    } catch (const InputError&) {
      throw;  // the input is at fault: the CPU would refuse it too
    } catch (const Error& e) {
      // A solver failure or an out-of-memory on the device must not lose the user's run.
      log_warn("GPU compression (", spec.describe(), ") failed, using the CPU instead: ", e.what());
    }
  }
  return compress_weight_cpu(W, spec, options);
}

}  // namespace blr
