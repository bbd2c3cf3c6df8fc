#include "engine/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "engine/core/error.h"

namespace blr {

using json = nlohmann::json;

namespace {

[[noreturn]] void fail(const std::string& label, const std::string& problem) {
  throw InputError(cat(label, ": ", problem));
}

// Safetensors dtype names -> ours; names we do not support (F8_*, U16, ...) are reported as unknown.
bool dtype_from_safetensors(const std::string& s, DType* out) {
  static const std::pair<const char*, DType> table[] = {
      {"F64", DType::F64}, {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16},
      {"I64", DType::I64}, {"I32", DType::I32}, {"I16", DType::I16}, {"I8", DType::I8},
      {"U8", DType::U8},   {"BOOL", DType::Bool}};
  for (const auto& [name, t] : table)
    if (s == name) {
      *out = t;
      return true;
    }
  return false;
}

}  // namespace

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, cat("cannot open: ", std::strerror(errno)));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    fail(path, cat("cannot stat: ", std::strerror(e)));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    fail(path, "is a directory, not a safetensors file");
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    fail(path, cat("file is ", size, " bytes, too short for a safetensors header (8-byte length + JSON)"));
  }
  void* map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) fail(path, cat("cannot map: ", std::strerror(errno)));
  std::shared_ptr<const void> bytes(map, [size](const void* p) { munmap(const_cast<void*>(p), size); });
  return from_memory(bytes, size, path);
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::from_memory(std::shared_ptr<const void> bytes, size_t size,
                                                              const std::string& label) {
  auto f = std::shared_ptr<SafetensorsFile>(new SafetensorsFile());
  f->path_ = label;
  f->bytes_ = std::move(bytes);
  const auto* base = static_cast<const unsigned char*>(f->bytes_.get());
  if (size < 8) fail(label, cat("file is ", size, " bytes, too short for a safetensors header"));
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | base[i];
  if (header_len > size - 8)
    fail(label, cat("header length ", header_len, " runs past the end of the file (", size, " bytes)"));
  if (header_len < 2) fail(label, cat("header length ", header_len, " is too small for a JSON object"));
  const char* hdr = reinterpret_cast<const char*>(base + 8);
  json header;
  try {
    header = json::parse(hdr, hdr + header_len);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for numbers like 1E99999
    fail(label, cat("header is not valid JSON (", e.what(), ")"));
  }
  if (!header.is_object()) fail(label, cat("header is a JSON ", header.type_name(), ", expected an object"));
  f->data_ = base + 8 + header_len;
  f->data_size_ = size - 8 - header_len;

  std::vector<std::pair<size_t, std::string>> order;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) fail(label, "__metadata__ is not an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) fail(label, cat("__metadata__ value for '", m.key(), "' is not a string"));
        f->metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = cat("tensor '", name, "'");
    if (!v.is_object()) fail(label, cat(where, ": entry is not an object"));
    if (!v.contains("dtype") || !v["dtype"].is_string()) fail(label, cat(where, ": missing or non-string dtype"));
    Entry e;
    const std::string dt = v["dtype"].get<std::string>();
    if (!dtype_from_safetensors(dt, &e.info.dtype)) fail(label, cat(where, ": unknown dtype '", dt, "'"));
    if (!v.contains("shape") || !v["shape"].is_array()) fail(label, cat(where, ": missing or non-array shape"));
    uint64_t numel = 1;
    for (const json& d : v["shape"]) {
      if (!d.is_number_unsigned()) fail(label, cat(where, ": shape entry ", d.dump(), " is not a non-negative integer"));
      const uint64_t dim = d.get<uint64_t>();
      if (dim > (uint64_t(1) << 40) || (dim && numel > (uint64_t(1) << 50) / dim))
        fail(label, cat(where, ": shape ", v["shape"].dump(), " is too large"));
      numel *= dim;
      e.info.shape.push_back(static_cast<int64_t>(dim));
    }
    const json& off = v.contains("data_offsets") ? v["data_offsets"] : json();
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      fail(label, cat(where, ": data_offsets must be two non-negative integers"));
    const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    if (begin > end) fail(label, cat(where, ": data_offsets [", begin, ",", end, "] run backwards"));
    if (end > f->data_size_)
      fail(label, cat(where, ": data_offsets [", begin, ",", end, "] run past the data section (", f->data_size_,
                      " bytes)"));
    const uint64_t expect = numel * dtype_size(e.info.dtype);
    if (end - begin != expect)
      fail(label, cat(where, ": shape ", shape_str(e.info.shape), " of ", dt, " needs ", expect, " bytes but data_offsets span ",
                      end - begin));
    e.begin = begin;
    e.end = end;
    f->entries_[name] = e;
    order.emplace_back(begin, name);
  }
  std::sort(order.begin(), order.end());
  for (size_t i = 0; i < order.size(); ++i) {
    if (i > 0) {
      const Entry& prev = f->entries_[order[i - 1].second];
      const Entry& cur = f->entries_[order[i].second];
      if (cur.begin < prev.end && cur.end > cur.begin && prev.end > prev.begin)
        fail(label, cat("tensor '", order[i].second, "' overlaps tensor '", order[i - 1].second, "' in the data section"));
    }
    f->names_.push_back(order[i].second);
  }
  return f;
}

