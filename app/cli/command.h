// Subcommand registry for `blr`. Each cmd_*.cpp defines `int run_X(const std::vector<std::string>&)` and
// registers it with BLR_REGISTER_COMMAND; main.cpp dispatches and maps exceptions to exit codes:
// 0 success, 1 runtime failure (out of memory, CUDA error), 2 bad input (flags, files, shapes).
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace blr::cli {

struct Command {
  std::string name;
  std::string summary;
  std::function<int(const std::vector<std::string>&)> run;
};

std::vector<Command>& command_registry();
int run_cli(int argc, char** argv);  // parses argv[1] as the subcommand

struct CommandRegistrar {
  explicit CommandRegistrar(Command c) { command_registry().push_back(std::move(c)); }
};

}  // namespace blr::cli

#define BLR_REGISTER_COMMAND(ident, name, summary, fn) \
  static ::blr::cli::CommandRegistrar blr_register_##ident({name, summary, fn})
