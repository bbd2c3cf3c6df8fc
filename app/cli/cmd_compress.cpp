// blr compress IN OUT --rule PATTERN=METHOD:b=B,r=R ...: factors every 2-D weight "N.weight" whose layer
// name N matches a rule (first match wins) and writes a safetensors file with the factors, every other
// tensor unchanged, and metadata recording each layer's method, b, r and relative error. All rules are
// checked against all matched layers before any work starts; IN is never overwritten.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "app/cli/args.h"
#include "app/cli/command.h"
#include "engine/compress/compress.h"
#include "engine/compress/gpu_compress.h"
#include "engine/core/log.h"
#include "engine/io/checkpoint.h"
#include "engine/io/safetensors.h"
#include "engine/nn/linear.h"

namespace blr::cli {

namespace {

namespace fs = std::filesystem;

struct Job {
  std::string layer;  // N
  int rule = 0;       // index of the rule that matched
  LinearSpec spec;
  int64_t in = 0, out = 0;
  DType dtype = DType::F32;
  // Filled by the compression:
  Linear result;
  bool on_gpu = false;
  double seconds = 0;
};

const std::string kWeight = ".weight";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void refuse_same_file(const std::string& in, const std::string& out) {
  std::error_code ec;
  const bool same_path = fs::weakly_canonical(in, ec) == fs::weakly_canonical(out, ec) && !ec;
  const bool same_file = fs::exists(out, ec) && fs::exists(in, ec) && fs::equivalent(in, out, ec) && !ec;
  if (same_path || same_file)
    throw InputError(cat("OUT '", out, "' is the input file '", in, "'; refusing to overwrite the input"));
  if (fs::is_directory(out, ec)) throw InputError(cat("OUT '", out, "' is a directory; give a file name"));
}

// Finds the layers each rule takes and checks every (rule, layer) pair; throws InputError listing every
// impossible pair (and malformed input) before any factorisation starts.
std::vector<Job> plan(const Checkpoint& ckpt, const std::vector<LayerRule>& rules) {
  std::vector<Job> jobs;
  std::vector<int> taken(rules.size(), 0), seen(rules.size(), 0);
  std::vector<std::string> not_linear;
  std::vector<std::string> all_layers;
  for (const auto& name : ckpt.names()) {
    if (!ends_with(name, kWeight)) continue;
    const std::string layer = name.substr(0, name.size() - kWeight.size());
    const TensorInfo ti = ckpt.info(name);
    int first = -1;
    for (size_t i = 0; i < rules.size(); ++i)
      if (glob_match(rules[i].pattern, layer)) {
        ++seen[i];
        if (first < 0) first = static_cast<int>(i);
      }
    if (ti.shape.size() != 2) {
      if (first >= 0) not_linear.push_back(cat(layer, " ", shape_str(ti.shape)));
      continue;
    }
    all_layers.push_back(layer);
    if (first < 0) continue;
    ++taken[first];
    Job j;
    j.layer = layer;
    j.rule = first;
    j.spec = rules[first].spec;
    j.out = ti.shape[0];
    j.in = ti.shape[1];
    j.dtype = ti.dtype;
    jobs.push_back(j);
  }
  for (const auto& nl : not_linear) log_warn("skipping '", nl, "': a rule matches it but it is not a 2-D linear weight");
  for (size_t i = 0; i < rules.size(); ++i) {
    if (seen[i] == 0) {
      std::string hint;
      for (size_t k = 0; k < std::min<size_t>(all_layers.size(), 3); ++k) hint += (k ? ", " : "") + all_layers[k];
      log_warn("rule '", rules[i].text, "' matches no layer", hint.empty() ? "" : " (layers look like: " + hint + ", ...)");
    } else if (taken[i] == 0) {
      log_warn("rule '", rules[i].text, "' matches only layers that an earlier rule already takes");
    }
  }
  std::vector<std::string> problems;
  std::set<std::string> unique;
  for (const auto& j : jobs) {
    std::string why;
    if (!is_floating(j.dtype)) {
      why = cat("layer '", j.layer, "': weight is ", dtype_name(j.dtype), ", not floating point");
    } else {
      try {
        validate_spec(j.spec, j.in, j.out, j.layer);
      } catch (const InputError& e) {
        why = e.what();
      }
    }
    if (!why.empty() && unique.insert(why).second) problems.push_back(cat("rule '", rules[j.rule].text, "': ", why));
  }
  if (!problems.empty()) {
    std::string msg = cat(problems.size(), " impossible rule/layer pair", problems.size() > 1 ? "s" : "",
                          "; nothing was written:");
    for (size_t i = 0; i < problems.size() && i < 12; ++i) msg += "\n  " + problems[i];
    if (problems.size() > 12) msg += cat("\n  ... and ", problems.size() - 12, " more");
    throw InputError(msg);
  }
  const bool any = std::any_of(jobs.begin(), jobs.end(), [](const Job& j) { return j.spec.kind != LinearKind::Dense; });
  if (!any) throw InputError(cat("no 2-D weight of '", ckpt.path(), "' matches a compressing rule; nothing to do"));
  return jobs;
}

std::string with_commas(int64_t v) {
  std::string s = std::to_string(v), out;
  const int n = static_cast<int>(s.size());
  for (int i = 0; i < n; ++i) {
    out += s[i];
    if (i < n - 1 && (n - 1 - i) % 3 == 0 && s[i] != '-') out += ',';
  }
  return out;
}

class Progress {
 public:
  explicit Progress(size_t total) : total_(total), tty_(isatty(STDERR_FILENO) == 1) {}
  void layer_start(size_t i, const Job& j) {
    index_ = i;
    if (tty_) draw(j, 0, 0);
  }
  void iterations(const Job& j, int done, int total) {
    if (tty_) draw(j, done, total);
  }
  void layer_done(const Job& j) {
    const int width = 20;
    const int filled = static_cast<int>(width * (index_ + 1) / std::max<size_t>(total_, 1));
    std::fprintf(stderr, "%s[%s%s] %zu/%zu %-32s ", tty_ ? "\r\033[K" : "", std::string(filled, '#').c_str(),
                 std::string(width - filled, '.').c_str(), index_ + 1, total_, j.layer.c_str());
    if (j.spec.kind == LinearKind::Dense)
      std::fprintf(stderr, "kept dense\n");
    else
      std::fprintf(stderr, "%-18s rel error %.4f  (%.2f s, %s)\n", j.spec.describe().c_str(), j.result.rel_error,
                   j.seconds, j.on_gpu ? "gpu" : "cpu");
    std::fflush(stderr);
  }

