// A small command-line parser shared by every `blr` subcommand: --name value, --name=value, repeatable
// options, boolean flags and positionals. Anything it does not know is a usage error (exit code 2).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "engine/core/error.h"

namespace blr::cli {

class UsageError : public InputError {
 public:
  using InputError::InputError;
};

class Args {
 public:
  Args(std::string command, std::string summary);

  // Declarations (before parse). `value_name` shows in help ("FILE", "N").
  Args& flag(const std::string& name, const std::string& help);
  Args& option(const std::string& name, const std::string& value_name, const std::string& help,
               const std::string& default_value = "");
  Args& repeated(const std::string& name, const std::string& value_name, const std::string& help);
  Args& positional(const std::string& name, const std::string& help, bool required = true);
  Args& positional_list(const std::string& name, const std::string& help);  // zero or more, last

  // Throws UsageError on unknown flags, missing values or missing positionals. Returns false when --help
  // was given (help already printed).
  bool parse(const std::vector<std::string>& argv);

  bool has(const std::string& name) const;  // flag set, option given, or positional present
  std::string get(const std::string& name) const;  // option or positional value (or default)
  std::vector<std::string> get_all(const std::string& name) const;
  int get_int(const std::string& name) const;      // UsageError naming the flag when not an integer
  int64_t get_int64(const std::string& name) const;
  double get_double(const std::string& name) const;
  std::string help() const;
  const std::string& command() const { return command_; }

 private:
  struct Spec {
    enum Kind { Flag, Option, Repeated, Positional, PositionalList } kind;
    std::string name, value_name, help, default_value;
    bool required = false;
  };
  const Spec* find(const std::string& name) const;
  std::string command_, summary_;
  std::vector<Spec> specs_;
  std::map<std::string, std::vector<std::string>> values_;
};

}  // namespace blr::cli
