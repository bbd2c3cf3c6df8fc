// libFuzzer target: a whole PyTorch checkpoint file (zip container through libzip, data.pkl through the
// restricted unpickler, storages checked and materialised). The input becomes an in-memory file
// (memfd) opened by path exactly as `blr info` would; every outcome but success or blr::InputError is a
// bug. Seeded with the .pt fixtures, so mutations start from real torch.save zips.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "engine/core/error.h"
#include "engine/io/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = memfd_create("fuzz.pt", 0);
  if (fd < 0) std::abort();
  size_t done = 0;
  while (done < size) {
    const ssize_t n = write(fd, data + done, size - done);
    if (n <= 0) std::abort();
    done += static_cast<size_t>(n);
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  for (const char* key : {"", "opt"}) {
    try {
      blr::CheckpointOptions opt;
      opt.key = key;
      const blr::Checkpoint ckpt = blr::Checkpoint::open(path, opt);
      for (const auto& name : ckpt.names()) {
        const blr::Tensor t = ckpt.get(name);
        const blr::TensorInfo info = ckpt.info(name);
        if (t.shape() != info.shape || t.dtype() != info.dtype || !t.is_contiguous()) std::abort();
        unsigned sum = 0;
        const auto* p = static_cast<const uint8_t*>(t.data());
        for (size_t i = 0; i < t.nbytes(); ++i) sum += p[i];
        volatile unsigned sink = sum;
        (void)sink;
      }
    } catch (const blr::InputError&) {
    }
  }
  close(fd);
  return 0;
}
