// libFuzzer target: the restricted unpickler for PyTorch checkpoints (engine/io/torch_pickle.h).
// Whatever the bytes, unpickle_torch() must either build a graph or throw blr::InputError: any other
// exception, crash, out-of-bounds access, leak, hang or unbounded allocation is a bug. On success the
// graph's invariants are checked, the state dict is selected as a loader would, and every selected tensor
// is materialised from a zero-filled storage of the size its persistent id declares (when small), so the
// geometry checks and the strided copy are exercised together under AddressSanitizer.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "engine/core/error.h"
#include "engine/io/torch_pickle.h"

namespace {

void require(bool ok) {
  if (!ok) std::abort();  // an invariant the reader promises is broken: report it as a crash
}

void exercise(const blr::PickleGraph& g, const std::string& key) {
  blr::TorchStateDict sd;
  try {
    sd = blr::select_state_dict(g, key, "fuzz");
  } catch (const blr::InputError&) {
    return;
  }
  require(!sd.tensors.empty());
  for (const auto& [name, index] : sd.tensors) {
    require(index < g.tensors.size());
    const blr::TorchTensorRef& t = g.tensors[index];
    require(t.storage < g.storages.size());
    const blr::TorchStorageRef& s = g.storages[t.storage];
    require(t.numel >= 0 && t.extent >= 0 && t.extent <= s.numel);
    const size_t es = blr::dtype_size(s.dtype);
    if (static_cast<uint64_t>(s.numel) * es > (1u << 20) || t.numel > (1 << 20)) continue;  // keep runs fast
    const std::vector<uint8_t> storage(static_cast<size_t>(s.numel) * es + 1, 0);  // +1: never zero-sized
    const blr::Tensor out = blr::materialize_torch_tensor(t, s.dtype, storage.data(), storage.size() - 1, key == "ema");
    require(out.numel() == t.numel && out.is_contiguous());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  blr::PickleGraph g;
  try {
    g = blr::unpickle_torch(data, size, "fuzz");
  } catch (const blr::InputError&) {
    return 0;
  }
  require(g.root < g.objects.size());
  for (const auto& t : g.tensors) require(t.storage < g.storages.size() && t.extent <= g.storages[t.storage].numel);
  exercise(g, "");
  exercise(g, "ema");
  return 0;
}
