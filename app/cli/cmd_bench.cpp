// blr bench --model NAME [...]: whole-model benchmarks; each model registers itself in bench_registry().
#include <cstdio>

#include "app/cli/args.h"
#include "app/cli/bench_util.h"
#include "app/cli/command.h"

namespace blr::cli {

static int run_bench(const std::vector<std::string>& argv) {
  std::string model;
  std::vector<std::string> rest;
  for (size_t i = 0; i < argv.size(); ++i) {
    if (argv[i] == "--model" && i + 1 < argv.size()) model = argv[++i];
    else if (argv[i].rfind("--model=", 0) == 0) model = argv[i].substr(8);
    else rest.push_back(argv[i]);
  }
  std::string names;
  for (const auto& m : bench_registry()) names += (names.empty() ? "" : ", ") + m.name;
  if (model.empty()) {
    if (!rest.empty() && (rest[0] == "--help" || rest[0] == "-h")) {
      std::printf("usage: blr bench --model NAME [options]\nmodels: %s\n", names.c_str());
      return 0;
    }
    throw UsageError(cat("blr bench: --model is required (one of: ", names, ")"));
  }
  for (const auto& m : bench_registry())
    if (m.name == model) return m.run(rest);
  throw UsageError(cat("blr bench: unknown model '", model, "' (one of: ", names, ")"));
}

BLR_REGISTER_COMMAND(bench, "bench", "benchmark a whole model (blr bench --model NAME --help)", run_bench);

}  // namespace blr::cli
