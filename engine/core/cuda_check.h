// Error checks for CUDA runtime, cuBLAS(Lt), cuDNN, cuSOLVER and cuRAND calls. Each reports the call as
// written, file:line and the library's own message, then throws blr::Error (OutOfMemoryError for
// allocation failures) — never exit().
#pragma once

#include <string>

namespace blr::detail {
[[noreturn]] void throw_cuda_error(int code, const char* call, const char* file, int line);
[[noreturn]] void throw_cublas_error(int code, const char* call, const char* file, int line);
[[noreturn]] void throw_cudnn_error(int code, const char* call, const char* file, int line);
[[noreturn]] void throw_cusolver_error(int code, const char* call, const char* file, int line);
[[noreturn]] void throw_curand_error(int code, const char* call, const char* file, int line);
}  // namespace blr::detail

#define BLR_CUDA_CHECK(call)                                                                     \
  do {                                                                                           \
    const int blr_status_ = static_cast<int>(call);                                              \
    if (blr_status_ != 0) ::blr::detail::throw_cuda_error(blr_status_, #call, __FILE__, __LINE__); \
  } while (0)
#define BLR_CUBLAS_CHECK(call)                                                                     \
  do {                                                                                             \
    const int blr_status_ = static_cast<int>(call);                                                \
    if (blr_status_ != 0) ::blr::detail::throw_cublas_error(blr_status_, #call, __FILE__, __LINE__); \
  } while (0)
#define BLR_CUDNN_CHECK(call)                                                                     \
  do {                                                                                            \
    const int blr_status_ = static_cast<int>(call);                                               \
    if (blr_status_ != 0) ::blr::detail::throw_cudnn_error(blr_status_, #call, __FILE__, __LINE__); \
  } while (0)
#define BLR_CUSOLVER_CHECK(call)                                                                     \
  do {                                                                                               \
    const int blr_status_ = static_cast<int>(call);                                                  \
    if (blr_status_ != 0) ::blr::detail::throw_cusolver_error(blr_status_, #call, __FILE__, __LINE__); \
  } while (0)
#define BLR_CURAND_CHECK(call)                                                                     \
  do {                                                                                             \
    const int blr_status_ = static_cast<int>(call);                                                \
    if (blr_status_ != 0) ::blr::detail::throw_curand_error(blr_status_, #call, __FILE__, __LINE__); \
  } while (0)
