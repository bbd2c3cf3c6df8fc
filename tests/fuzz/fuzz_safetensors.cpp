// libFuzzer target: the safetensors parser (engine/io/safetensors.h). Whatever the bytes,
// SafetensorsFile::from_memory() must either accept the file or throw blr::InputError; an accepted file's
// tensors must all be readable (every byte touched, as a loader would) without leaving the buffer.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "engine/core/error.h"
#include "engine/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // An exact-size heap copy, so AddressSanitizer sees any read past the end of the "file".
  std::shared_ptr<uint8_t> bytes(static_cast<uint8_t*>(std::malloc(size ? size : 1)), std::free);
  if (size) std::memcpy(bytes.get(), data, size);
  std::shared_ptr<blr::SafetensorsFile> f;
  try {
    f = blr::SafetensorsFile::from_memory(bytes, size, "fuzz");
  } catch (const blr::InputError&) {
    return 0;
  }
  unsigned sum = 0;
  for (const auto& name : f->names()) {
    const blr::TensorInfo info = f->info(name);
    const blr::Tensor t = f->get(name);
    if (t.dtype() != info.dtype || t.shape() != info.shape) std::abort();
    const auto* p = static_cast<const uint8_t*>(t.data());
    for (size_t i = 0; i < t.nbytes(); ++i) sum += p[i];
  }
  for (const auto& [k, v] : f->metadata()) sum += static_cast<unsigned>(k.size() + v.size());
  volatile unsigned sink = sum;
  (void)sink;
  return 0;
}
