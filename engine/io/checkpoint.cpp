#include "engine/io/checkpoint.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "engine/core/error.h"
#include "engine/io/torch_checkpoint.h"

namespace blr {

namespace {

class SafetensorsReader final : public CheckpointReader {
 public:
  explicit SafetensorsReader(std::shared_ptr<SafetensorsFile> f) : file_(std::move(f)) {}
  const std::string& path() const override { return file_->path(); }
  std::vector<std::string> names() const override { return file_->names(); }
  bool has(const std::string& name) const override { return file_->has(name); }
  TensorInfo info(const std::string& name) const override { return file_->info(name); }
  Tensor get(const std::string& name) const override { return file_->get(name); }
  const std::map<std::string, std::string>& metadata() const override { return file_->metadata(); }
  std::string format() const override { return "safetensors"; }

 private:
  std::shared_ptr<SafetensorsFile> file_;
};

}  // namespace

Checkpoint Checkpoint::open(const std::string& path, const CheckpointOptions& options) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw InputError(cat(path, ": cannot open: ", std::strerror(errno)));
  unsigned char magic[4] = {0, 0, 0, 0};
  const size_t got = std::fread(magic, 1, 4, f);
  std::fclose(f);
  if (got >= 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4)
    return Checkpoint(open_torch_checkpoint(path, options.key));
  if (got >= 2 && magic[0] == 0x80 && magic[1] <= 5)
    return Checkpoint(open_torch_checkpoint(path, options.key));  // raw pickle: reports legacy format
  return Checkpoint(std::make_shared<SafetensorsReader>(SafetensorsFile::open(path)));
}

Tensor Checkpoint::get_as(const std::string& name, DType dtype) const {
  Tensor t = get(name);
  if (t.dtype() == dtype && t.is_contiguous()) return t;
  return t.to_dtype(dtype);
}

Tensor Checkpoint::get_checked(const std::string& name, const Shape& expected, DType dtype) const {
  const TensorInfo ti = info(name);
  bool ok = ti.shape.size() == expected.size();
  for (size_t i = 0; ok && i < expected.size(); ++i) ok = expected[i] < 0 || expected[i] == ti.shape[i];
  if (!ok)
    throw InputError(cat(path(), ": tensor '", name, "': shape ", shape_str(ti.shape), ", expected ",
                         shape_str(expected)));
  return get_as(name, dtype);
}

std::string Checkpoint::metadata_or(const std::string& key, const std::string& fallback) const {
  auto it = metadata().find(key);
  return it == metadata().end() ? fallback : it->second;
}

TensorMapReader::TensorMapReader(std::string label, std::map<std::string, Tensor> tensors,
                                 std::map<std::string, std::string> metadata)
    : label_(std::move(label)), tensors_(std::move(tensors)), metadata_(std::move(metadata)) {}

std::vector<std::string> TensorMapReader::names() const {
  std::vector<std::string> out;
  for (const auto& kv : tensors_) out.push_back(kv.first);
  return out;
}

TensorInfo TensorMapReader::info(const std::string& name) const {
  const Tensor t = get(name);
  return {t.dtype(), t.shape()};
}

Tensor TensorMapReader::get(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) throw InputError(cat(label_, ": tensor '", name, "' not found"));
  return it->second;
}

}  // namespace blr
