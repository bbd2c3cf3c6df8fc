// Memory accounting: bytes per category, high-water marks and the budget's refusal message.
#include "engine/core/arena.h"
#include "engine/core/error.h"
#include "engine/core/tensor.h"
#include "tests/common/test_util.h"

namespace blr {

TEST(Arena, AccountsPerCategoryAndReleasesOnDrop) {
  Arena arena(Device::CPU, "test");
  {
    Tensor w = Tensor::empty({256, 256}, DType::F32, arena, MemCategory::Weights, "w");
    Tensor a = Tensor::empty({1000}, DType::BF16, arena, MemCategory::Activations, "a");
    const MemoryReport r = arena.report();
    EXPECT_EQ(r.of(MemCategory::Weights), 256u * 256 * 4);
    EXPECT_EQ(r.of(MemCategory::Activations), 2000u);
    EXPECT_EQ(r.total, 256u * 256 * 4 + 2000);
    EXPECT_EQ(r.live_allocations, 2u);
    // Views share the allocation: no new accounting.
    Tensor v = w.slice(0, 0, 10);
    EXPECT_EQ(arena.report().total, r.total);
  }
  const MemoryReport after = arena.report();
  EXPECT_EQ(after.total, 0u);
  EXPECT_EQ(after.live_allocations, 0u);
  EXPECT_EQ(after.high_water, 256u * 256 * 4 + 2000);
  EXPECT_EQ(after.peak_of(MemCategory::Activations), 2000u);
}

TEST(Arena, HighWaterMarkTracksTheLargestTotal) {
  Arena arena(Device::CPU, "hw");
  { auto a = arena.allocate(1000, MemCategory::Workspace, "a"); auto b = arena.allocate(500, MemCategory::Other, "b"); }
  { auto c = arena.allocate(1200, MemCategory::Workspace, "c"); }
  EXPECT_EQ(arena.report().high_water, 1500u);
  EXPECT_EQ(arena.report().peak_of(MemCategory::Workspace), 1200u);
  arena.reset_peaks();
  EXPECT_EQ(arena.report().high_water, 0u);
}

TEST(Arena, BudgetRefusalNamesRequestBudgetAndUsage) {
  Arena arena(Device::CPU, "jetson-sim", size_t(10) << 20);
  Tensor w = Tensor::empty({int64_t(8) << 20}, DType::U8, arena, MemCategory::Weights, "blocks.0.weight");
  try {
    Tensor more = Tensor::empty({int64_t(3) << 20}, DType::U8, arena, MemCategory::Activations, "blocks.1.act");
    FAIL() << "allocation past the budget succeeded";
  } catch (const OutOfMemoryError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'blocks.1.act'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("3.0 MiB"), std::string::npos) << msg;
    EXPECT_NE(msg.find("budget 10.0 MiB"), std::string::npos) << msg;
    EXPECT_NE(msg.find("already in use 8.0 MiB"), std::string::npos) << msg;
    EXPECT_NE(msg.find("jetson-sim"), std::string::npos) << msg;
  }
  // The failed request left nothing behind, and a fitting one still works.
  EXPECT_EQ(arena.report().total, size_t(8) << 20);
  EXPECT_NO_THROW(arena.allocate(size_t(2) << 20, MemCategory::Activations, "fits"));
}

TEST(Arena, AccountRecordsForeignMemory) {
  Arena arena(Device::CPU, "graphs", 4096);
  {
    auto g = arena.account(3000, MemCategory::Graphs, "graph");
    EXPECT_EQ(arena.report().of(MemCategory::Graphs), 3000u);
    EXPECT_THROW(arena.account(2000, MemCategory::Graphs, "graph2"), OutOfMemoryError);
  }
  EXPECT_EQ(arena.report().total, 0u);
}

TEST(Arena, MemoryOutlivesTheArenaObject) {
  Tensor t;
  {
    Arena arena(Device::CPU, "short-lived");
    t = Tensor::empty({16}, DType::F32, arena, MemCategory::Other, "t");
  }
  t.data_as<float>()[15] = 1.0f;  // still valid: the allocation keeps the arena state alive
  EXPECT_EQ(t.flat(15), 1.0);
}

TEST(Bytes, FormatAndParse) {
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(size_t(3) << 20), "3.0 MiB");
  EXPECT_EQ(format_bytes(size_t(3) << 29), "1.50 GiB");
  EXPECT_EQ(parse_bytes("7.5GiB"), static_cast<size_t>(7.5 * (1u << 30)));
  EXPECT_EQ(parse_bytes("512MiB"), size_t(512) << 20);
  EXPECT_EQ(parse_bytes("2 GB"), size_t(2000000000));
  EXPECT_EQ(parse_bytes("1024"), 1024u);
  EXPECT_THROW(parse_bytes("lots"), InputError);
  EXPECT_THROW(parse_bytes("5 parsecs"), InputError);
  EXPECT_THROW(parse_bytes("-1GiB"), InputError);
}

}  // namespace blr
