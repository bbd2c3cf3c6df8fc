#include "app/cli/args.h"

#include <cstdio>
#include <cstdlib>

namespace blr::cli {

Args::Args(std::string command, std::string summary) : command_(std::move(command)), summary_(std::move(summary)) {}

Args& Args::flag(const std::string& name, const std::string& help) {
  specs_.push_back({Spec::Flag, name, "", help, "", false});
  return *this;
}
Args& Args::option(const std::string& name, const std::string& value_name, const std::string& help,
                   const std::string& default_value) {
  specs_.push_back({Spec::Option, name, value_name, help, default_value, false});
  return *this;
}
Args& Args::repeated(const std::string& name, const std::string& value_name, const std::string& help) {
  specs_.push_back({Spec::Repeated, name, value_name, help, "", false});
  return *this;
}
Args& Args::positional(const std::string& name, const std::string& help, bool required) {
  specs_.push_back({Spec::Positional, name, "", help, "", required});
  return *this;
}
Args& Args::positional_list(const std::string& name, const std::string& help) {
  specs_.push_back({Spec::PositionalList, name, "", help, "", false});
  return *this;
}

const Args::Spec* Args::find(const std::string& name) const {
  for (const auto& s : specs_)
    if (s.name == name) return &s;
  return nullptr;
}

bool Args::parse(const std::vector<std::string>& argv) {
  size_t next_positional = 0;
  std::vector<const Spec*> positionals;
  for (const auto& s : specs_)
    if (s.kind == Spec::Positional || s.kind == Spec::PositionalList) positionals.push_back(&s);
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a == "--help" || a == "-h") {
      std::printf("%s", help().c_str());
      return false;
    }
    if (a.size() > 2 && a.compare(0, 2, "--") == 0) {
      std::string name = a.substr(2), value;
      bool inline_value = false;
      if (auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        inline_value = true;
      }
      const Spec* s = find(name);
      if (!s || s->kind == Spec::Positional || s->kind == Spec::PositionalList)
        throw UsageError(cat("blr ", command_, ": unknown option --", name, " (see blr ", command_, " --help)"));
      if (s->kind == Spec::Flag) {
        if (inline_value) throw UsageError(cat("blr ", command_, ": --", name, " takes no value"));
        values_[name].push_back("1");
        continue;
      }
      if (!inline_value) {
        if (i + 1 >= argv.size()) throw UsageError(cat("blr ", command_, ": --", name, " needs a value (", s->value_name, ")"));
        value = argv[++i];
      }
      if (s->kind == Spec::Option) values_[name] = {value};
      else values_[name].push_back(value);
      continue;
    }
    if (next_positional >= positionals.size())
      throw UsageError(cat("blr ", command_, ": unexpected argument '", a, "' (see blr ", command_, " --help)"));
    const Spec* p = positionals[next_positional];
    values_[p->name].push_back(a);
    if (p->kind == Spec::Positional) ++next_positional;
  }
  for (const Spec* p : positionals)
    if (p->required && !values_.count(p->name))
      throw UsageError(cat("blr ", command_, ": missing argument ", p->name, " (see blr ", command_, " --help)"));
  return true;
}

bool Args::has(const std::string& name) const { return values_.count(name) != 0; }

std::string Args::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it != values_.end() && !it->second.empty()) return it->second.back();
  const Spec* s = find(name);
  return s ? s->default_value : std::string();
}

std::vector<std::string> Args::get_all(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

int64_t Args::get_int64(const std::string& name) const {
  const std::string v = get(name);
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno != 0)
    throw UsageError(cat("blr ", command_, ": --", name, " expects an integer, got '", v, "'"));
  return x;
}

int Args::get_int(const std::string& name) const {
  const int64_t x = get_int64(name);
  if (x < -2147483647LL || x > 2147483647LL)
    throw UsageError(cat("blr ", command_, ": --", name, " value ", x, " is out of range"));
  return static_cast<int>(x);
}

double Args::get_double(const std::string& name) const {
  const std::string v = get(name);
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0') throw UsageError(cat("blr ", command_, ": --", name, " expects a number, got '", v, "'"));
  return x;
}

std::string Args::help() const {
  std::string out = cat("usage: blr ", command_);
  for (const auto& s : specs_) {
    if (s.kind == Spec::Positional) out += s.required ? cat(" ", s.name) : cat(" [", s.name, "]");
    if (s.kind == Spec::PositionalList) out += cat(" [", s.name, "...]");
  }
  if (!specs_.empty()) out += " [options]";
  out += cat("\n\n", summary_, "\n\n");
  for (const auto& s : specs_) {
    std::string left;
    switch (s.kind) {
      case Spec::Flag: left = cat("--", s.name); break;
      case Spec::Option: left = cat("--", s.name, " ", s.value_name); break;
      case Spec::Repeated: left = cat("--", s.name, " ", s.value_name, " ..."); break;
      default: left = s.name;
    }
    std::string line = cat("  ", left);
    if (line.size() < 30) line.resize(30, ' ');
    else line += "  ";
    line += s.help;
    if (!s.default_value.empty()) line += cat(" (default ", s.default_value, ")");
    out += line + "\n";
  }
  return out;
}

}  // namespace blr::cli
