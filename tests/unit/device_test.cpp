// Without a GPU (CI), device queries must say so instead of crashing or reporting garbage.
#include "engine/core/device.h"
#include "tests/common/test_util.h"

namespace blr {

TEST(Device, CountIsZeroOrQueryable) {
  const int n = cuda_device_count();
  EXPECT_GE(n, 0);
  const DeviceInfo info = query_device(0);
  if (n == 0) {
    EXPECT_FALSE(info.available);
    EXPECT_FALSE(info.reason.empty());
    EXPECT_EQ(device_memory_info().second, 0u);
  } else {
    EXPECT_TRUE(info.available) << info.reason;
  }
}

}  // namespace blr
