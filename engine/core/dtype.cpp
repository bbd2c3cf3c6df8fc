#include "engine/core/dtype.h"

#include <cmath>

#include "engine/core/error.h"

namespace blr {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F64: case DType::I64: return 8;
    case DType::F32: case DType::I32: return 4;
    case DType::F16: case DType::BF16: case DType::I16: return 2;
    case DType::I8: case DType::U8: case DType::Bool: return 1;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F64: return "f64";
    case DType::F32: return "f32";
    case DType::F16: return "f16";
    case DType::BF16: return "bf16";
    case DType::I64: return "i64";
    case DType::I32: return "i32";
    case DType::I16: return "i16";
    case DType::I8: return "i8";
    case DType::U8: return "u8";
    case DType::Bool: return "bool";
  }
  return "?";
}

const char* safetensors_dtype_name(DType t) {
  switch (t) {
    case DType::F64: return "F64";
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I64: return "I64";
    case DType::I32: return "I32";
    case DType::I16: return "I16";
    case DType::I8: return "I8";
    case DType::U8: return "U8";
    case DType::Bool: return "BOOL";
  }
  return "?";
}

DType parse_dtype(const std::string& name) {
  static const struct { const char* a; const char* b; DType t; } table[] = {
      {"f64", "F64", DType::F64},   {"f32", "F32", DType::F32},   {"f16", "F16", DType::F16},
      {"bf16", "BF16", DType::BF16}, {"i64", "I64", DType::I64},   {"i32", "I32", DType::I32},
      {"i16", "I16", DType::I16},   {"i8", "I8", DType::I8},      {"u8", "U8", DType::U8},
      {"bool", "BOOL", DType::Bool}, {"fp32", "float32", DType::F32}, {"fp16", "float16", DType::F16},
      {"bfloat16", "bfloat16", DType::BF16}};
  for (const auto& e : table)
    if (name == e.a || name == e.b) return e.t;
  throw InputError(cat("unknown dtype '", name, "' (expected f32, f16, bf16, i8, i32, i64, ...)"));
}

bool is_floating(DType t) {
  return t == DType::F64 || t == DType::F32 || t == DType::F16 || t == DType::BF16;
}

uint16_t f32_to_f16_bits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t absx = x & 0x7fffffffu;
  if (absx > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN
  if (absx >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
  if (absx < 0x38800000u) {                                               // subnormal or zero
    if (absx < 0x33000000u) return static_cast<uint16_t>(sign);
    const uint32_t mant = (absx & 0x7fffffu) | 0x800000u;
    const int shift = 126 - static_cast<int>(absx >> 23);  // 14..24
    uint32_t half = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1u))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = ((absx - 0x38000000u) >> 13);
  const uint32_t rem = absx & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1u))) ++half;
  return static_cast<uint16_t>(sign | half);
}

float f16_bits_to_f32(uint16_t h) {
  const uint32_t sign = (static_cast<uint32_t>(h) & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      float f = std::ldexp(static_cast<float>(mant), -24);
      return sign ? -f : f;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

double load_as_double(const void* data, DType t, size_t i) {
  const auto* p = static_cast<const unsigned char*>(data);
  switch (t) {
    case DType::F64: { double v; std::memcpy(&v, p + 8 * i, 8); return v; }
    case DType::F32: { float v; std::memcpy(&v, p + 4 * i, 4); return v; }
    case DType::F16: { uint16_t v; std::memcpy(&v, p + 2 * i, 2); return f16_bits_to_f32(v); }
    case DType::BF16: { uint16_t v; std::memcpy(&v, p + 2 * i, 2); return bf16_bits_to_f32(v); }
    case DType::I64: { int64_t v; std::memcpy(&v, p + 8 * i, 8); return static_cast<double>(v); }
    case DType::I32: { int32_t v; std::memcpy(&v, p + 4 * i, 4); return v; }
    case DType::I16: { int16_t v; std::memcpy(&v, p + 2 * i, 2); return v; }
    case DType::I8: return static_cast<int8_t>(p[i]);
    case DType::U8: return p[i];
    case DType::Bool: return p[i] ? 1.0 : 0.0;
  }
  return 0.0;
}

void store_from_double(void* data, DType t, size_t i, double v) {
  auto* p = static_cast<unsigned char*>(data);
  switch (t) {
    case DType::F64: std::memcpy(p + 8 * i, &v, 8); break;
    case DType::F32: { float f = static_cast<float>(v); std::memcpy(p + 4 * i, &f, 4); break; }
    case DType::F16: { uint16_t h = f32_to_f16_bits(static_cast<float>(v)); std::memcpy(p + 2 * i, &h, 2); break; }
    case DType::BF16: { uint16_t h = f32_to_bf16_bits(static_cast<float>(v)); std::memcpy(p + 2 * i, &h, 2); break; }
    case DType::I64: { int64_t x = static_cast<int64_t>(v); std::memcpy(p + 8 * i, &x, 8); break; }
    case DType::I32: { int32_t x = static_cast<int32_t>(v); std::memcpy(p + 4 * i, &x, 4); break; }
    case DType::I16: { int16_t x = static_cast<int16_t>(v); std::memcpy(p + 2 * i, &x, 2); break; }
    case DType::I8: p[i] = static_cast<unsigned char>(static_cast<int8_t>(v)); break;
    case DType::U8: p[i] = static_cast<unsigned char>(v); break;
    case DType::Bool: p[i] = v != 0.0; break;
  }
}

}  // namespace blr
