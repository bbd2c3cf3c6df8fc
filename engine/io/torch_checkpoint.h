// PyTorch checkpoints (torch.save since 1.6: a zip holding data.pkl and one file per storage), read by a
// restricted unpickler that can only build tensors and containers (see torch_pickle.h). Available when the
// build found libzip; otherwise open_torch_checkpoint() explains how to convert the file instead.
#pragma once

#include <memory>
#include <string>

#include "engine/io/checkpoint.h"

namespace blr {

bool torch_checkpoints_supported();
// `key` selects a nested state dict ("ema", "model", ...); empty = automatic.
std::shared_ptr<CheckpointReader> open_torch_checkpoint(const std::string& path, const std::string& key);

}  // namespace blr
