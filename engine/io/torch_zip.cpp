#include "engine/io/torch_zip.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "engine/core/error.h"

namespace blr {

namespace {

constexpr uint64_t kMaxEntries = uint64_t(1) << 20;
constexpr size_t kVerifyBytes = 4096;  // leading and trailing bytes compared before trusting a view

}  // namespace

// libzip reads the archive through this source, a plain view of the mapping, which also notes where each
// read starts so the data offset of a stored entry can be learned (see read()).
struct ZipReader::Impl {
  std::shared_ptr<const void> map;
  const uint8_t* base = nullptr;
  uint64_t size = 0;
  zip_t* za = nullptr;
  std::mutex mu;  // libzip archives are not thread-safe
  uint64_t pos = 0;
  bool recording = false;
  int64_t last_read = -1;
  zip_error_t error{};

  static zip_int64_t callback(void* user, void* data, zip_uint64_t len, zip_source_cmd_t cmd) {
    auto* s = static_cast<Impl*>(user);
    switch (cmd) {
      case ZIP_SOURCE_OPEN:
        s->pos = 0;
        return 0;
      case ZIP_SOURCE_READ: {
        const uint64_t n = std::min<uint64_t>(len, s->size - std::min(s->pos, s->size));
        if (s->recording) s->last_read = static_cast<int64_t>(s->pos);
        if (n) std::memcpy(data, s->base + s->pos, n);
        s->pos += n;
        return static_cast<zip_int64_t>(n);
      }
      case ZIP_SOURCE_CLOSE:
      case ZIP_SOURCE_FREE:
        return 0;
      case ZIP_SOURCE_STAT: {
        if (len < sizeof(zip_stat_t)) {
          zip_error_set(&s->error, ZIP_ER_INVAL, 0);
          return -1;
        }
        auto* st = static_cast<zip_stat_t*>(data);
        zip_stat_init(st);
        st->size = s->size;
        st->valid |= ZIP_STAT_SIZE;
        return sizeof(zip_stat_t);
      }
      case ZIP_SOURCE_ERROR:
        return zip_error_to_data(&s->error, data, len);
      case ZIP_SOURCE_SEEK: {
        const zip_int64_t off = zip_source_seek_compute_offset(s->pos, s->size, data, len, &s->error);
        if (off < 0) return -1;
        s->pos = static_cast<uint64_t>(off);
        return 0;
      }
      case ZIP_SOURCE_TELL:
        return static_cast<zip_int64_t>(s->pos);
      case ZIP_SOURCE_SUPPORTS:
        return zip_source_make_command_bitmap(ZIP_SOURCE_OPEN, ZIP_SOURCE_READ, ZIP_SOURCE_CLOSE, ZIP_SOURCE_STAT,
                                              ZIP_SOURCE_ERROR, ZIP_SOURCE_FREE, ZIP_SOURCE_SEEK, ZIP_SOURCE_TELL,
                                              ZIP_SOURCE_SUPPORTS, -1);
      default:
        zip_error_set(&s->error, ZIP_ER_OPNOTSUPP, 0);
        return -1;
    }
  }

  // Reads up to `len` bytes of entry `index` from byte `skip` on, through libzip. Returns bytes read or -1.
  int64_t read_through_libzip(uint64_t index, uint64_t skip, uint8_t* out, uint64_t len) {
    zip_file_t* f = zip_fopen_index(za, index, 0);
    if (!f) return -1;
    if (skip && zip_fseek(f, static_cast<zip_int64_t>(skip), SEEK_SET) != 0) {
      zip_fclose(f);
      return -1;
    }
    uint64_t got = 0;
    while (got < len) {
      const zip_int64_t r = zip_fread(f, out + got, len - got);
      if (r <= 0) break;
      got += static_cast<uint64_t>(r);
    }
    zip_fclose(f);
    return static_cast<int64_t>(got);
  }

