// One way to read model weights whatever the file format: .safetensors (memory-mapped), and PyTorch's
// zip+pickle .pt/.pth/.bin files when built with libzip (torch_checkpoint.h). Model loaders only ever see
// this interface, so every model accepts every format. Tensors come back as host tensors in the file's
// dtype; get_as() converts (e.g. fp32 checkpoints to bf16 at load).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/tensor.h"
#include "engine/io/safetensors.h"

namespace blr {

class CheckpointReader {
 public:
  virtual ~CheckpointReader() = default;
  virtual const std::string& path() const = 0;
  virtual std::vector<std::string> names() const = 0;
  virtual bool has(const std::string& name) const = 0;
  virtual TensorInfo info(const std::string& name) const = 0;
  virtual Tensor get(const std::string& name) const = 0;
  virtual const std::map<std::string, std::string>& metadata() const = 0;
  virtual std::string format() const = 0;  // "safetensors", "pytorch-zip"
};

struct CheckpointOptions {
  // For PyTorch files holding several state dicts ({"ema": ..., "model": ...}): which one to read.
  // Empty = find it automatically (ema, then model, then state_dict, then the top level).
  std::string key;
};

class Checkpoint {
 public:
  Checkpoint() = default;
  explicit Checkpoint(std::shared_ptr<CheckpointReader> reader) : reader_(std::move(reader)) {}
  // Picks the reader by the file's first bytes (zip magic -> PyTorch, else safetensors). Throws
  // InputError "<path>: <problem>" for missing, unreadable or malformed files.
  static Checkpoint open(const std::string& path, const CheckpointOptions& options = {});

  bool is_open() const { return reader_ != nullptr; }
  const std::string& path() const { return reader_->path(); }
  std::string format() const { return reader_->format(); }
  std::vector<std::string> names() const { return reader_->names(); }
  bool has(const std::string& name) const { return reader_->has(name); }
  TensorInfo info(const std::string& name) const { return reader_->info(name); }
  // Throws InputError "<path>: tensor '<name>' not found" when absent.
  Tensor get(const std::string& name) const { return reader_->get(name); }
  // get() converted to `dtype` (contiguous host copy unless it already matches).
  Tensor get_as(const std::string& name, DType dtype) const;
  // get_as() after checking the shape: "<path>: tensor '<name>': shape [a,b], expected [c,d]".
  Tensor get_checked(const std::string& name, const Shape& expected, DType dtype) const;
  const std::map<std::string, std::string>& metadata() const { return reader_->metadata(); }
  std::string metadata_or(const std::string& key, const std::string& fallback) const;

 private:
  std::shared_ptr<CheckpointReader> reader_;
};

// An in-memory set of named host tensors behind the same interface (tests, compression output).
class TensorMapReader final : public CheckpointReader {
 public:
  TensorMapReader(std::string label, std::map<std::string, Tensor> tensors,
                  std::map<std::string, std::string> metadata = {});
  const std::string& path() const override { return label_; }
  std::vector<std::string> names() const override;
  bool has(const std::string& name) const override { return tensors_.count(name) != 0; }
  TensorInfo info(const std::string& name) const override;
  Tensor get(const std::string& name) const override;
  const std::map<std::string, std::string>& metadata() const override { return metadata_; }
  std::string format() const override { return "memory"; }

 private:
  std::string label_;
  std::map<std::string, Tensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace blr
