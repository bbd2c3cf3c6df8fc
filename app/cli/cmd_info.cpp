// blr info FILE: every tensor (name, dtype, shape, MiB), totals, and the metadata of a checkpoint.
#include <cstdio>

#include "app/cli/args.h"
#include "app/cli/command.h"
#include "engine/io/checkpoint.h"

namespace blr::cli {

static int run_info(const std::vector<std::string>& argv) {
  Args args("info", "Lists the tensors and metadata of a checkpoint (.safetensors, .pt, .bin).");
  args.positional("FILE", "checkpoint to describe")
      .option("key", "NAME", "nested state dict to read in a PyTorch file (ema, model, ...)");
  if (!args.parse(argv)) return 0;
  CheckpointOptions opt;
  opt.key = args.get("key");
  const Checkpoint ckpt = Checkpoint::open(args.get("FILE"), opt);
  std::printf("%s (%s)\n", ckpt.path().c_str(), ckpt.format().c_str());
  size_t total_bytes = 0;
  int64_t total_elems = 0;
  const auto names = ckpt.names();
  size_t width = 4;
  for (const auto& n : names) width = std::max(width, n.size());
  for (const auto& n : names) {
    const TensorInfo ti = ckpt.info(n);
    const int64_t numel = shape_numel(ti.shape);
    const size_t bytes = static_cast<size_t>(numel) * dtype_size(ti.dtype);
    total_bytes += bytes;
    total_elems += numel;
    std::printf("  %-*s  %-5s %-20s %10.3f MiB\n", static_cast<int>(width), n.c_str(), dtype_name(ti.dtype),
                shape_str(ti.shape).c_str(), bytes / 1048576.0);
  }
  std::printf("%zu tensors, %lld parameters, %s\n", names.size(), static_cast<long long>(total_elems),
              format_bytes(total_bytes).c_str());
  if (!ckpt.metadata().empty()) {
    std::printf("metadata:\n");
    for (const auto& [k, v] : ckpt.metadata()) std::printf("  %s = %s\n", k.c_str(), v.c_str());
  }
  return 0;
}

BLR_REGISTER_COMMAND(info, "info", "list the tensors and metadata of a checkpoint", run_info);

}  // namespace blr::cli
