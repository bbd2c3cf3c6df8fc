#include "app/cli/command.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "app/cli/args.h"
#include "engine/core/error.h"
#include "engine/core/log.h"

namespace blr::cli {

std::vector<Command>& command_registry() {
  static std::vector<Command> commands;
  return commands;
}

static void print_usage(FILE* out) {
  auto cmds = command_registry();
  std::sort(cmds.begin(), cmds.end(), [](const Command& a, const Command& b) { return a.name < b.name; });
  std::fprintf(out, "usage: blr COMMAND [options]   (blr COMMAND --help for details)\n\ncommands:\n");
  for (const auto& c : cmds) std::fprintf(out, "  %-14s %s\n", c.name.c_str(), c.summary.c_str());
}

int run_cli(int argc, char** argv) {
  if (argc < 2) {
    print_usage(stderr);
    return 2;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    print_usage(stdout);
    return 0;
  }
  std::vector<std::string> rest;
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "--verbose") == 0) set_log_level(LogLevel::Debug);
    else if (std::strcmp(argv[i], "--quiet") == 0) set_log_level(LogLevel::Warn);
    else rest.emplace_back(argv[i]);
  }
  for (const auto& c : command_registry()) {
    if (c.name != name) continue;
    try {
      return c.run(rest);
    } catch (const InputError& e) {
      std::fprintf(stderr, "blr %s: error: %s\n", name.c_str(), e.what());
      return 2;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "blr %s: error: %s\n", name.c_str(), e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "blr: unknown command '%s'\n", name.c_str());
  print_usage(stderr);
  return 2;
}

}  // namespace blr::cli
