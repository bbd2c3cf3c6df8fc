// Plain types shared between kernels/ launchers and their callers (host C++ without CUDA headers).
#pragma once

namespace blr::kern {

// Storage element type of a kernel's tensors. Accumulation is always fp32.
enum class DT : int { F32 = 0, F16 = 1, BF16 = 2 };
// Activation fused into an epilogue. Values match engine's blr::Act.
enum class Act : int { None = 0, GeluErf = 1, GeluTanh = 2, Silu = 3 };

}  // namespace blr::kern
