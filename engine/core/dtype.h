// Element types. Storage is bf16 by default on the GPU (fp16 selectable); the CPU reference is fp32.
// bf16/fp16 <-> fp32 conversion on the host is done here so no host code needs cuda_fp16.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace blr {

enum class DType : uint8_t { F64, F32, F16, BF16, I64, I32, I16, I8, U8, Bool };

size_t dtype_size(DType t);
const char* dtype_name(DType t);  // "f32", "bf16", ...
// Parses our names ("bf16") and safetensors names ("BF16"); throws InputError on anything else.
DType parse_dtype(const std::string& name);
const char* safetensors_dtype_name(DType t);  // "BF16", ...
bool is_floating(DType t);

// Round-to-nearest-even fp32 -> bf16, NaN kept quiet.
inline uint16_t f32_to_bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float bf16_bits_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint16_t f32_to_f16_bits(float f);
float f16_bits_to_f32(uint16_t h);

// Reads element i of a buffer of type t as double (any dtype); writes likewise. Used by conversions,
// tests and printing, never on a hot path.
double load_as_double(const void* data, DType t, size_t i);
void store_from_double(void* data, DType t, size_t i, double v);

}  // namespace blr
