#include "tests/common/test_util.h"

#include <sys/stat.h>

#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "engine/core/device.h"

namespace blr::test {

Tensor random_tensor(const Shape& shape, uint64_t seed, float stddev) {
  Tensor t = Tensor::zeros(shape, DType::F32);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  float* p = t.data_as<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = dist(rng);
  return t;
}

Tensor uniform_tensor(const Shape& shape, uint64_t seed, float lo, float hi) {
  Tensor t = Tensor::zeros(shape, DType::F32);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  float* p = t.data_as<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = dist(rng);
  return t;
}

std::string Closeness::str() const {
  std::ostringstream os;
  os << "max_abs=" << max_abs << " max_ref=" << max_ref << " rel_fro=" << rel_fro << " cosine=" << cosine
     << " nonfinite=" << nonfinite;
  return os.str();
}

void wait_for_device() {
  if (!cuda_available()) return;
  const cudaError_t e = cudaDeviceSynchronize();
  EXPECT_EQ(e, cudaSuccess) << "cudaDeviceSynchronize: " << cudaGetErrorString(e);
}

Closeness compare(const Tensor& a, const Tensor& b) {
  if (a.on_cuda() || b.on_cuda()) wait_for_device();
  EXPECT_EQ(shape_str(a.shape()), shape_str(b.shape())) << "compare: shapes differ";
  const std::vector<float> va = a.to_vector(), vb = b.to_vector();
  Closeness c;
  double diff2 = 0, ref2 = 0, a2 = 0, dot = 0;
  for (size_t i = 0; i < std::min(va.size(), vb.size()); ++i) {
    const double x = va[i], y = vb[i];
    if (!std::isfinite(x)) {
      ++c.nonfinite;
      continue;
    }
    c.max_abs = std::max(c.max_abs, std::fabs(x - y));
    c.max_ref = std::max(c.max_ref, std::fabs(y));
    diff2 += (x - y) * (x - y);
    ref2 += y * y;
    a2 += x * x;
    dot += x * y;
  }
  c.rel_fro = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
  c.cosine = (a2 > 0 && ref2 > 0) ? dot / std::sqrt(a2 * ref2) : (a2 == ref2 ? 1.0 : 0.0);
  return c;
}

std::string temp_dir(const std::string& name) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string dir = std::string(BLR_BINARY_DIR) + "/test-tmp/" + name;
  if (info) dir += std::string("/") + info->test_suite_name() + "." + info->name();
  for (char& ch : dir)
    if (ch == '*') ch = '_';
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::string data_path(const std::string& file) { return std::string(BLR_TEST_DATA_DIR) + "/" + file; }

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace blr::test

namespace blr::test {
Tensor upload(const Tensor& host_f32, DType dtype, Arena& arena) {
  const Tensor converted = host_f32.to_dtype(dtype);
  return converted.to_device(arena, MemCategory::Other, "test upload");
}
}  // namespace blr::test
