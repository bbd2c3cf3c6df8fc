// blr convert IN OUT.safetensors [--dtype bf16|f16|f32] [--key NAME]: writes a safetensors copy of any
// checkpoint the engine reads (.pt/.pth/.bin PyTorch zips, safetensors), optionally converting floating
// tensors to another dtype. Integer and bool tensors keep their type. The copy is written to a temporary
// file and renamed into place, and OUT may never be IN (checked by inode, so links and ../ tricks count).
#include <sys/stat.h>

#include <cstdio>
#include <utility>
#include <vector>

#include "app/cli/args.h"
#include "app/cli/command.h"
#include "engine/core/arena.h"
#include "engine/io/checkpoint.h"
#include "engine/io/safetensors.h"

namespace blr::cli {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  if (::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) return false;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int run_convert(const std::vector<std::string>& argv) {
  Args args("convert", "Writes a safetensors copy of a checkpoint (.pt, .pth, .bin or .safetensors).");
  args.positional("IN", "checkpoint to read")
      .positional("OUT", "safetensors file to write (must end in .safetensors and differ from IN)")
      .option("dtype", "TYPE", "convert floating tensors to bf16, f16 or f32 (default: keep each tensor's dtype)")
      .option("key", "NAME", "nested state dict to read in a PyTorch file (ema, model, ...; default: automatic)");
  if (!args.parse(argv)) return 0;
  const std::string in = args.get("IN"), out = args.get("OUT");
  if (!ends_with(out, ".safetensors"))
    throw UsageError(cat("OUT '", out, "' must end in .safetensors"));
  if (same_file(in, out)) throw UsageError(cat("OUT '", out, "' is the same file as IN '", in, "'"));
  bool convert = args.has("dtype");
  DType target = DType::F32;
  if (convert) {
    target = parse_dtype(args.get("dtype"));
    if (target != DType::BF16 && target != DType::F16 && target != DType::F32)
      throw UsageError(cat("--dtype ", args.get("dtype"), " is not bf16, f16 or f32"));
  }
  CheckpointOptions opt;
  opt.key = args.get("key");
  const Checkpoint ckpt = Checkpoint::open(in, opt);

  std::vector<std::pair<std::string, Tensor>> tensors;
  size_t bytes = 0;
  int64_t params = 0;
  for (const auto& name : ckpt.names()) {
    const DType dt = ckpt.info(name).dtype;
    Tensor t = convert && is_floating(dt) ? ckpt.get_as(name, target) : ckpt.get(name);
    bytes += t.nbytes();
    params += t.numel();
    tensors.emplace_back(name, std::move(t));
  }
  write_safetensors(out, tensors, ckpt.metadata());
  std::printf("%s (%s", in.c_str(), ckpt.format().c_str());
  auto key = ckpt.metadata().find("pytorch.state_dict");
  if (key != ckpt.metadata().end()) std::printf(", state dict %s", key->second.c_str());
  std::printf(") -> %s: %zu tensors, %lld parameters, %s%s%s\n", out.c_str(), tensors.size(),
              static_cast<long long>(params), format_bytes(bytes).c_str(), convert ? " as " : "",
              convert ? dtype_name(target) : "");
  return 0;
}

}  // namespace

BLR_REGISTER_COMMAND(convert, "convert", "write a safetensors copy of a checkpoint (.pt/.bin -> .safetensors)",
                     run_convert);

}  // namespace blr::cli