  // Where the data of stored entry `e` starts in the mapping, or -1 when it cannot be established.
  int64_t stored_data_offset(const ZipEntry& e) {
    zip_file_t* f = zip_fopen_index(za, e.index, 0);
    if (!f) return -1;
    uint8_t first = 0;
    recording = true;
    last_read = -1;
    const zip_int64_t r = zip_fread(f, &first, 1);
    recording = false;
    zip_fclose(f);
    const int64_t cand = last_read;  // the read that delivered the entry's first byte
    if (r != 1 || cand < 0 || static_cast<uint64_t>(cand) > size || e.size > size - static_cast<uint64_t>(cand))
      return -1;
    // Confirm: the leading and trailing bytes as libzip delivers them must equal the mapping's.
    uint8_t buf[kVerifyBytes];
    const uint64_t k = std::min<uint64_t>(e.size, kVerifyBytes);
    if (read_through_libzip(e.index, 0, buf, k) != static_cast<int64_t>(k) || std::memcmp(buf, base + cand, k) != 0)
      return -1;
    if (e.size > k) {
      const uint64_t tail = e.size - k;
      if (read_through_libzip(e.index, tail, buf, k) != static_cast<int64_t>(k) ||
          std::memcmp(buf, base + cand + tail, k) != 0)
        return -1;
    }
    return cand;
  }
};

std::shared_ptr<ZipReader> ZipReader::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw InputError(cat(path, ": cannot open: ", std::strerror(errno)));
  struct stat st {};
  if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode) || st.st_size <= 0) {
    ::close(fd);
    throw InputError(cat(path, ": not a regular, non-empty file"));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  void* map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) throw InputError(cat(path, ": cannot map: ", std::strerror(errno)));

  std::shared_ptr<ZipReader> r(new ZipReader());
  r->path_ = path;
  r->impl_ = std::make_unique<Impl>();
  Impl& im = *r->impl_;
  im.map = std::shared_ptr<const void>(map, [size](const void* p) { munmap(const_cast<void*>(p), size); });
  im.base = static_cast<const uint8_t*>(map);
  im.size = size;
  zip_error_init(&im.error);

  zip_error_t err;
  zip_error_init(&err);
  zip_source_t* src = zip_source_function_create(&Impl::callback, &im, &err);
  if (!src) {
    const std::string why = zip_error_strerror(&err);
    zip_error_fini(&err);
    throw InputError(cat(path, ": cannot read as zip (", why, ")"));
  }
  im.za = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &err);
  if (!im.za) {
    const std::string why = zip_error_strerror(&err);
    zip_error_fini(&err);
    zip_source_free(src);
    throw InputError(cat(path, ": not a readable zip archive (", why, "); the file may be truncated or corrupt"));
  }
  zip_error_fini(&err);

  const zip_int64_t n = zip_get_num_entries(im.za, 0);
  if (n < 0 || static_cast<uint64_t>(n) > kMaxEntries)
    throw InputError(cat(path, ": zip archive lists ", n, " entries (at most ", kMaxEntries, " accepted)"));
  for (zip_int64_t i = 0; i < n; ++i) {
    zip_stat_t zs;
    zip_stat_init(&zs);
    if (zip_stat_index(im.za, static_cast<zip_uint64_t>(i), 0, &zs) != 0 || !zs.name) continue;
    const zip_uint64_t need = ZIP_STAT_NAME | ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD;
    if ((zs.valid & need) != need) continue;
    ZipEntry e;
    e.index = static_cast<uint64_t>(i);
    e.name = zs.name;
    e.size = zs.size;
    e.comp_size = zs.comp_size;
    e.method = (zs.valid & ZIP_STAT_ENCRYPTION_METHOD) && zs.encryption_method != ZIP_EM_NONE ? 0xffff : zs.comp_method;
    r->by_name_.emplace(e.name, r->entries_.size());
    r->entries_.push_back(std::move(e));
  }
  return r;
}

ZipReader::~ZipReader() {
  if (impl_ && impl_->za) zip_discard(impl_->za);
  if (impl_) zip_error_fini(&impl_->error);
}

const ZipEntry* ZipReader::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

ZipBytes ZipReader::read(const ZipEntry& e, uint64_t want) const {
  Impl& im = *impl_;
  const std::string where = cat(path_, ": zip entry '", e.name, "'");
  if (want > e.size) throw InputError(cat(where, ": ", want, " bytes wanted but it holds ", e.size));
  if (e.method == 0xffff) throw InputError(cat(where, " is encrypted"));
  if (e.method != ZIP_CM_STORE && e.method != ZIP_CM_DEFLATE)
    throw InputError(cat(where, ": compression method ", e.method, " is not one torch.save or zip tools use for "
                                "checkpoints (only stored or deflated entries are read)"));
  if (e.method == ZIP_CM_STORE && e.comp_size != e.size)
    throw InputError(cat(where, ": stored entry declares ", e.size, " bytes but occupies ", e.comp_size));
  if (e.method == ZIP_CM_DEFLATE && (e.comp_size > im.size || e.size / kMaxDeflateRatio > e.comp_size))
    throw InputError(cat(where, ": declares ", e.size, " bytes from ", e.comp_size,
                         " compressed bytes, more than deflate can produce (a zip bomb or a corrupt header)"));
  ZipBytes out;
  if (want == 0) {
    out.holder = im.map;
    out.data = im.base;
    out.mapped = true;
    return out;
  }
  std::lock_guard<std::mutex> lock(im.mu);
  if (e.method == ZIP_CM_STORE) {
    const int64_t off = im.stored_data_offset(e);
    if (off >= 0) {
      out.holder = im.map;
      out.data = im.base + off;
      out.size = static_cast<size_t>(want);
      out.mapped = true;
      return out;
    }
  }
  // Decompress (or copy) through libzip, growing the buffer only as bytes actually arrive, so a header
  // that lies about the size costs no more memory than the data really holds.
  zip_file_t* f = zip_fopen_index(im.za, e.index, 0);
  if (!f) throw InputError(cat(where, ": cannot open (", zip_strerror(im.za), ")"));
  auto buf = std::make_shared<std::vector<uint8_t>>();
  const uint64_t chunk = uint64_t(1) << 22;
  uint64_t got = 0;
  while (got < want) {
    const uint64_t n = std::min(chunk, want - got);
    buf->resize(static_cast<size_t>(got + n));
    const zip_int64_t r = zip_fread(f, buf->data() + got, n);
    if (r < 0) {
      const std::string why = zip_file_strerror(f);
      zip_fclose(f);
      throw InputError(cat(where, ": read failed (", why, ")"));
    }
    if (r == 0) break;
    got += static_cast<uint64_t>(r);
  }
  zip_fclose(f);
  if (got < want)
    throw InputError(cat(where, ": data ends after ", got, " bytes but ", want, " are needed (", e.size,
                         " declared); the file is truncated or corrupt"));
  buf->resize(static_cast<size_t>(want));
  out.data = buf->data();
  out.size = static_cast<size_t>(want);
  out.holder = std::shared_ptr<const void>(buf, buf->data());
  return out;
}

}  // namespace blr
