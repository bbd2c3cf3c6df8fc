// Read-only access to the zip container of a PyTorch checkpoint, through libzip (Debian's libzip-dev)
// rather than a hand-written zip parser. The file is memory-mapped once and libzip reads from that
// mapping. Entries stored without compression (torch.save never compresses, and aligns each storage to
// 64 bytes) come back as zero-copy views of the mapping; deflated entries (a re-zipped checkpoint) are
// decompressed into memory. libzip has no public call for "where does an entry's data start", so the
// reader learns it by watching which bytes libzip reads when asked for the entry's first byte, then
// confirms it by comparing the entry's leading bytes through libzip with the mapping; if anything
// disagrees it falls back to decompressing through libzip, so the view is never wrong.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace blr {

struct ZipEntry {
  uint64_t index = 0;
  std::string name;
  uint64_t size = 0;       // uncompressed size as declared by the central directory
  uint64_t comp_size = 0;  // bytes in the file
  uint16_t method = 0;     // 0 stored, 8 deflate (the only two accepted)
};

// Bytes of one entry; `holder` keeps them (the mapping or a heap buffer) alive.
struct ZipBytes {
  std::shared_ptr<const void> holder;
  const uint8_t* data = nullptr;
  size_t size = 0;
  bool mapped = false;  // true: a view of the mapped file, no copy
};

class ZipReader {
 public:
  // Maps and opens the archive, checking local headers against the central directory. Throws InputError
  // "<path>: not a readable zip archive (<libzip's reason>)" for truncated or corrupt files.
  static std::shared_ptr<ZipReader> open(const std::string& path);
  ~ZipReader();
  ZipReader(const ZipReader&) = delete;
  ZipReader& operator=(const ZipReader&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(const std::string& name) const;  // nullptr when absent

  // The first `want` bytes of `e` (want <= e.size). Refuses, with an InputError naming the entry, a
  // compression method other than store/deflate, a declared size that deflate could not produce from the
  // compressed bytes (a bomb), and data shorter than declared. Nothing is allocated before those checks.
  // Thread-safe.
  ZipBytes read(const ZipEntry& e, uint64_t want) const;

 private:
  ZipReader() = default;
  struct Impl;
  std::string path_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> by_name_;  // first entry of each name
  std::unique_ptr<Impl> impl_;
};

// Deflate never expands more than 1032:1 (RFC 1951: 258-byte matches coded in at least 2 bits), so a
// declared size beyond this bound from `comp_size` bytes is a lie.
constexpr uint64_t kMaxDeflateRatio = 1032;

}  // namespace blr
