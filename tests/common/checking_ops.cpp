#include "tests/common/checking_ops.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <sstream>

#include "engine/core/error.h"

namespace blr::test {

namespace {

bool is_float(DType d) { return d == DType::F32 || d == DType::F16 || d == DType::BF16; }

// Element offsets (relative to data()) of the lowest and highest element a view reaches.
void extent(const Tensor& t, int64_t* lo, int64_t* hi) {
  *lo = *hi = 0;
  for (int d = 0; d < t.ndim(); ++d) {
    const int64_t reach = (t.dim(d) - 1) * t.stride(d);
    if (reach < 0) *lo += reach;
    else *hi += reach;
  }
}

// The bytes of the whole span a view covers (from its lowest to its highest element), copied to the host.
// Spans, not views, are copied so broadcast (zero-stride), strided and overlapping views keep their shape.
struct Snapshot {
  uintptr_t lo = 0;  // address of the span's first byte
  std::vector<uint8_t> bytes;
  bool on_cuda = false;
  bool empty() const { return bytes.empty(); }
};

void copy_out(void* dst, uintptr_t src, size_t n, bool on_cuda) {
  if (n == 0) return;
  if (!on_cuda) {
    std::memcpy(dst, reinterpret_cast<const void*>(src), n);
    return;
  }
  const cudaError_t e = cudaMemcpy(dst, reinterpret_cast<const void*>(src), n, cudaMemcpyDeviceToHost);
  if (e != cudaSuccess)
    throw Error(cat("CheckingOps: copying ", n, " bytes at 0x", std::hex, src, std::dec, " to the host failed: ",
                    cudaGetErrorString(e)));
}

Snapshot take(const Tensor& t) {
  Snapshot s;
  if (!t.defined() || t.numel() == 0) return s;
  int64_t lo = 0, hi = 0;
  extent(t, &lo, &hi);
  const int64_t es = static_cast<int64_t>(dtype_size(t.dtype()));
  s.lo = static_cast<uintptr_t>(reinterpret_cast<intptr_t>(t.data()) + lo * es);
  s.bytes.resize(static_cast<size_t>((hi - lo + 1) * es));
  s.on_cuda = t.on_cuda();
  copy_out(s.bytes.data(), s.lo, s.bytes.size(), s.on_cuda);
  return s;
}

// The view's values from a snapshot of its span, as a contiguous host tensor (f32 for float dtypes).
Tensor values(const Tensor& t, const Snapshot& s) {
  const DType out_dt = is_float(t.dtype()) ? DType::F32 : t.dtype();
  if (!t.defined() || t.numel() == 0) return Tensor::zeros(t.defined() ? t.shape() : Shape{0}, out_dt);
  auto* base = const_cast<uint8_t*>(s.bytes.data()) + (reinterpret_cast<uintptr_t>(t.data()) - s.lo);
  const Tensor view = Tensor::from_blob(base, t.shape(), t.dtype(), Device::CPU, nullptr, t.strides());
  Tensor h = view.to_host();
  return h.dtype() == out_dt ? h : h.to_dtype(out_dt);
}

// Marks, in `mask` (one byte per byte of the span starting at `lo`), the bytes of the elements of `v`.
void mark(const Tensor& v, uintptr_t lo, std::vector<uint8_t>& mask) {
  if (!v.defined() || v.numel() == 0 || mask.empty()) return;
  const int64_t es = static_cast<int64_t>(dtype_size(v.dtype()));
  const uintptr_t hi = lo + mask.size();
  const int nd = v.ndim();
  std::vector<int64_t> idx(nd, 0);
  const int64_t n = v.numel();
  const uintptr_t base = reinterpret_cast<uintptr_t>(v.data());
  for (int64_t i = 0; i < n; ++i) {
    int64_t off = 0;
    for (int d = 0; d < nd; ++d) off += idx[d] * v.stride(d);
    const uintptr_t a = static_cast<uintptr_t>(static_cast<intptr_t>(base) + off * es);
    if (a >= lo && a + es <= hi) std::memset(mask.data() + (a - lo), 1, static_cast<size_t>(es));
    for (int d = nd - 1; d >= 0; --d) {
      if (++idx[d] < v.dim(d)) break;
      idx[d] = 0;
    }
  }
}

std::string hex(uintptr_t a) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(a));
  return buf;
}

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// "[2,3]" multi-index of flat index i.
std::string index_of(const Shape& shape, int64_t i) {
  std::vector<int64_t> idx(shape.size());
  for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {
    idx[d] = shape[d] ? i % shape[d] : 0;
    i = shape[d] ? i / shape[d] : 0;
  }
  return shape_str(idx);
}

