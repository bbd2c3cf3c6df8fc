// PyTorch zip checkpoints: finds <folder>/data.pkl (the folder name varies with how the file was saved),
// unpickles it with the restricted reader, picks the state dict, checks every storage it needs against
// the zip before handing out anything, and materialises tensors on demand: zero-copy views of the mapped
// file when a tensor is contiguous, aligned and little-endian, else a contiguous copy that follows its
// strides and storage offset (and swaps bytes for archives saved on big-endian machines).
#include "engine/io/torch_checkpoint.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "engine/core/error.h"
#include "engine/io/torch_pickle.h"
#include "engine/io/torch_zip.h"

namespace blr {

namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the PyTorch reader assumes a little-endian host");

constexpr uint64_t kMaxPickleBytes = uint64_t(256) << 20;  // a DiT-XL state dict's data.pkl is ~100 KB

// torch.save before 1.6 (and with _use_new_zipfile_serialization=False) starts with a pickled magic
// number: PROTO 2, LONG1 of 10 bytes 0x1950a86a20f9469cfc6c.
bool is_legacy_torch(const uint8_t* p, size_t n) {
  static const uint8_t magic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  return n >= sizeof magic && std::memcmp(p, magic, sizeof magic) == 0;
}

std::string legacy_message(const std::string& path) {
  return cat(path, ": a legacy PyTorch checkpoint (written by torch.save before PyTorch 1.6, or with "
                   "_use_new_zipfile_serialization=False), which this reader does not load. Re-save it with a current "
                   "PyTorch: python -c \"import torch; torch.save(torch.load('IN', map_location='cpu'), 'OUT.pt')\" "
                   "(only for files you trust: torch.load runs the pickle), or write safetensors directly");
}

bool is_dense(const TorchTensorRef& t) {
  int64_t expect = 1;
  for (size_t d = t.shape.size(); d-- > 0;) {
    if (t.shape[d] != 1 && t.stride[d] != expect) return false;
    expect *= t.shape[d];
  }
  return true;
}

class TorchCheckpointReader final : public CheckpointReader {
 public:
  TorchCheckpointReader(std::string path, std::shared_ptr<ZipReader> zip, std::string folder, PickleGraph graph,
                        TorchStateDict state, bool big_endian)
      : path_(std::move(path)), zip_(std::move(zip)), folder_(std::move(folder)), graph_(std::move(graph)),
        big_endian_(big_endian) {
    for (auto& [name, idx] : state.tensors) {
      index_[name] = idx;
      names_.push_back(name);
    }
    metadata_ = state.scalars;
    metadata_["pytorch.state_dict"] = state.key.empty() ? "(top level)" : state.key;
    if (big_endian_) metadata_["pytorch.byteorder"] = "big";
    check_storages();
  }

  const std::string& path() const override { return path_; }
  std::vector<std::string> names() const override { return names_; }
  bool has(const std::string& name) const override { return index_.count(name) != 0; }
  TensorInfo info(const std::string& name) const override {
    const TorchTensorRef& t = tensor(name);
    return {graph_.storages[t.storage].dtype, t.shape};
  }
  const std::map<std::string, std::string>& metadata() const override { return metadata_; }
  std::string format() const override { return "pytorch-zip"; }

  Tensor get(const std::string& name) const override {
    const TorchTensorRef& t = tensor(name);
    const TorchStorageRef& s = graph_.storages[t.storage];
    const size_t es = dtype_size(s.dtype);
    if (t.numel == 0) return Tensor::zeros(t.shape, s.dtype);
    const ZipBytes bytes = storage_bytes(s);
    const uint8_t* base = bytes.data + static_cast<size_t>(t.offset) * es;
    const bool aligned = reinterpret_cast<uintptr_t>(base) % es == 0;
    if ((!big_endian_ || es == 1) && aligned && is_dense(t))
      return Tensor::from_blob(const_cast<uint8_t*>(base), t.shape, s.dtype, Device::CPU,
                               std::const_pointer_cast<void>(bytes.holder));
    return materialize_torch_tensor(t, s.dtype, bytes.data, bytes.size, big_endian_);
  }

 private:
  const TorchTensorRef& tensor(const std::string& name) const {
    auto it = index_.find(name);
    if (it == index_.end()) throw InputError(cat(path_, ": tensor '", name, "' not found"));
    return graph_.tensors[it->second];
  }
  std::string entry_name(const TorchStorageRef& s) const { return folder_ + "/data/" + s.key; }

  // Every tensor's storage must exist in the zip and hold what the pickle says it holds; checked at open
  // so a broken file fails at once, not halfway through loading a model. Also notes how many bytes of each
  // storage the chosen tensors reach, so no more than that is ever decompressed.
  void check_storages() {
    for (const auto& name : names_) {
      const TorchTensorRef& t = graph_.tensors[index_.at(name)];
      const TorchStorageRef& s = graph_.storages[t.storage];
      if (t.numel == 0) continue;
      const ZipEntry* e = zip_->find(entry_name(s));
      const std::string dt = dtype_name(s.dtype);
      if (!e)
        throw InputError(cat(path_, ": tensor '", name, "': storage '", s.key, "' (zip entry '", entry_name(s),
                             "') is missing from the archive"));
      const uint64_t need = static_cast<uint64_t>(t.extent) * dtype_size(s.dtype);
      if (e->size < need)
        throw InputError(cat(path_, ": tensor '", name, "' (", dt, " ", shape_str(t.shape), " at storage offset ",
                             t.offset, ") needs ", need, " bytes of storage '", s.key, "' but the zip entry holds ",
                             e->size, "; the storage is shorter than the tensor"));
      uint64_t& reach = reach_[s.key];
      reach = std::max(reach, need);
    }
  }

