#include "engine/core/cuda_check.h"

#include <cublas_api.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <cstring>

#include "engine/core/error.h"

namespace blr::detail {

static const char* base_name(const char* file) {
  const char* s = std::strrchr(file, '/');
  return s ? s + 1 : file;
}

void throw_cuda_error(int code, const char* call, const char* file, int line) {
  const auto err = static_cast<cudaError_t>(code);
  const std::string msg = cat(base_name(file), ":", line, ": ", call, " failed: ", cudaGetErrorName(err), " (",
                              cudaGetErrorString(err), ")");
  if (err == cudaErrorMemoryAllocation) throw OutOfMemoryError(msg);
  throw Error(msg);
}

void throw_cublas_error(int code, const char* call, const char* file, int line) {
  const auto st = static_cast<cublasStatus_t>(code);
  const std::string msg = cat(base_name(file), ":", line, ": ", call, " failed: ", cublasGetStatusName(st), " (",
                              cublasGetStatusString(st), ")");
  if (st == CUBLAS_STATUS_ALLOC_FAILED) throw OutOfMemoryError(msg);
  throw Error(msg);
}

void throw_cudnn_error(int code, const char* call, const char* file, int line) {
  const auto st = static_cast<cudnnStatus_t>(code);
  char detail[512] = {0};
  cudnnGetLastErrorString(detail, sizeof detail);
  throw Error(cat(base_name(file), ":", line, ": ", call, " failed: ", cudnnGetErrorString(st),
                  detail[0] ? cat(" (", detail, ")") : std::string()));
}

void throw_cusolver_error(int code, const char* call, const char* file, int line) {
  // cuSOLVER has no status-to-string function; the numeric status is what its documentation lists.
  throw Error(cat(base_name(file), ":", line, ": ", call, " failed: cusolverStatus_t ", code));
}

void throw_curand_error(int code, const char* call, const char* file, int line) {
  throw Error(cat(base_name(file), ":", line, ": ", call, " failed: curandStatus_t ", code));
}

}  // namespace blr::detail
