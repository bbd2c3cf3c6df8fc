// Placeholder used until the PyTorch reader lands (and in builds without libzip).
#include "engine/core/error.h"
#include "engine/io/torch_checkpoint.h"

namespace blr {

bool torch_checkpoints_supported() { return false; }

std::shared_ptr<CheckpointReader> open_torch_checkpoint(const std::string& path, const std::string&) {
  throw InputError(cat(path, ": PyTorch checkpoints (.pt/.bin) are not supported by this build; convert it to "
                             "safetensors with Python: safetensors.torch.save_file(torch.load(f), 'out.safetensors')"));
}

}  // namespace blr
