#include "tests/models/checked_forward_util.h"

#include "engine/io/checkpoint.h"
#include "tests/common/test_util.h"

namespace blr::test {

namespace {

// `host` (any float dtype) as a contiguous tensor of `dtype` on the arena's device (host tensors as they
// are when the arena is on the CPU and no conversion is needed).
Tensor place(const Tensor& host, DType dtype, Arena& arena) {
  const Tensor converted = host.dtype() == dtype ? host.to_host() : host.to_host().to_dtype(dtype);
  if (arena.device() == Device::CPU) return converted;
  return converted.to_device(arena, MemCategory::Other, "test input");
}

Tensor host_f32(Ops& ops, const Tensor& t) {
  ops.synchronize();
  const Tensor h = t.to_host();
  return h.dtype() == DType::F32 ? h : h.to_dtype(DType::F32);
}

}  // namespace

Tensor vit_logits(Ops& ops, Arena& arena, const VitModel& m, const Tensor& nhwc, VitBuffers* buffers) {
  VitBuffers b = plan_vit_buffers(m.config, m.dtype, nhwc.dim(0), 1, arena);
  b.image.copy_from(nhwc.to_host().to_dtype(m.dtype));
  if (buffers) *buffers = b;
  vit_forward(ops, m, b);
  return host_f32(ops, b.logits);
}

Tensor vit_golden_input_nhwc() {
  const Checkpoint data = Checkpoint::open(data_path("vit_tiny/golden.safetensors"));
  return data.get_as("input", DType::F32).transpose(1, 2).transpose(2, 3).to_host();
}

VitModel load_vit_on(const Checkpoint& ck, DType dtype, Arena& arena) {
  VitLoadOptions o;
  o.dtype = dtype;
  o.arena = &arena;
  o.use_gpu_compression = arena.device() == Device::CUDA;
  return load_vit(ck, o);
}

Tensor dit_output(Ops& ops, Arena& arena, const DitModel& m, const Tensor& x, const Tensor& t, const Tensor& y) {
  const int64_t B = x.dim(0);
  const DitConfig& c = m.config();
  const Tensor dx = place(x, m.dtype(), arena);
  const Tensor dt = place(t, DType::F32, arena);
  const Tensor dy = arena.device() == Device::CPU ? y : y.to_device(arena, MemCategory::Other, "labels");
  DitWorkspace ws = m.plan(B, arena);
  Tensor out = Tensor::empty({B, c.input_size, c.input_size, c.out_channels()}, m.dtype(), arena,
                             MemCategory::Activations, "dit out");
  m.forward(ops, dx, dt, dy, ws, out);
  return host_f32(ops, out);
}

DitModel load_dit_on(const Checkpoint& ck, DType dtype, Arena& arena) {
  DitLoadOptions o;
  o.dtype = dtype;
  o.arena = &arena;
  return DitModel::load(ck, o);
}

Tensor vae_image(Ops& ops, Arena& arena, VaeDecoder& vae, const Tensor& latent, DType io_dtype) {
  const Tensor dl = place(latent, io_dtype, arena);
  Tensor image = Tensor::empty(vae.image_shape(dl.shape()), io_dtype, arena, MemCategory::Other, "vae image");
  vae.decode(ops, dl, image);
  return host_f32(ops, image);
}

}  // namespace blr::test