  // The bytes a storage's tensors can reach, shared between all tensors of that storage while any lives.
  ZipBytes storage_bytes(const TorchStorageRef& s) const {
    const ZipEntry* e = zip_->find(entry_name(s));
    if (!e) throw InputError(cat(path_, ": storage '", s.key, "' is missing from the archive"));
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(s.key);
    if (it != cache_.end()) {
      if (auto held = it->second.holder.lock()) {
        ZipBytes b = it->second.bytes;
        b.holder = held;
        return b;
      }
    }
    // As far as any chosen tensor of this storage reaches (the whole entry is a view when stored).
    auto reach = reach_.find(s.key);
    ZipBytes b = zip_->read(*e, reach == reach_.end() ? 0 : reach->second);
    cache_[s.key] = {b, b.holder};
    cache_[s.key].bytes.holder.reset();
    return b;
  }

  struct Cached {
    ZipBytes bytes;  // without holder
    std::weak_ptr<const void> holder;
  };

  std::string path_;
  std::shared_ptr<ZipReader> zip_;
  std::string folder_;
  PickleGraph graph_;
  bool big_endian_ = false;
  std::map<std::string, uint32_t> index_;
  std::vector<std::string> names_;
  std::map<std::string, std::string> metadata_;
  std::map<std::string, uint64_t> reach_;  // storage key -> bytes the chosen tensors reach
  mutable std::mutex cache_mu_;
  mutable std::map<std::string, Cached> cache_;
};

// "<folder>/data.pkl" with exactly one folder level; the folder is the saved file's stem, "archive", ...
std::string find_folder(const ZipReader& zip, const std::string& path) {
  std::vector<std::string> folders;
  bool torchscript = false;
  for (const auto& e : zip.entries()) {
    const size_t slash = e.name.find('/');
    if (slash == std::string::npos || slash == 0) continue;
    const std::string rest = e.name.substr(slash + 1);
    if (rest == "data.pkl") folders.push_back(e.name.substr(0, slash));
    if (rest == "constants.pkl" || rest.rfind("code/", 0) == 0) torchscript = true;
  }
  if (folders.size() == 1) return folders[0];
  if (folders.empty()) {
    if (torchscript)
      throw InputError(cat(path, ": a TorchScript archive (torch.jit.save) without a state dict; save the weights "
                                 "with torch.save(model.state_dict(), 'weights.pt') instead"));
    throw InputError(cat(path, ": a zip archive but not a PyTorch checkpoint (no <folder>/data.pkl entry)"));
  }
  throw InputError(cat(path, ": holds ", folders.size(), " data.pkl entries ('", folders[0], "', '", folders[1],
                       "'...); expected one"));
}

bool read_byteorder(const ZipReader& zip, const std::string& folder, const std::string& path) {
  const ZipEntry* e = zip.find(folder + "/byteorder");
  if (!e) return false;  // written since PyTorch 1.12ish; older files are little-endian
  if (e->size > 16) throw InputError(cat(path, ": ", e->name, " is ", e->size, " bytes; expected 'little' or 'big'"));
  const ZipBytes b = zip.read(*e, e->size);
  const std::string v(reinterpret_cast<const char*>(b.data), b.size);
  if (v == "little") return false;
  if (v == "big") return true;
  throw InputError(cat(path, ": ", e->name, " says '", v.substr(0, 16), "'; expected 'little' or 'big'"));
}

}  // namespace

bool torch_checkpoints_supported() { return true; }

std::shared_ptr<CheckpointReader> open_torch_checkpoint(const std::string& path, const std::string& key) {
  {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw InputError(cat(path, ": cannot open: ", std::strerror(errno)));
    uint8_t head[16] = {};
    const size_t got = std::fread(head, 1, sizeof head, f);
    std::fclose(f);
    const bool zip_magic = got >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4;
    if (!zip_magic) {
      if (is_legacy_torch(head, got)) throw InputError(legacy_message(path));
      if (got >= 2 && head[0] == 0x80)
        throw InputError(cat(path, ": a bare Python pickle, not a PyTorch zip checkpoint; refusing to load it "
                                   "(re-save the weights with torch.save or as safetensors)"));
      throw InputError(cat(path, ": not a PyTorch zip checkpoint (no zip signature)"));
    }
  }
  auto zip = ZipReader::open(path);
  const std::string folder = find_folder(*zip, path);
  const ZipEntry* pkl = zip->find(folder + "/data.pkl");
  if (pkl->size > kMaxPickleBytes)
    throw InputError(cat(path, ": ", pkl->name, " declares ", pkl->size, " bytes (at most ", kMaxPickleBytes,
                         " accepted for a state dict's pickle)"));
  const ZipBytes pickle = zip->read(*pkl, pkl->size);
  const std::string label = cat(path, ": ", pkl->name);
  PickleGraph graph = unpickle_torch(pickle.data, pickle.size, label);
  TorchStateDict state = select_state_dict(graph, key, path);
  const bool big_endian = read_byteorder(*zip, folder, path);
  return std::make_shared<TorchCheckpointReader>(path, std::move(zip), folder, std::move(graph), std::move(state),
                                                 big_endian);
}

}  // namespace blr
