#include "tests/models/vae_test_util.h"

#include "engine/core/error.h"
#include "engine/models/vae/vae_random.h"
#include "tests/common/test_util.h"

namespace blr::test {

VaeGolden load_vae_golden() {
  VaeGolden g;
  g.model = Checkpoint::open(data_path("vae_tiny/model.safetensors"));
  const Checkpoint io = Checkpoint::open(data_path("vae_tiny/io.safetensors"));
  g.latent = io.get_as("latent", DType::F32).clone();
  g.image = io.get_as("image", DType::F32).clone();
  return g;
}

std::map<std::string, Tensor> checkpoint_tensors(const Checkpoint& ckpt) {
  std::map<std::string, Tensor> out;
  for (const std::string& name : ckpt.names()) out[name] = ckpt.get_as(name, DType::F32).clone();
  return out;
}

Checkpoint in_memory(std::map<std::string, Tensor> tensors, std::map<std::string, std::string> metadata,
                     const std::string& label) {
  return Checkpoint(std::make_shared<TensorMapReader>(label, std::move(tensors), std::move(metadata)));
}

Checkpoint random_sd_vae(uint64_t seed) { return random_vae_checkpoint(sd_vae_config(), seed); }

int64_t decoder_parameter_count(const Checkpoint& ckpt) {
  int64_t n = 0;
  for (const std::string& name : ckpt.names())
    if (name.rfind("decoder.", 0) == 0 || name.rfind("post_quant_conv.", 0) == 0) n += shape_numel(ckpt.info(name).shape);
  return n;
}

}  // namespace blr::test
