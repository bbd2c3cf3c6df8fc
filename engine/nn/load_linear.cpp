// load_linear(): a layer from a checkpoint, as stored factors when the file has them, else the dense
// weight (compressed at load when a rule matches). Every shape is checked before anything is trusted,
// and errors name the file, the tensor and both shapes.
#include <cstdlib>

#include "engine/compress/compress.h"
#include "engine/core/error.h"
#include "engine/core/log.h"
#include "engine/io/checkpoint.h"
#include "engine/nn/linear.h"

namespace blr {

namespace {

struct Loader {
  const Checkpoint& ckpt;
  const std::string& name;
  int64_t in, out;

  std::string key(const char* suffix) const { return name + "." + suffix; }

  [[noreturn]] void fail(const std::string& what) const {
    throw InputError(cat(ckpt.path(), ": layer '", name, "' (", out, "x", in, "): ", what));
  }

  Shape shape_of(const char* suffix) const { return ckpt.info(key(suffix)).shape; }

  // Checks the tensor's shape; `why` explains where the expectation comes from.
  Tensor get(const char* suffix, const Shape& expected, const std::string& why) const {
    const Shape s = shape_of(suffix);
    if (s != expected)
      fail(cat("tensor '", key(suffix), "' has shape ", shape_str(s), ", expected ", shape_str(expected), " (", why, ")"));
    return ckpt.get_as(key(suffix), DType::F32);
  }

  int64_t dim_of(const char* suffix, size_t ndim, size_t d) const {
    const Shape s = shape_of(suffix);
    if (s.size() != ndim) fail(cat("tensor '", key(suffix), "' has shape ", shape_str(s), ", expected ", ndim, " dimensions"));
    return s[d];
  }

