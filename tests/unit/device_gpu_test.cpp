// Device query: runs on the GPU machine (and skips cleanly elsewhere).
#include "engine/core/device.h"
#include "tests/common/test_util.h"

namespace blr {

TEST(DeviceGpu, QueryReportsARealDevice) {
  BLR_REQUIRE_CUDA();
  const DeviceInfo info = query_device(0);
  ASSERT_TRUE(info.available) << info.reason;
  EXPECT_FALSE(info.name.empty());
  EXPECT_GE(info.cc_major, 8) << "kernels need sm_80+ (tensor-core mma.sync with bf16)";
  EXPECT_GT(info.sm_count, 0);
  EXPECT_GT(info.total_memory, size_t(1) << 30);
  const auto [free_b, total_b] = device_memory_info();
  EXPECT_GT(total_b, 0u);
  EXPECT_LE(free_b, total_b);
}

TEST(DeviceGpu, MissingDeviceIndexIsReported) {
  BLR_REQUIRE_CUDA();
  const DeviceInfo info = query_device(cuda_device_count() + 3);
  EXPECT_FALSE(info.available);
  EXPECT_NE(info.reason.find("no CUDA device with index"), std::string::npos) << info.reason;
}

}  // namespace blr
