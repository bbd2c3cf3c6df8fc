#include "app/studio/interop.h"

#include <cuda_gl_interop.h>
#include <cuda_runtime_api.h>

#include <chrono>

namespace studio {

void Interop::init(bool cuda_backend, bool disabled) {
  const std::string vendor = gl_vendor();
  enabled_ = false;
  if (disabled) reason_ = "host copy (interop disabled by --no-interop)";
  else if (!cuda_backend) reason_ = "host copy (CPU backend)";
  else if (vendor.find("NVIDIA") == std::string::npos) reason_ = "host copy (GL vendor is " + vendor + ", not NVIDIA)";
  else {
    enabled_ = true;
    reason_ = "CUDA-GL interop";
  }
}

bool Interop::upload(GlTexture& tex, const blr::Tensor& img) {
  if (!enabled_ || !img.defined() || !img.on_cuda() || img.dtype() != blr::DType::U8 || !img.is_contiguous())
    return false;
  const int nd = img.ndim();
  if (!((nd == 4 && img.dim(0) == 1) || nd == 3) || img.dim(-1) != 4) return false;
  const int h = static_cast<int>(img.dim(-3)), w = static_cast<int>(img.dim(-2));
  const auto t0 = std::chrono::steady_clock::now();
  auto fail = [&](cudaError_t e, const char* what) {
    reason_ = std::string("host copy (") + what + " failed: " + cudaGetErrorString(e) + ")";
    enabled_ = false;
    cudaGetLastError();  // clear the (non-sticky) error so it does not surface in a later, unrelated check
    return false;
  };
  const bool resized = tex.ensure(w, h);
  auto it = registered_.find(tex.id);
  if (it != registered_.end() && (resized || sizes_[tex.id] != std::make_pair(w, h))) {
    cudaGraphicsUnregisterResource(static_cast<cudaGraphicsResource_t>(it->second));
    registered_.erase(it);
    it = registered_.end();
  }
  if (it == registered_.end()) {
    cudaGraphicsResource_t res = nullptr;
    const cudaError_t e =
        cudaGraphicsGLRegisterImage(&res, tex.id, GL_TEXTURE_2D, cudaGraphicsRegisterFlagsWriteDiscard);
    if (e != cudaSuccess) return fail(e, "cudaGraphicsGLRegisterImage");
    it = registered_.emplace(tex.id, res).first;
    sizes_[tex.id] = {w, h};
  }
  auto res = static_cast<cudaGraphicsResource_t>(it->second);
  cudaError_t e = cudaGraphicsMapResources(1, &res, nullptr);
  if (e != cudaSuccess) return fail(e, "cudaGraphicsMapResources");
  cudaArray_t array = nullptr;
  e = cudaGraphicsSubResourceGetMappedArray(&array, res, 0, 0);
  if (e == cudaSuccess) {
    const size_t row = static_cast<size_t>(w) * 4;
    e = cudaMemcpy2DToArray(array, 0, 0, img.data(), row, row, static_cast<size_t>(h), cudaMemcpyDeviceToDevice);
  }
  const cudaError_t unmap = cudaGraphicsUnmapResources(1, &res, nullptr);
  if (e != cudaSuccess) return fail(e, "copy to the GL texture");
  if (unmap != cudaSuccess) return fail(unmap, "cudaGraphicsUnmapResources");
  ++uploads_;
  last_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return true;
}

void Interop::release() {
  for (auto& [id, res] : registered_) cudaGraphicsUnregisterResource(static_cast<cudaGraphicsResource_t>(res));
  registered_.clear();
  sizes_.clear();
}

}  // namespace studio