TensorInfo SafetensorsFile::info(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) fail(path_, cat("tensor '", name, "' not found"));
  return it->second.info;
}

Tensor SafetensorsFile::get(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) fail(path_, cat("tensor '", name, "' not found"));
  const Entry& e = it->second;
  const unsigned char* p = data_ + e.begin;
  const size_t align = dtype_size(e.info.dtype);
  if (reinterpret_cast<uintptr_t>(p) % align == 0)
    return Tensor::from_blob(const_cast<unsigned char*>(p), e.info.shape, e.info.dtype, Device::CPU,
                             std::const_pointer_cast<void>(bytes_));
  Tensor t = Tensor::zeros(e.info.shape, e.info.dtype);
  std::memcpy(t.data(), p, e.end - e.begin);
  return t;
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, Tensor>> host;
  host.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__") throw InputError(cat(path, ": '__metadata__' cannot be a tensor name"));
    BLR_CHECK(t.defined(), path, ": tensor '", name, "' is empty");
    host.emplace_back(name, (t.device() == Device::CPU && t.is_contiguous()) ? t : t.to_host());
  }
  // Largest elements first keeps each tensor aligned to its element size without holes.
  std::stable_sort(host.begin(), host.end(), [](const auto& a, const auto& b) {
    return dtype_size(a.second.dtype()) > dtype_size(b.second.dtype());
  });
  json header = json::object();
  size_t offset = 0;
  for (const auto& [name, t] : host) {
    if (header.contains(name)) throw InputError(cat(path, ": tensor '", name, "' given twice"));
    header[name] = {{"dtype", safetensors_dtype_name(t.dtype())},
                    {"shape", t.shape()},
                    {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text = header.dump();
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');  // data section starts 8-byte aligned

  const std::string tmp = path + ".tmp";
  FILE* out = std::fopen(tmp.c_str(), "wb");
  if (!out) throw InputError(cat(path, ": cannot write: ", std::strerror(errno)));
  bool ok = true;
  unsigned char len[8];
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  ok = ok && std::fwrite(len, 1, 8, out) == 8;
  ok = ok && std::fwrite(text.data(), 1, text.size(), out) == text.size();
  for (const auto& [name, t] : host) ok = ok && std::fwrite(t.data(), 1, t.nbytes(), out) == t.nbytes();
  ok = (std::fclose(out) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp.c_str());
    throw InputError(cat(path, ": write failed: ", std::strerror(e)));
  }
}

}  // namespace blr
