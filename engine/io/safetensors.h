// safetensors files (https://huggingface.co/docs/safetensors): an 8-byte little-endian header length,
// a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {string: string}}, then the data.
// The reader memory-maps the file and hands out zero-copy host views; it validates everything before
// trusting it (header inside the file, JSON well-formed, dtype known, shape × dtype size equal to the
// byte range, ranges inside the data and not overlapping), and every error names the file, the tensor
// and the problem.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/core/tensor.h"

namespace blr {

struct TensorInfo {
  DType dtype = DType::F32;
  Shape shape;
};

class SafetensorsFile {
 public:
  // Opens and validates; throws InputError "<path>: <problem>".
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);
  // Parses and validates an in-memory image of a file (used by the fuzzer and by open()).
  static std::shared_ptr<SafetensorsFile> from_memory(std::shared_ptr<const void> bytes, size_t size,
                                                      const std::string& label);

  const std::string& path() const { return path_; }
  const std::vector<std::string>& names() const { return names_; }  // in file order of their data
  bool has(const std::string& name) const { return entries_.count(name) != 0; }
  TensorInfo info(const std::string& name) const;
  // Zero-copy host view of the mapped data when its address is aligned for the dtype, else a copy.
  Tensor get(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  size_t data_bytes() const { return data_size_; }

 private:
  struct Entry {
    TensorInfo info;
    size_t begin = 0, end = 0;
  };
  std::string path_;
  std::shared_ptr<const void> bytes_;  // whole file image (mapping)
  const unsigned char* data_ = nullptr;  // start of the data section
  size_t data_size_ = 0;
  std::map<std::string, Entry> entries_;
  std::vector<std::string> names_;
  std::map<std::string, std::string> metadata_;
};

// Writes tensors (any device, any dtype; copied to the host as needed) and string metadata. Data is laid
// out without holes, largest element size first, so every tensor stays aligned. Writes to a temporary
// file next to `path` and renames it into place, so a failure never leaves a half-written file.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace blr