 private:
  void draw(const Job& j, int done, int total) {
    const int width = 20;
    const int filled = static_cast<int>(width * index_ / std::max<size_t>(total_, 1));
    std::fprintf(stderr, "\r\033[K[%s%s] %zu/%zu %s %s", std::string(filled, '#').c_str(),
                 std::string(width - filled, '.').c_str(), index_ + 1, total_, j.layer.c_str(),
                 j.spec.describe().c_str());
    if (total > 0) std::fprintf(stderr, "  iteration %d/%d", done, total);
    std::fflush(stderr);
  }
  size_t total_, index_ = 0;
  bool tty_;
};

void print_summary(const std::vector<Job>& jobs, int64_t file_before, int64_t file_after, size_t bytes_before,
                   size_t bytes_after, const std::string& out_path, bool timing, double total_seconds) {
  size_t w = 5;
  for (const auto& j : jobs) w = std::max(w, j.layer.size());
  std::printf("%-*s  %-18s %14s %14s %7s %10s%s\n", static_cast<int>(w), "layer", "method", "params before",
              "params after", "ratio", "rel error", timing ? "   seconds device" : "");
  int64_t before = 0, after = 0;
  double sum_err = 0, max_err = 0;
  int compressed = 0;
  for (const auto& j : jobs) {
    if (j.spec.kind == LinearKind::Dense) continue;
    const int64_t pb = j.in * j.out;
    const int64_t pa = j.result.parameter_count();  // factors only: the bias is not part of `result`
    before += pb;
    after += pa;
    sum_err += j.result.rel_error;
    max_err = std::max(max_err, j.result.rel_error);
    ++compressed;
    std::printf("%-*s  %-18s %14s %14s %6.2fx %10.4f", static_cast<int>(w), j.layer.c_str(), j.spec.describe().c_str(),
                with_commas(pb).c_str(), with_commas(pa).c_str(), static_cast<double>(pb) / std::max<int64_t>(pa, 1),
                j.result.rel_error);
    if (timing) std::printf("   %7.3f %s", j.seconds, j.on_gpu ? "gpu" : "cpu");
    std::printf("\n");
  }
  std::printf("%d layers compressed: weights %s -> %s parameters (%.2fx), rel error mean %.4f, max %.4f\n", compressed,
              with_commas(before).c_str(), with_commas(after).c_str(),
              static_cast<double>(before) / std::max<int64_t>(after, 1), compressed ? sum_err / compressed : 0.0, max_err);
  std::printf("whole file: %s -> %s parameters, %s -> %s\n", with_commas(file_before).c_str(),
              with_commas(file_after).c_str(), format_bytes(bytes_before).c_str(), format_bytes(bytes_after).c_str());
  if (timing) std::printf("timing: factorisation %.3f s in total\n", total_seconds);
  std::printf("wrote %s\n", out_path.c_str());
}

int run_compress(const std::vector<std::string>& argv) {
  Args args("compress",
            "Compresses the linear layers of a checkpoint into low-rank, Monarch or BLAST factors and writes a "
            "safetensors file (IN is never modified).");
  args.positional("IN", "checkpoint to read (.safetensors, .pt, .bin)")
      .positional("OUT", "safetensors file to write (must not be IN)")
      .repeated("rule", "PATTERN=METHOD[:b=B,r=R[,iters=T]]",
                "glob over layer names (weight name without .weight), first match wins; METHOD is dense, lowrank, "
                "monarch or blast, e.g. 'blocks.*.attn.qkv=blast:b=9,r=384'")
      .option("dtype", "f32|bf16|f16", "storage dtype of the factors (default: that of each layer's weight)")
      .option("iters", "T", "BLAST iterations for rules without iters= (default 300)")
      .option("seed", "S", "seed of the BLAST initial factors", "0")
      .option("key", "NAME", "nested state dict to read in a PyTorch file (ema, model, ...)")
      .flag("cpu", "compress on the CPU even when a CUDA device is present")
      .flag("timing", "print each layer's factorisation time and device, and the total");
  if (!args.parse(argv)) return 0;

  const std::vector<std::string> rule_texts = args.get_all("rule");
  if (rule_texts.empty()) throw UsageError("give at least one --rule PATTERN=METHOD:b=B,r=R");
  std::vector<LayerRule> rules;
  for (const auto& t : rule_texts) rules.push_back(parse_layer_rule(t));
  std::optional<DType> out_dtype;
  if (args.has("dtype")) {
    const DType d = parse_dtype(args.get("dtype"));
    if (d != DType::F32 && d != DType::BF16 && d != DType::F16)
      throw UsageError(cat("--dtype must be f32, bf16 or f16, got '", args.get("dtype"), "'"));
    out_dtype = d;
  }
  if (args.has("iters")) {
    const int iters = args.get_int("iters");
    if (iters <= 0) throw UsageError(cat("--iters must be positive, got ", iters));
    for (auto& r : rules)
      if (!r.iterations_given) r.spec.iterations = iters;
  }
  const int64_t seed = args.get_int64("seed");
  if (seed < 0) throw UsageError(cat("--seed must not be negative, got ", seed));
  const bool timing = args.has("timing");
  const std::string in_path = args.get("IN"), out_path = args.get("OUT");
  refuse_same_file(in_path, out_path);

  CheckpointOptions copt;
  copt.key = args.get("key");
  const Checkpoint ckpt = Checkpoint::open(in_path, copt);
  std::vector<Job> jobs = plan(ckpt, rules);

  const bool gpu = !args.has("cpu") && gpu_compression_available();
  log_info("compressing ", jobs.size(), " layer(s) of ", in_path, " on the ", gpu ? "gpu" : "cpu");
  Progress progress(jobs.size());
  double total_seconds = 0;
  for (size_t i = 0; i < jobs.size(); ++i) {
    Job& j = jobs[i];
    progress.layer_start(i, j);
    if (j.spec.kind == LinearKind::Dense) {
      j.result.kind = LinearKind::Dense;
      j.result.in = j.in;
      j.result.out = j.out;
      j.result.weight = ckpt.get(j.layer + kWeight);
    } else {
      CompressOptions co;
      co.use_gpu = gpu;
      co.blast.seed = static_cast<uint64_t>(seed);
      co.progress = [&](int done, int total) { progress.iterations(j, done, total); };
      CompressResult res;
      try {
        res = compress_weight(ckpt.get(j.layer + kWeight), j.spec, co);
      } catch (const InputError& e) {
        throw InputError(cat("layer '", j.layer, "': ", e.what()));
      }
      j.result = res.layer;
      j.on_gpu = res.on_gpu;
      j.seconds = res.seconds;
      total_seconds += res.seconds;
    }
    j.result.name = j.layer;
    progress.layer_done(j);
  }

  // Output: every tensor of IN in its order, a compressed layer's weight replaced by its factors.
  std::map<std::string, const Job*> by_weight;
  for (const auto& j : jobs)
    if (j.spec.kind != LinearKind::Dense) by_weight[j.layer + kWeight] = &j;
  std::vector<std::pair<std::string, Tensor>> tensors;
  int64_t file_before = 0, file_after = 0;
  size_t bytes_before = 0, bytes_after = 0;
  for (const auto& name : ckpt.names()) {
    const TensorInfo ti = ckpt.info(name);
    file_before += shape_numel(ti.shape);
    bytes_before += static_cast<size_t>(shape_numel(ti.shape)) * dtype_size(ti.dtype);
    auto it = by_weight.find(name);
    if (it == by_weight.end()) {
      tensors.emplace_back(name, ckpt.get(name));
      continue;
    }
    const Job& j = *it->second;
    const Linear stored = to_backend(j.result, out_dtype.value_or(j.dtype), nullptr);
    for (const auto& [key, t] : stored.named_tensors()) tensors.emplace_back(key, t);
  }
  for (const auto& [key, t] : tensors) {
    file_after += t.numel();
    bytes_after += t.nbytes();
  }
  std::map<std::string, std::string> meta = ckpt.metadata();
  std::string joined;
  for (const auto& r : rules) joined += (joined.empty() ? "" : " ") + r.text;
  meta["blr.rules"] = joined;
  meta["blr.source"] = fs::path(in_path).filename().string();
  meta["blr.seed"] = std::to_string(seed);
  for (const auto& j : jobs)
    if (j.spec.kind != LinearKind::Dense) {
      for (const auto& [k, v] : j.result.metadata()) meta[k] = v;
      if (j.spec.kind == LinearKind::Blast) meta["blr." + j.layer + ".iters"] = std::to_string(j.spec.iterations);
    }
  write_safetensors(out_path, tensors, meta);
  print_summary(jobs, file_before, file_after, bytes_before, bytes_after, out_path, timing, total_seconds);
  return 0;
}

}  // namespace

BLR_REGISTER_COMMAND(compress, "compress", "factor linear layers into low-rank / Monarch / BLAST (safetensors out)",
                     run_compress);

}  // namespace blr::cli