struct Measures {
  double max_abs = 0, max_ref = 0, rel_fro = 0, cosine = 1, scale = 0;
  int64_t nonfinite = 0;  // elements where exactly one side is finite, or both are but differ in kind
  int64_t worst = -1;
  double worst_got = 0, worst_want = 0;
};

Measures measure(const Tensor& got, const Tensor& want, double input_scale) {
  Measures m;
  const int64_t n = got.numel();
  const float* g = got.data_as<const float>();
  const float* w = want.data_as<const float>();
  double diff2 = 0, ref2 = 0, got2 = 0, dot = 0, worst_err = -1;
  for (int64_t i = 0; i < n; ++i) {
    const double x = g[i], y = w[i];
    if (!std::isfinite(x) || !std::isfinite(y)) {
      const bool same = (std::isnan(x) && std::isnan(y)) || x == y;
      if (!same) {
        ++m.nonfinite;
        if (worst_err < INFINITY) worst_err = INFINITY, m.worst = i, m.worst_got = x, m.worst_want = y;
      }
      continue;
    }
    const double e = std::fabs(x - y);
    if (e > worst_err) worst_err = e, m.worst = i, m.worst_got = x, m.worst_want = y;
    m.max_abs = std::max(m.max_abs, e);
    m.max_ref = std::max(m.max_ref, std::fabs(y));
    diff2 += (x - y) * (x - y);
    ref2 += y * y;
    got2 += x * x;
    dot += x * y;
  }
  m.rel_fro = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
  m.cosine = (ref2 > 0 && got2 > 0) ? dot / std::sqrt(ref2 * got2) : (ref2 == got2 ? 1.0 : 0.0);
  m.scale = std::max(m.max_ref, input_scale);
  return m;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// The mirror: host copies of device (or host) bytes as last observed, with who observed them.

struct CheckingOps::Mirror {
  struct Block {
    std::vector<uint8_t> bytes;
    bool on_cuda = false;
    std::string source;  // "#12 linear y (written)" / "#3 linear w (read)"
  };
  std::map<uintptr_t, Block> blocks;  // disjoint, keyed by start address

  void write(uintptr_t lo, const uint8_t* p, size_t n, bool on_cuda, const std::string& source) {
    if (n == 0) return;
    const uintptr_t hi = lo + n;
    auto it = blocks.upper_bound(lo);
    if (it != blocks.begin()) --it;
    while (it != blocks.end() && it->first < hi) {
      const uintptr_t b = it->first, e = b + it->second.bytes.size();
      if (e <= lo) {
        ++it;
        continue;
      }
      Block old = std::move(it->second);
      it = blocks.erase(it);
      if (b < lo) {
        Block left{std::vector<uint8_t>(old.bytes.begin(), old.bytes.begin() + (lo - b)), old.on_cuda, old.source};
        blocks.emplace(b, std::move(left));
      }
      if (e > hi) {
        Block right{std::vector<uint8_t>(old.bytes.begin() + (hi - b), old.bytes.end()), old.on_cuda, old.source};
        it = blocks.emplace(hi, std::move(right)).first;
        ++it;
      }
    }
    blocks.emplace(lo, Block{std::vector<uint8_t>(p, p + n), on_cuda, source});
  }

  // Compares [lo, lo + n) with what was observed there; on a difference returns false with a description
  // (differing bytes, first offset relative to `origin`, who observed the old value).
  bool verify(uintptr_t lo, const uint8_t* p, size_t n, uintptr_t origin, std::string* what) const {
    if (n == 0) return true;
    const uintptr_t hi = lo + n;
    auto it = blocks.upper_bound(lo);
    if (it != blocks.begin()) --it;
    for (; it != blocks.end() && it->first < hi; ++it) {
      const uintptr_t b = std::max(it->first, lo), e = std::min(it->first + it->second.bytes.size(), hi);
      if (b >= e) continue;
      size_t differ = 0;
      uintptr_t first = 0;
      for (uintptr_t a = b; a < e; ++a)
        if (it->second.bytes[a - it->first] != p[a - lo]) {
          if (!differ) first = a;
          ++differ;
        }
      if (differ) {
        *what = cat(differ, " of the ", e - b, " bytes last seen by ", it->second.source,
                    " changed, the first at byte offset ", static_cast<int64_t>(first) - static_cast<int64_t>(origin),
                    " from this argument's data pointer (was 0x", std::hex, int(it->second.bytes[first - it->first]),
                    ", now 0x", int(p[first - lo]), std::dec, ")");
        return false;
      }
    }
    return true;
  }
};

// ---------------------------------------------------------------------------------------------------

std::string OpFinding::str() const {
  return cat("op #", call, " ", op, ": ", kind, arg.empty() ? "" : " in '" + arg + "'", ": ", detail,
             "\n    arguments: ", args);
}

CheckingOps::CheckingOps(Ops& inner, CheckingOptions options)
    : inner_(inner), options_(options), mirror_(std::make_unique<Mirror>()) {}
CheckingOps::~CheckingOps() = default;

void CheckingOps::forget_memory() { mirror_->blocks.clear(); }

void CheckingOps::add_finding(OpFinding f) {
  if (findings_.size() >= options_.max_findings) {
    ++dropped_findings_;
    return;
  }
  findings_.push_back(std::move(f));
}

std::string CheckingOps::report(size_t max_trace_lines) const {
  std::ostringstream os;
  os << "CheckingOps(" << inner_.name() << " vs cpu): " << calls_ << " op calls, "
     << findings_.size() + dropped_findings_ << " findings";
  if (!findings_.empty()) os << "; the first is op #" << findings_.front().call << " " << findings_.front().op;
  os << "\n";
  for (size_t i = 0; i < findings_.size(); ++i) os << "  [" << i + 1 << "] " << findings_[i].str() << "\n";
  if (dropped_findings_) os << "  (" << dropped_findings_ << " more findings not kept)\n";
  os << "  trace (call: op, arguments | worst output error as a fraction of the allowed):\n";
  const size_t n = std::min(trace_.size(), max_trace_lines);
  for (size_t i = 0; i < n; ++i) os << "    " << trace_[i] << "\n";
  if (trace_.size() > n) os << "    ... " << trace_.size() - n << " more calls\n";
  return os.str();
}

// ---------------------------------------------------------------------------------------------------
// One checked call.

class CheckingOps::Call {
 public:
  enum class Role { In, Out, InOut };

  Call(CheckingOps& self, const char* op) : self_(self), op_(op), index_(self.calls_++) {}

  const Tensor& in(const char* name, const Tensor& t) { return add(name, t, Role::In).host; }
  const Tensor* in(const char* name, const Tensor* t) { return t ? &in(name, *t) : nullptr; }
  Tensor& out(const char* name, const Tensor& t) { return add(name, t, Role::Out).host; }
  Tensor* out(const char* name, const Tensor* t) { return t ? &out(name, *t) : nullptr; }
  Tensor& inout(const char* name, const Tensor& t) { return add(name, t, Role::InOut).host; }
  // Index outputs of a top-k: a different index is accepted where the two logits tie within tolerance.
  void topk_indices_of(const char* indices, const char* logits) {
    topk_indices_ = indices;
    topk_logits_ = logits;
  }

  // Snapshots the arguments, runs `device` on the inner backend, `reference` on the host copies (which
  // the in/out/inout calls above returned), and checks everything.
  template <typename D, typename R>
  void run(D&& device, R&& reference);

 private:
  struct Arg {
    std::string name;
    Tensor dev;  // the caller's view (shares its memory)
    Role role;
    Snapshot pre, post;
    Tensor host;  // what the reference computes on / into
  };

  Arg& add(const char* name, const Tensor& t, Role role) {
    BLR_CHECK(t.defined(), "CheckingOps ", op_, ": argument ", name, " is undefined");
    args_.push_back(Arg{name, t, role, {}, {}, {}});
    return args_.back();
  }
  std::string inner_name() const { return self_.inner_.name(); }
  const Arg* find(const std::string& name) const {
    for (const Arg& a : args_)
      if (a.name == name) return &a;
    return nullptr;
  }
  std::string describe_args() const;
  void finding(const char* kind, const std::string& arg, const std::string& detail) {
    self_.add_finding(OpFinding{index_, op_, kind, arg, detail, describe_args()});
    ++findings_here_;
  }
  // Bytes of the span of `a` covered by any argument the op writes.
  std::vector<uint8_t> written_mask(const Arg& a) const;
  double compare(const Arg& a, double input_scale);  // returns worst error / allowed
  void check_unwritten(const Arg& a, const char* kind);
  void sweep();

  CheckingOps& self_;
  const char* op_;
  size_t index_;
  std::deque<Arg> args_;  // deque: references handed out stay valid as arguments are added
  const char* topk_indices_ = nullptr;
  const char* topk_logits_ = nullptr;
  int findings_here_ = 0;
};

std::string CheckingOps::Call::describe_args() const {
  std::string s;
  for (const Arg& a : args_) {
    if (!s.empty()) s += "; ";
    const char* role = a.role == Role::In ? "in" : a.role == Role::Out ? "out" : "in/out";
    s += cat(a.name, " (", role, ") ", dtype_name(a.dev.dtype()), shape_str(a.dev.shape()), " strides ",
             shape_str(a.dev.strides()), " ", device_name(a.dev.device()), " @", hex(reinterpret_cast<uintptr_t>(a.dev.data())));
  }
  return s;
}

std::vector<uint8_t> CheckingOps::Call::written_mask(const Arg& a) const {
  std::vector<uint8_t> mask(a.pre.bytes.size(), 0);
  for (const Arg& w : args_)
    if (w.role != Role::In) mark(w.dev, a.pre.lo, mask);
  return mask;
}

double CheckingOps::Call::compare(const Arg& a, double input_scale) {
  const Tensor got = values(a.dev, a.post);
  const Tensor& want = a.host;
  if (!is_float(a.dev.dtype())) {
    const Arg* logits = topk_logits_ && a.name == topk_indices_ ? find(topk_logits_) : nullptr;
    int64_t bad = 0, first = -1;
    const int64_t k = logits ? a.dev.dim(-1) : 1;
    for (int64_t i = 0; i < got.numel(); ++i) {
      const double g = got.flat(i), w = want.flat(i);
      if (g == w) continue;
      if (logits) {  // near-tie: the logits of the two classes agree within the f32/f16/bf16 tolerance
        const int64_t row = i / k, classes = logits->host.dim(-1);
        if (g >= 0 && g < classes && w >= 0 && w < classes) {
          const double lg = logits->host.flat(row * classes + static_cast<int64_t>(g));
          const double lw = logits->host.flat(row * classes + static_cast<int64_t>(w));
          const DType dt = logits->dev.dtype();
          const CheckTolerance& tol = dt == DType::F32 ? self_.options_.f32 : dt == DType::F16 ? self_.options_.f16 : self_.options_.bf16;
          if (std::fabs(lg - lw) <= tol.max_abs_rel * std::max(1.0, std::fabs(lw))) continue;
        }
      }
      if (first < 0) first = i;
      ++bad;
    }
    if (bad) {
      finding("mismatch", a.name,
              cat(bad, " of ", got.numel(), " values differ; first at ", index_of(a.dev.shape(), first), ": ",
                  inner_name(), " ", got.flat(first), " vs cpu ", want.flat(first)));
      return INFINITY;
    }
    return 0;
  }
  const Measures m = measure(got, want, input_scale);
  const DType dt = a.dev.dtype();
  const CheckTolerance& tol = dt == DType::F32 ? self_.options_.f32 : dt == DType::F16 ? self_.options_.f16 : self_.options_.bf16;
  const double allowed = tol.max_abs_rel * m.scale;
  const bool bad_abs = m.max_abs > allowed, bad_cos = m.cosine < tol.min_cosine, bad_nf = m.nonfinite > 0;
  if (bad_abs || bad_cos || bad_nf) {
    finding("mismatch", a.name,
            cat("max_abs ", fmt(m.max_abs), " (allowed ", fmt(allowed), " = ", tol.max_abs_rel, " x scale ", fmt(m.scale),
                "), cosine ", fmt(m.cosine), " (min ", tol.min_cosine, "), rel_fro ", fmt(m.rel_fro), ", ",
                m.nonfinite, " non-finite mismatches; worst at ", m.worst >= 0 ? index_of(a.dev.shape(), m.worst) : "-",
                ": ", inner_name(), " ", fmt(m.worst_got), " vs cpu ", fmt(m.worst_want)));
  }
  if (bad_nf) return INFINITY;
  return allowed > 0 ? m.max_abs / allowed : (m.max_abs > 0 ? INFINITY : 0);
}

void CheckingOps::Call::check_unwritten(const Arg& a, const char* kind) {
  if (a.pre.bytes.size() != a.post.bytes.size()) return;
  const std::vector<uint8_t> mask = written_mask(a);
  size_t changed = 0, first = 0;
  for (size_t i = 0; i < mask.size(); ++i)
    if (!mask[i] && a.pre.bytes[i] != a.post.bytes[i]) {
      if (!changed) first = i;
      ++changed;
    }
  if (changed) {
    const int64_t off = static_cast<int64_t>(a.pre.lo + first) - static_cast<int64_t>(reinterpret_cast<uintptr_t>(a.dev.data()));
    finding(kind, a.name,
            cat(changed, " bytes of the argument's span that no output of the op covers changed; the first at byte offset ",
                off, " from its data pointer (element offset ", off / static_cast<int64_t>(dtype_size(a.dev.dtype())), ")"));
  }
}

void CheckingOps::Call::sweep() {
  for (auto& [lo, block] : self_.mirror_->blocks) {
    std::vector<uint8_t> now(block.bytes.size());
    copy_out(now.data(), lo, now.size(), block.on_cuda);
    if (now == block.bytes) continue;
    size_t first = 0;
    while (now[first] == block.bytes[first]) ++first;
    finding("memory outside the op's arguments changed", block.source,
            cat("bytes at ", hex(lo), " (", block.bytes.size(), " observed there by ", block.source,
                ") changed during this op, the first at byte ", first, "; the op wrote outside its arguments"));
    block.bytes = std::move(now);
    block.source = cat("#", index_, " ", op_, " (changed it)");
  }
}

template <typename D, typename R>
void CheckingOps::Call::run(D&& device, R&& reference) {
  CheckingOps& s = self_;
  s.inner_.synchronize();
  for (Arg& a : args_) {
    a.pre = take(a.dev);
    a.host = values(a.dev, a.pre);
  }
  if (s.options_.verify_memory)
    for (const Arg& a : args_) {
      std::string what;
      if (!s.mirror_->verify(a.pre.lo, a.pre.bytes.data(), a.pre.bytes.size(), reinterpret_cast<uintptr_t>(a.dev.data()), &what))
        finding("memory changed between ops", a.name,
                what + " — nothing this checker saw wrote it in between (an asynchronous copy, another stream, or an "
                       "op writing outside its arguments)");
    }
  try {
    device();
  } catch (const std::exception& e) {
    finding("backend threw", "", e.what());
    s.trace_.push_back(cat("#", index_, " ", op_, ": ", s.inner_.name(), " threw: ", e.what()));
    throw;
  }
  s.inner_.synchronize();
  for (Arg& a : args_) a.post = take(a.dev);

  bool reference_ok = true;
  try {
    reference();
  } catch (const std::exception& e) {
    reference_ok = false;
    finding("reference refused", "", cat("CpuOps on contiguous f32 copies of the same values threw: ", e.what()));
  }

  double input_scale = 0;
  for (const Arg& a : args_)
    if (a.role != Role::Out && is_float(a.dev.dtype()) && a.host.numel()) {
      const float* p = a.host.data_as<const float>();
      for (int64_t i = 0; i < a.host.numel(); ++i)
        if (std::isfinite(p[i])) input_scale = std::max(input_scale, static_cast<double>(std::fabs(p[i])));
    }
  double worst = 0;
  std::string worst_arg;
  for (const Arg& a : args_) {
    if (a.role == Role::In) {
      check_unwritten(a, "input changed during the op");
      continue;
    }
    if (reference_ok) {
      const double r = compare(a, input_scale);
      if (r >= worst) worst = r, worst_arg = a.name;
    }
    check_unwritten(a, "write outside the view");
  }
  for (const Arg& a : args_)
    s.mirror_->write(a.post.lo, a.post.bytes.data(), a.post.bytes.size(), a.post.on_cuda,
                     cat("#", index_, " ", op_, " ", a.name, a.role == Role::In ? " (read)" : " (written)"));
  if (s.options_.sweep_after_each_op) sweep();

  std::string line = cat("#", index_, " ", op_, ":");
  for (const Arg& a : args_)
    line += cat(" ", a.name, a.role == Role::In ? "=" : "*=", dtype_name(a.dev.dtype()), shape_str(a.dev.shape()),
                a.dev.is_contiguous() ? "" : cat("{", shape_str(a.dev.strides()), "}"));
  line += reference_ok ? cat(" | ", worst_arg, " ", fmt(worst)) : std::string(" | reference refused");
  if (findings_here_) line += cat("  <-- ", findings_here_, " finding(s)");
  s.trace_.push_back(std::move(line));
}

// ---------------------------------------------------------------------------------------------------
// The ops. Each registers its tensors (inputs, outputs, in/out), then runs the inner backend on the
// caller's tensors and CpuOps on the host copies with the same non-tensor arguments.

void CheckingOps::linear(const Tensor& x, const Tensor& w, const Tensor* bias, Act act, Tensor& y) {
  Call c(*this, "linear");
  const Tensor& hx = c.in("x", x);
  const Tensor& hw = c.in("w", w);
  const Tensor* hb = c.in("bias", bias);
  Tensor& hy = c.out("y", y);
  c.run([&] { inner_.linear(x, w, bias, act, y); }, [&] { cpu_.linear(hx, hw, hb, act, hy); });
}

void CheckingOps::lowrank_linear(const Tensor& x, const LowRankWeights& w, const Tensor* bias, Act act, Tensor& y) {
  Call c(*this, "lowrank_linear");
  const Tensor& hx = c.in("x", x);
  const Tensor& hA = c.in("w.A", w.A);
  const Tensor& hB = c.in("w.B", w.B);
  const Tensor* hb = c.in("bias", bias);
  Tensor& hy = c.out("y", y);
  // Weight structs hold tensors by value: built once the host copies exist (run fills them in).
  c.run([&] { inner_.lowrank_linear(x, w, bias, act, y); },
        [&] { cpu_.lowrank_linear(hx, LowRankWeights{hA, hB}, hb, act, hy); });
}

void CheckingOps::monarch_linear(const Tensor& x, const MonarchWeights& w, const Tensor* bias, Act act, Tensor& y) {
  Call c(*this, "monarch_linear");
  const Tensor& hx = c.in("x", x);
  const Tensor& hR = c.in("w.R", w.R);
  const Tensor& hL = c.in("w.L", w.L);
  const Tensor* hb = c.in("bias", bias);
  Tensor& hy = c.out("y", y);
  c.run([&] { inner_.monarch_linear(x, w, bias, act, y); },
        [&] { cpu_.monarch_linear(hx, MonarchWeights{w.blocks, hR, hL}, hb, act, hy); });
}

void CheckingOps::blast_linear(const Tensor& x, const BlastWeights& w, const Tensor* bias, Act act, Tensor& y) {
  Call c(*this, "blast_linear");
  const Tensor& hx = c.in("x", x);
  const Tensor& hU = c.in("w.U", w.U);
  const Tensor& hS = c.in("w.S", w.S);
  const Tensor& hV = c.in("w.V", w.V);
  const Tensor* hb = c.in("bias", bias);
  Tensor& hy = c.out("y", y);
  c.run([&] { inner_.blast_linear(x, w, bias, act, y); },
        [&] { cpu_.blast_linear(hx, BlastWeights{w.blocks, hU, hS, hV}, hb, act, hy); });
}

void CheckingOps::matmul(const Tensor& a, const Tensor& b, Tensor& out, bool trans_b, float alpha) {
  Call c(*this, "matmul");
  const Tensor& ha = c.in("a", a);
  const Tensor& hb = c.in("b", b);
  Tensor& hc = c.out("c", out);
  c.run([&] { inner_.matmul(a, b, out, trans_b, alpha); }, [&] { cpu_.matmul(ha, hb, hc, trans_b, alpha); });
}

void CheckingOps::add_layer_norm(Tensor& x, const Tensor* delta, const Tensor* gate, const NormParams& p, Tensor& y) {
  Call c(*this, "add_layer_norm");
  // x is only written when there is a delta to add.
  Tensor& hx = delta ? c.inout("x", x) : const_cast<Tensor&>(c.in("x", x));
  const Tensor* hd = c.in("delta", delta);
  const Tensor* hg = c.in("gate", gate);
  NormParams hp = p;
  hp.weight = c.in("weight", p.weight);
  hp.bias = c.in("bias", p.bias);
  hp.shift = c.in("shift", p.shift);
  hp.scale = c.in("scale", p.scale);
  Tensor& hy = c.out("y", y);
  c.run([&] { inner_.add_layer_norm(x, delta, gate, p, y); }, [&] { cpu_.add_layer_norm(hx, hd, hg, hp, hy); });
}

void CheckingOps::modulate(const Tensor& x, const Tensor& shift, const Tensor& scale, Tensor& y) {
  Call c(*this, "modulate");
  const Tensor& hx = c.in("x", x);
  const Tensor& hsh = c.in("shift", shift);
  const Tensor& hsc = c.in("scale", scale);
  Tensor& hy = c.out("y", y);
  c.run([&] { inner_.modulate(x, shift, scale, y); }, [&] { cpu_.modulate(hx, hsh, hsc, hy); });
}

void CheckingOps::gated_add(Tensor& x, const Tensor* gate, const Tensor& delta) {
  Call c(*this, "gated_add");
  Tensor& hx = c.inout("x", x);
  const Tensor* hg = c.in("gate", gate);
  const Tensor& hd = c.in("delta", delta);
  c.run([&] { inner_.gated_add(x, gate, delta); }, [&] { cpu_.gated_add(hx, hg, hd); });
}

void CheckingOps::activation(const Tensor& x, Act act, Tensor& y) {
  Call c(*this, "activation");
  const Tensor& hx = c.in("x", x);
  Tensor& hy = c.out("y", y);
  c.run([&] { inner_.activation(x, act, y); }, [&] { cpu_.activation(hx, act, hy); });
}

void CheckingOps::add(const Tensor& a, const Tensor& b, Tensor& y) {
  Call c(*this, "add");
  const Tensor& ha = c.in("a", a);
  const Tensor& hb = c.in("b", b);
  Tensor& hy = c.out("y", y);
  c.run([&] { inner_.add(a, b, y); }, [&] { cpu_.add(ha, hb, hy); });
}

void CheckingOps::softmax(const Tensor& x, Tensor& y) {
  Call c(*this, "softmax");
  const Tensor& hx = c.in("x", x);
  Tensor& hy = c.out("y", y);
  c.run([&] { inner_.softmax(x, y); }, [&] { cpu_.softmax(hx, hy); });
}

void CheckingOps::copy(const Tensor& src, Tensor& dst) {
  Call c(*this, "copy");
  const Tensor& hs = c.in("src", src);
  Tensor& hd = c.out("dst", dst);
  c.run([&] { inner_.copy(src, dst); }, [&] { cpu_.copy(hs, hd); });
}

void CheckingOps::fill(Tensor& dst, float value) {
  Call c(*this, "fill");
  Tensor& hd = c.out("dst", dst);
  c.run([&] { inner_.fill(dst, value); }, [&] { cpu_.fill(hd, value); });
}

void CheckingOps::attention(const Tensor& qkv, int heads, float scale, Tensor& out) {
  Call c(*this, "attention");
  const Tensor& hq = c.in("qkv", qkv);
  Tensor& ho = c.out("out", out);
  c.run([&] { inner_.attention(qkv, heads, scale, out); }, [&] { cpu_.attention(hq, heads, scale, ho); });
}

void CheckingOps::conv2d(const Tensor& x, const Tensor& w, const Tensor* bias, const Conv2dParams& p, Tensor& y) {
  Call c(*this, "conv2d");
  const Tensor& hx = c.in("x", x);
  const Tensor& hw = c.in("w", w);
  const Tensor* hb = c.in("bias", bias);
  Tensor& hy = c.out("y", y);
  c.run([&] { inner_.conv2d(x, w, bias, p, y); }, [&] { cpu_.conv2d(hx, hw, hb, p, hy); });
}

void CheckingOps::group_norm(const Tensor& x, int groups, const Tensor& weight, const Tensor& bias, float eps, Act act,
                             Tensor& y) {
  Call c(*this, "group_norm");
  const Tensor& hx = c.in("x", x);
  const Tensor& hw = c.in("weight", weight);
  const Tensor& hb = c.in("bias", bias);
  Tensor& hy = c.out("y", y);
  c.run([&] { inner_.group_norm(x, groups, weight, bias, eps, act, y); },
        [&] { cpu_.group_norm(hx, groups, hw, hb, eps, act, hy); });
}

void CheckingOps::upsample_nearest2x(const Tensor& x, Tensor& y) {
  Call c(*this, "upsample_nearest2x");
  const Tensor& hx = c.in("x", x);
  Tensor& hy = c.out("y", y);
  c.run([&] { inner_.upsample_nearest2x(x, y); }, [&] { cpu_.upsample_nearest2x(hx, hy); });
}

void CheckingOps::embedding(const Tensor& table, const Tensor& ids, Tensor& y) {
  Call c(*this, "embedding");
  const Tensor& ht = c.in("table", table);
  const Tensor& hi = c.in("ids", ids);
  Tensor& hy = c.out("y", y);
  c.run([&] { inner_.embedding(table, ids, y); }, [&] { cpu_.embedding(ht, hi, hy); });
}

void CheckingOps::timestep_embedding(const Tensor& t, float max_period, Tensor& y) {
  Call c(*this, "timestep_embedding");
  const Tensor& ht = c.in("t", t);
  Tensor& hy = c.out("y", y);
  c.run([&] { inner_.timestep_embedding(t, max_period, y); }, [&] { cpu_.timestep_embedding(ht, max_period, hy); });
}

void CheckingOps::patchify(const Tensor& img, int patch, Tensor& tokens) {
  Call c(*this, "patchify");
  const Tensor& hi = c.in("img", img);
  Tensor& ht = c.out("tokens", tokens);
  c.run([&] { inner_.patchify(img, patch, tokens); }, [&] { cpu_.patchify(hi, patch, ht); });
}

void CheckingOps::unpatchify(const Tensor& tokens, int patch, Tensor& img) {
  Call c(*this, "unpatchify");
  const Tensor& ht = c.in("tokens", tokens);
  Tensor& hi = c.out("img", img);
  c.run([&] { inner_.unpatchify(tokens, patch, img); }, [&] { cpu_.unpatchify(ht, patch, hi); });
}

void CheckingOps::softmax_topk(const Tensor& logits, Tensor& probs, Tensor& indices) {
  Call c(*this, "softmax_topk");
  const Tensor& hl = c.in("logits", logits);
  Tensor& hp = c.out("probs", probs);
  Tensor& hi = c.out("indices", indices);
  c.topk_indices_of("indices", "logits");
  c.run([&] { inner_.softmax_topk(logits, probs, indices); }, [&] { cpu_.softmax_topk(hl, hp, hi); });
}

void CheckingOps::preprocess_image(const Tensor& frame, const PreprocessParams& p, Tensor& dst) {
  Call c(*this, "preprocess_image");
  const Tensor& hf = c.in("frame", frame);
  Tensor& hd = c.out("dst", dst);
  c.run([&] { inner_.preprocess_image(frame, p, dst); }, [&] { cpu_.preprocess_image(hf, p, hd); });
}

void CheckingOps::to_rgba8(const Tensor& img, Tensor& rgba) {
  Call c(*this, "to_rgba8");
  const Tensor& hi = c.in("img", img);
  Tensor& hr = c.out("rgba", rgba);
  c.run([&] { inner_.to_rgba8(img, rgba); }, [&] { cpu_.to_rgba8(hi, hr); });
}

void CheckingOps::sampler_timesteps(const Tensor& tables, const Tensor& step, Tensor& t) {
  Call c(*this, "sampler_timesteps");
  const Tensor& htab = c.in("tables", tables);
  const Tensor& hs = c.in("step", step);
  Tensor& ht = c.out("t", t);
  c.run([&] { inner_.sampler_timesteps(tables, step, t); }, [&] { cpu_.sampler_timesteps(htab, hs, ht); });
}

void CheckingOps::sampler_step(const SamplerStepArgs& a) {
  Call c(*this, "sampler_step");
  SamplerStepArgs h = a;
  h.model_out = c.in("model_out", a.model_out);
  h.x = a.x ? &c.inout("x", *a.x) : nullptr;
  h.model_in = c.out("model_in", a.model_in);
  h.tables = c.in("tables", a.tables);
  h.step = a.step ? &c.inout("step", *a.step) : nullptr;
  h.seeds = c.in("seeds", a.seeds);
  h.noise = c.in("noise", a.noise);
  h.pred_x0 = c.out("pred_x0", a.pred_x0);
  c.run([&] { inner_.sampler_step(a); }, [&] { cpu_.sampler_step(h); });
}

}  // namespace blr::test
