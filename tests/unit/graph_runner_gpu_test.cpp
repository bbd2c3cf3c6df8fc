// GraphRunner: plan (eager) -> capture -> replay, and re-capture when memory a graph captured was
// reallocated (scratch growth), so a replay never touches freed memory.
#include <cuda_runtime_api.h>

#include "engine/backend/cpu/cpu_ops.h"
#include "engine/backend/cuda/cuda_ops.h"
#include "engine/runtime/graph_runner.h"
#include "tests/common/test_util.h"

namespace blr {

TEST(GraphRunnerGpu, PlansThenCapturesThenReplays) {
  BLR_REQUIRE_CUDA();
  Arena arena(Device::CUDA, "graph runner");
  CudaOps ops(arena);
  Tensor buf = Tensor::empty({256}, DType::F32, arena, MemCategory::Other, "buf");
  GraphRunner runner;
  float value = 1.0f;
  int host_calls = 0;
  auto work = [&] {
    ++host_calls;
    ops.fill(buf, value);
  };
  for (int i = 0; i < 4; ++i) runner.run("k", ops.stream(), work);
  ops.synchronize();
  EXPECT_EQ(host_calls, 2);  // the planning run and the capture; replays do not call back
  EXPECT_EQ(runner.captures(), 1u);
  EXPECT_TRUE(runner.has_graph("k"));
  EXPECT_EQ(buf.to_host().flat(255), 1.0);
  // The captured value is baked in: a replay writes 1 even though the host variable changed.
  value = 2.0f;
  runner.run("k", ops.stream(), work);
  ops.synchronize();
  EXPECT_EQ(buf.to_host().flat(0), 1.0);
}

TEST(GraphRunnerGpu, RecapturesAfterScratchIsReallocated) {
  BLR_REQUIRE_CUDA();
  Arena arena(Device::CUDA, "graph runner scratch");
  CudaOps ops(arena);
  CpuOps cpu;
  // A BLAST layer keeps its intermediate in CudaOps scratch slot 0.
  const int64_t b = 3, r = 48, in = 96, out = 144;
  BlastWeights host_w{b, test::random_tensor({b, out / b, r}, 1, 0.2f), test::random_tensor({b, b, r}, 2),
                      test::random_tensor({b, r, in / b}, 3, 0.2f)};
  BlastWeights w{b, test::upload(host_w.U, DType::F32, arena), test::upload(host_w.S, DType::F32, arena),
                 test::upload(host_w.V, DType::F32, arena)};
  const Tensor xs = test::random_tensor({8, in}, 4);
  const Tensor xl = test::random_tensor({4096, in}, 5);
  Tensor x_small = test::upload(xs, DType::F32, arena), x_large = test::upload(xl, DType::F32, arena);
  Tensor y_small = Tensor::empty({8, out}, DType::F32, arena, MemCategory::Other, "ys");
  Tensor y_large = Tensor::empty({4096, out}, DType::F32, arena, MemCategory::Other, "yl");
  GraphRunner runner;
  runner.set_epoch_source([&] { return ops.scratch_epoch(); });
  auto small = [&] { ops.blast_linear(x_small, w, nullptr, Act::None, y_small); };
  runner.run("small", ops.stream(), small);  // plan
  runner.run("small", ops.stream(), small);  // capture
  ASSERT_EQ(runner.captures(), 1u);
  const uint64_t before = ops.scratch_epoch();
  ops.blast_linear(x_large, w, nullptr, Act::None, y_large);  // eager: grows (reallocates) scratch
  ops.synchronize();
  ASSERT_NE(ops.scratch_epoch(), before) << "the large call was expected to need more scratch";
  ops.fill(y_small, -1.0f);
  runner.run("small", ops.stream(), small);  // must re-capture, not replay freed addresses
  ops.synchronize();
  EXPECT_EQ(runner.captures(), 2u);
  Tensor want = Tensor::zeros({8, out});
  cpu.blast_linear(xs, host_w, nullptr, Act::None, want);
  // fp32 storage and accumulation on both sides; 1e-4 relative covers the summation-order difference.
  EXPECT_LE(test::compare(y_small, want).rel_fro, 1e-4) << test::compare(y_small, want).str();
}

}  // namespace blr