  int64_t check_blocks(int64_t b, const char* suffix) const {
    if (b <= 0 || in % b != 0 || out % b != 0)
      fail(cat("tensor '", key(suffix), "' has shape ", shape_str(shape_of(suffix)), ": its ", b,
               " blocks do not divide in=", in, " and out=", out));
    return b;
  }
};

LinearKind stored_kind(const Loader& ld) {
  const Checkpoint& c = ld.ckpt;
  const bool lr = c.has(ld.key("lowrank_A")) || c.has(ld.key("lowrank_B"));
  const bool mo = c.has(ld.key("monarch_R")) || c.has(ld.key("monarch_L"));
  const bool bl = c.has(ld.key("blast_U")) || c.has(ld.key("blast_S")) || c.has(ld.key("blast_V"));
  if (int(lr) + int(mo) + int(bl) > 1) ld.fail("the file holds factors of more than one kind (lowrank, monarch, blast)");
  auto need = [&](const char* s) {
    if (!c.has(ld.key(s))) ld.fail(cat("tensor '", ld.key(s), "' is missing (the file has the layer's other factors)"));
  };
  if (lr) {
    need("lowrank_A");
    need("lowrank_B");
    return LinearKind::LowRank;
  }
  if (mo) {
    need("monarch_R");
    need("monarch_L");
    return LinearKind::Monarch;
  }
  if (bl) {
    need("blast_U");
    need("blast_S");
    need("blast_V");
    return LinearKind::Blast;
  }
  return LinearKind::Dense;
}

Linear load_factors(const Loader& ld, LinearKind kind) {
  Linear l;
  l.name = ld.name;
  l.kind = kind;
  l.in = ld.in;
  l.out = ld.out;
  const int64_t in = ld.in, out = ld.out;
  switch (kind) {
    case LinearKind::LowRank: {
      const int64_t r = ld.dim_of("lowrank_A", 2, 0);
      if (r <= 0) ld.fail(cat("tensor '", ld.key("lowrank_A"), "' has rank 0"));
      l.lowrank.A = ld.get("lowrank_A", {r, in}, cat("rank ", r, " x in"));
      l.lowrank.B = ld.get("lowrank_B", {out, r}, cat("out x rank ", r, " from ", ld.key("lowrank_A"), " ",
                                                   shape_str(ld.shape_of("lowrank_A"))));
      break;
    }
    case LinearKind::Monarch: {
      const int64_t b = ld.check_blocks(ld.dim_of("monarch_R", 3, 0), "monarch_R");
      const int64_t r = ld.dim_of("monarch_R", 3, 1);
      if (r <= 0 || r % b != 0)
        ld.fail(cat("tensor '", ld.key("monarch_R"), "' has shape ", shape_str(ld.shape_of("monarch_R")), ": rank ", r,
                    " is not a positive multiple of b=", b));
      l.monarch.blocks = b;
      l.monarch.R = ld.get("monarch_R", {b, r, in / b}, cat("b=", b, ", r=", r, ", in/b=", in / b));
      l.monarch.L = ld.get("monarch_L", {b, out / b, r}, cat("b, out/b, r from ", ld.key("monarch_R"), " ",
                                                            shape_str(ld.shape_of("monarch_R"))));
      break;
    }
    case LinearKind::Blast: {
      const int64_t b = ld.check_blocks(ld.dim_of("blast_U", 3, 0), "blast_U");
      const int64_t r = ld.dim_of("blast_U", 3, 2);
      if (r <= 0) ld.fail(cat("tensor '", ld.key("blast_U"), "' has rank 0"));
      const std::string from = cat("from ", ld.key("blast_U"), " ", shape_str(ld.shape_of("blast_U")));
      l.blast.blocks = b;
      l.blast.U = ld.get("blast_U", {b, out / b, r}, cat("b=", b, ", out/b=", out / b, ", r=", r));
      l.blast.S = ld.get("blast_S", {b, b, r}, cat("b, b, r ", from));
      l.blast.V = ld.get("blast_V", {b, r, in / b}, cat("b, r, in/b ", from));
      break;
    }
    case LinearKind::Dense: break;
  }
  const std::string err = ld.ckpt.metadata_or("blr." + ld.name + ".rel_error", "");
  if (!err.empty()) l.rel_error = std::strtod(err.c_str(), nullptr);
  return l;
}

}  // namespace

Linear load_linear(const Checkpoint& ckpt, const std::string& name, int64_t in, int64_t out,
                   const LinearLoadOptions& options) {
  Loader ld{ckpt, name, in, out};
  const LinearKind stored = stored_kind(ld);
  Linear layer;
  if (stored != LinearKind::Dense) {
    layer = load_factors(ld, stored);
  } else {
    if (!ckpt.has(ld.key("weight")))
      ld.fail(cat("neither '", ld.key("weight"), "' nor factors (", ld.key("lowrank_A"), ", ", ld.key("monarch_R"), ", ",
                  ld.key("blast_U"), ") are in the file"));
    Tensor w = ld.get("weight", {out, in}, "out x in");
    const std::optional<LinearSpec> spec = options.rules ? match_rules(*options.rules, name) : std::nullopt;
    if (spec && spec->kind != LinearKind::Dense) {
      validate_spec(*spec, in, out, name);
      CompressOptions co;
      co.use_gpu = options.use_gpu_compression;
      const CompressResult res = compress_weight(w, *spec, co);
      layer = res.layer;
      log_info("compressed ", name, " (", out, "x", in, ") to ", spec->describe(), " on the ",
               res.on_gpu ? "gpu" : "cpu", ": relative error ", res.rel_error, " in ", res.seconds, " s");
    } else {
      layer.kind = LinearKind::Dense;
      layer.in = in;
      layer.out = out;
      layer.weight = w;
    }
  }
  layer.name = name;
  layer.in = in;
  layer.out = out;
  if (ckpt.has(ld.key("bias"))) layer.bias = ld.get("bias", {out}, "one per output");
  return to_backend(layer, options.dtype, options.arena);
}

}  // namespace blr
