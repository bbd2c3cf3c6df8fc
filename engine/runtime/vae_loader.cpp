#include "engine/runtime/vae_loader.h"

#include <utility>

#include "engine/core/error.h"

#if __has_include("engine/models/vae/vae_decoder.h")
#include "engine/models/vae/vae_decoder.h"
#define BLR_VAE_DECODER_FOUND 1
#elif __has_include("engine/models/vae/vae.h")
#include "engine/models/vae/vae.h"
#define BLR_VAE_DECODER_FOUND 1
#endif

namespace blr {

#if defined(BLR_VAE_DECODER_FOUND)
namespace {

template <typename T>
T& deref(T& v) { return v; }
template <typename T>
T& deref(std::unique_ptr<T>& v) { return *v; }
template <typename T>
T& deref(std::shared_ptr<T>& v) { return *v; }

// Owns whatever VaeDecoder::load returns (the object or a pointer to it).
template <typename Loaded>
class OwnedVae final : public LatentDecoder {
 public:
  OwnedVae(Loaded&& vae, DType dtype, std::string name) : vae_(std::move(vae)), dtype_(dtype), name_(std::move(name)) {}
  void decode(Ops& ops, const Tensor& latent, Tensor& image) override { deref(vae_).decode(ops, latent, image); }
  DType dtype() const override { return dtype_; }
  std::string name() const override { return name_; }

 private:
  Loaded vae_;
  DType dtype_;
  std::string name_;
};

}  // namespace

bool vae_decoder_available() { return true; }

std::unique_ptr<LatentDecoder> load_vae_decoder(const Checkpoint& ckpt, DType dtype, Arena& arena) {
  auto vae = VaeDecoder::load(ckpt, dtype, &arena);
  using Loaded = decltype(vae);
  return std::make_unique<OwnedVae<Loaded>>(std::move(vae), dtype, "sd-vae " + ckpt.path());
}
#else
bool vae_decoder_available() { return false; }

std::unique_ptr<LatentDecoder> load_vae_decoder(const Checkpoint& ckpt, DType, Arena&) {
  throw Error(cat(ckpt.path(), ": this build has no VAE decoder (engine/models/vae is missing)"));
}
#endif

}  // namespace blr
