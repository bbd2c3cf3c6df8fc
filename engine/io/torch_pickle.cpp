#include "engine/io/torch_pickle.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "engine/core/error.h"

namespace blr {

namespace {

// Every opcode of pickle protocols 0-5, so that a refusal can name the one it met.
const char* opcode_name(uint8_t op) {
  switch (op) {
    case 0x28: return "MARK";            case 0x2e: return "STOP";          case 0x30: return "POP";
    case 0x31: return "POP_MARK";        case 0x32: return "DUP";           case 0x46: return "FLOAT";
    case 0x49: return "INT";             case 0x4a: return "BININT";        case 0x4b: return "BININT1";
    case 0x4c: return "LONG";            case 0x4d: return "BININT2";       case 0x4e: return "NONE";
    case 0x50: return "PERSID";          case 0x51: return "BINPERSID";     case 0x52: return "REDUCE";
    case 0x53: return "STRING";          case 0x54: return "BINSTRING";     case 0x55: return "SHORT_BINSTRING";
    case 0x56: return "UNICODE";         case 0x58: return "BINUNICODE";    case 0x61: return "APPEND";
    case 0x62: return "BUILD";           case 0x63: return "GLOBAL";        case 0x64: return "DICT";
    case 0x7d: return "EMPTY_DICT";      case 0x65: return "APPENDS";       case 0x67: return "GET";
    case 0x68: return "BINGET";          case 0x69: return "INST";          case 0x6a: return "LONG_BINGET";
    case 0x6c: return "LIST";            case 0x5d: return "EMPTY_LIST";    case 0x6f: return "OBJ";
    case 0x70: return "PUT";             case 0x71: return "BINPUT";        case 0x72: return "LONG_BINPUT";
    case 0x73: return "SETITEM";         case 0x74: return "TUPLE";         case 0x29: return "EMPTY_TUPLE";
    case 0x75: return "SETITEMS";        case 0x47: return "BINFLOAT";      case 0x80: return "PROTO";
    case 0x81: return "NEWOBJ";          case 0x82: return "EXT1";          case 0x83: return "EXT2";
    case 0x84: return "EXT4";            case 0x85: return "TUPLE1";        case 0x86: return "TUPLE2";
    case 0x87: return "TUPLE3";          case 0x88: return "NEWTRUE";       case 0x89: return "NEWFALSE";
    case 0x8a: return "LONG1";           case 0x8b: return "LONG4";         case 0x42: return "BINBYTES";
    case 0x43: return "SHORT_BINBYTES";  case 0x8c: return "SHORT_BINUNICODE"; case 0x8d: return "BINUNICODE8";
    case 0x8e: return "BINBYTES8";       case 0x8f: return "EMPTY_SET";     case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";       case 0x92: return "NEWOBJ_EX";     case 0x93: return "STACK_GLOBAL";
    case 0x94: return "MEMOIZE";         case 0x95: return "FRAME";         case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";     case 0x98: return "READONLY_BUFFER";
    default: return nullptr;
  }
}

const char* kind_name(PyKind k) {
  switch (k) {
    case PyKind::None: return "None";
    case PyKind::Bool: return "bool";
    case PyKind::Int: return "int";
    case PyKind::BigInt: return "int (over 64 bits)";
    case PyKind::Float: return "float";
    case PyKind::Str: return "str";
    case PyKind::Tuple: return "tuple";
    case PyKind::List: return "list";
    case PyKind::Dict: return "dict";
    case PyKind::Global: return "global";
    case PyKind::Storage: return "storage";
    case PyKind::Tensor: return "tensor";
    case PyKind::Object: return "object";
  }
  return "?";
}

// Quotes untrusted text for an error message: printable ASCII kept, the rest escaped, long text cut.
std::string quoted(const std::string& s) {
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < 120; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > 120) out += "...";
  return out + "'";
}

// Strict UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF): names end up in JSON headers.
bool valid_utf8(const uint8_t* p, size_t n) {
  size_t i = 0;
  while (i < n) {
    const uint8_t c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (n - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

struct StorageTypeName {
  const char* name;
  DType dtype;
};
const StorageTypeName kStorageTypes[] = {
    {"FloatStorage", DType::F32}, {"HalfStorage", DType::F16},   {"BFloat16Storage", DType::BF16},
    {"DoubleStorage", DType::F64}, {"LongStorage", DType::I64},  {"IntStorage", DType::I32},
    {"ShortStorage", DType::I16}, {"CharStorage", DType::I8},    {"ByteStorage", DType::U8},
    {"BoolStorage", DType::Bool}};

const char* kAllowedGlobals =
    "torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter, collections.OrderedDict, "
    "argparse.Namespace and torch.*Storage types";

bool checked_mul(int64_t a, int64_t b, int64_t* out) { return !__builtin_mul_overflow(a, b, out); }
bool checked_add(int64_t a, int64_t b, int64_t* out) { return !__builtin_add_overflow(a, b, out); }

// Keeps sizes far below int64 overflow so later byte arithmetic (× element size) stays safe.
constexpr int64_t kMaxElements = int64_t(1) << 58;

class Unpickler {
 public:
  Unpickler(const uint8_t* data, size_t size, const std::string& label, const PickleLimits& limits)
      : p_(data), n_(size), label_(label), lim_(limits) {}

  PickleGraph run() {
    while (true) {
      if (pos_ >= n_) fail_at(n_, cat("data ends after ", n_, " bytes without a STOP opcode (truncated pickle?)"));
      op_pos_ = pos_;
      const uint8_t op = p_[pos_++];
      if (step(op)) break;
    }
    return std::move(g_);
  }

 private:
  [[noreturn]] void fail_at(size_t offset, const std::string& problem) const {
    throw InputError(cat(label_, ": offset ", offset, ": ", problem));
  }
  [[noreturn]] void fail(const std::string& problem) const { fail_at(op_pos_, problem); }
  std::string op_str(uint8_t op) const {
    const char* name = opcode_name(op);
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", op);
    return name ? cat(name, " (", hex, ")") : cat("unknown opcode ", hex);
  }

  // --- reading operands (every length checked against what remains) ---
  const uint8_t* take(size_t count, const char* what) {
    if (count > n_ - pos_) fail(cat(what, " needs ", count, " bytes but only ", n_ - pos_, " remain"));
    const uint8_t* at = p_ + pos_;
    pos_ += count;
    return at;
  }
  uint64_t read_le(size_t bytes, const char* what) {
    const uint8_t* b = take(bytes, what);
    uint64_t v = 0;
    for (size_t i = bytes; i-- > 0;) v = (v << 8) | b[i];
    return v;
  }
  std::string read_line(const char* what) {
    const size_t start = pos_;
    const size_t max_len = 256;  // module and attribute names are short
    for (size_t i = start; i < n_ && i - start <= max_len; ++i) {
      if (p_[i] == '\n') {
        pos_ = i + 1;
        return std::string(reinterpret_cast<const char*>(p_ + start), i - start);
      }
    }
    fail(cat(what, " is not a newline-terminated name of at most ", max_len, " bytes"));
  }
  uint32_t read_string(uint64_t len) {
    if (len > lim_.max_string_bytes) fail(cat("string of ", len, " bytes exceeds the limit of ", lim_.max_string_bytes));
    const uint8_t* b = take(static_cast<size_t>(len), "string");
    if (!valid_utf8(b, static_cast<size_t>(len))) fail("string is not valid UTF-8");
    const uint32_t id = make(PyKind::Str);
    g_.objects[id].s.assign(reinterpret_cast<const char*>(b), static_cast<size_t>(len));
    return id;
  }

  // --- objects, stack, marks, memo ---
  uint32_t make(PyKind kind) {
    if (g_.objects.size() >= lim_.max_objects) fail(cat("more than ", lim_.max_objects, " objects"));
    g_.objects.emplace_back();
    g_.objects.back().kind = kind;
    return static_cast<uint32_t>(g_.objects.size() - 1);
  }
  PyObject& obj(uint32_t id) { return g_.objects[id]; }
  size_t frame_base() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(uint32_t id) {
    if (stack_.size() >= lim_.max_stack) fail(cat("stack deeper than ", lim_.max_stack));
    stack_.push_back(id);
  }
  uint32_t top(const char* op) {
    if (stack_.size() <= frame_base()) fail(cat(op, " needs a value on the stack but it is empty"));
    return stack_.back();
  }
  uint32_t pop(const char* op) {
    const uint32_t v = top(op);
    stack_.pop_back();
    return v;
  }
  std::vector<uint32_t> pop_mark(const char* op) {
    if (marks_.empty()) fail(cat(op, " needs a MARK but there is none"));
    const size_t base = marks_.back();
    marks_.pop_back();
    std::vector<uint32_t> items(stack_.begin() + static_cast<std::ptrdiff_t>(base), stack_.end());
    stack_.resize(base);
    return items;
  }
  void add_items(uint32_t container, const std::vector<uint32_t>& items, const char* op) {
    auto& dst = obj(container).items;
    if (items.size() > lim_.max_container_items - std::min(dst.size(), lim_.max_container_items))
      fail(cat(op, ": container would hold more than ", lim_.max_container_items, " items"));
    dst.insert(dst.end(), items.begin(), items.end());
  }
  uint32_t make_container(PyKind kind, std::vector<uint32_t> items, const char* op) {
    const uint32_t id = make(kind);
    add_items(id, items, op);
    return id;
  }
  void memo_put(uint64_t index) {
    const uint32_t v = top("PUT");
    if (index > UINT32_MAX) fail("memo index too large");
    auto it = memo_.find(static_cast<uint32_t>(index));
    if (it != memo_.end()) {
      it->second = v;
      return;
    }
    if (memo_.size() >= lim_.max_memo) fail(cat("memo would exceed ", lim_.max_memo, " entries"));
    memo_.emplace(static_cast<uint32_t>(index), v);
  }
  void memo_get(uint64_t index, const char* op) {
    auto it = index <= UINT32_MAX ? memo_.find(static_cast<uint32_t>(index)) : memo_.end();
    if (it == memo_.end())
      fail(cat(op, ": memo index ", index, " out of range (no such entry; the memo holds ", memo_.size(), ")"));
    push(it->second);
  }

  // --- globals ---
  // By value: the caller's strings may live in objects_, which make() below can reallocate.
  uint32_t resolve_global(const std::string module, const std::string name, const char* op) {
    const std::string full = module + "." + name;
    const uint32_t id = make(PyKind::Global);
    PyObject& o = obj(id);
    o.s = full;
    if (module == "torch._utils" && name == "_rebuild_tensor_v2") {
      o.i = static_cast<int64_t>(TorchGlobal::RebuildTensorV2);
    } else if (module == "torch._utils" && name == "_rebuild_parameter") {
      o.i = static_cast<int64_t>(TorchGlobal::RebuildParameter);
    } else if (module == "collections" && name == "OrderedDict") {
      o.i = static_cast<int64_t>(TorchGlobal::OrderedDict);
    } else if (module == "argparse" && name == "Namespace") {
      o.i = static_cast<int64_t>(TorchGlobal::Namespace);
    } else {
      bool found = false;
      if (module == "torch") {
        for (const auto& st : kStorageTypes) {
          if (name == st.name) {
            o.i = static_cast<int64_t>(TorchGlobal::StorageType);
            o.dtype = st.dtype;
            found = true;
          }
        }
      }
      if (!found) {
        const char* hint = "";
        if (module == "torch" && name.size() > 7 && name.compare(name.size() - 7, 7, "Storage") == 0)
          hint = " (a storage type this reader has no dtype for)";
        else if (!name.empty() && name[0] >= 'A' && name[0] <= 'Z')
          hint = " (a class: if the file is a whole pickled model, save model.state_dict() with torch.save instead)";
        fail(cat(op, " ", quoted(full), " is not allowed", hint, ": this reader only builds tensors and containers (",
                 kAllowedGlobals, ")"));
      }
    }
    return id;
  }
  TorchGlobal global_of(uint32_t id) const { return static_cast<TorchGlobal>(g_.objects[id].i); }

  // --- allowed calls ---
  const PyObject& arg(const std::vector<uint32_t>& args, size_t i, PyKind kind, const std::string& callee,
                      const char* what) {
    const PyObject& a = g_.objects[args[i]];
    if (a.kind != kind)
      fail(cat(callee, ": argument ", i + 1, " (", what, ") is a ", kind_name(a.kind), ", expected a ", kind_name(kind)));
    return a;
  }
  std::vector<int64_t> int_tuple(const PyObject& t, const std::string& callee, const char* what) {
    std::vector<int64_t> out;
    if (t.items.size() > lim_.max_dims)
      fail(cat(callee, ": ", what, " has ", t.items.size(), " entries, more than the ", lim_.max_dims, " allowed"));
    for (uint32_t id : t.items) {
      const PyObject& v = g_.objects[id];
      if (v.kind != PyKind::Int) fail(cat(callee, ": ", what, " holds a ", kind_name(v.kind), ", expected ints"));
      out.push_back(v.i);
    }
    return out;
  }

  uint32_t rebuild_tensor(const std::vector<uint32_t>& args) {
    const std::string callee = "torch._utils._rebuild_tensor_v2";
    if (args.size() != 6 && args.size() != 7)
      fail(cat(callee, " called with ", args.size(), " arguments, expected 6 or 7"));
    const PyObject& storage = arg(args, 0, PyKind::Storage, callee, "storage");
    const PyObject& offset = arg(args, 1, PyKind::Int, callee, "storage offset");
    const PyObject& size = arg(args, 2, PyKind::Tuple, callee, "size");
    const PyObject& stride = arg(args, 3, PyKind::Tuple, callee, "stride");
    arg(args, 4, PyKind::Bool, callee, "requires_grad");
    arg(args, 5, PyKind::Dict, callee, "backward hooks");
    if (args.size() == 7) {
      const PyKind k = g_.objects[args[6]].kind;
      if (k != PyKind::Dict && k != PyKind::None)
        fail(cat(callee, ": argument 7 (metadata) is a ", kind_name(k), ", expected a dict"));
    }
    TorchTensorRef t;
    t.storage = static_cast<uint32_t>(storage.i);
    t.offset = offset.i;
    t.shape = int_tuple(size, callee, "size");
    t.stride = int_tuple(stride, callee, "stride");
    try {
      check_tensor_geometry(t, g_.storages[t.storage], lim_.max_dims);
    } catch (const InputError& e) {
      fail(cat(callee, ": ", e.what()));
    }
    const uint32_t id = make(PyKind::Tensor);
    obj(id).i = static_cast<int64_t>(g_.tensors.size());
    g_.tensors.push_back(std::move(t));
    return id;
  }

  uint32_t reduce(uint32_t callable, const std::vector<uint32_t>& args) {
    const PyObject& c = g_.objects[callable];
    if (c.kind != PyKind::Global) fail(cat("REDUCE on a ", kind_name(c.kind), " is not allowed: only allowed globals can be called"));
    switch (global_of(callable)) {
      case TorchGlobal::RebuildTensorV2:
        return rebuild_tensor(args);
      case TorchGlobal::RebuildParameter: {
        const std::string callee = "torch._utils._rebuild_parameter";
        if (args.size() != 3) fail(cat(callee, " called with ", args.size(), " arguments, expected 3"));
        arg(args, 0, PyKind::Tensor, callee, "data");
        arg(args, 1, PyKind::Bool, callee, "requires_grad");
        arg(args, 2, PyKind::Dict, callee, "backward hooks");
        return args[0];  // a Parameter is its tensor as far as weights go
      }
      case TorchGlobal::OrderedDict:
        if (!args.empty()) fail(cat("collections.OrderedDict called with ", args.size(), " arguments; torch.save passes none"));
        return make(PyKind::Dict);
      case TorchGlobal::StorageType:
      case TorchGlobal::Namespace:
        break;
    }
    fail(cat("REDUCE on ", quoted(c.s), " is not allowed (it may only appear in a persistent id or NEWOBJ)"));
  }

  uint32_t persistent_load(uint32_t pid_id) {
    const PyObject& pid = g_.objects[pid_id];
    if (pid.kind != PyKind::Tuple || pid.items.size() != 5)
      fail("BINPERSID: persistent id is not a 5-tuple ('storage', type, key, location, numel)");
    const auto& it = pid.items;
    const PyObject& tag = g_.objects[it[0]];
    const PyObject& type = g_.objects[it[1]];
    const PyObject& key = g_.objects[it[2]];
    const PyObject& loc = g_.objects[it[3]];
    const PyObject& numel = g_.objects[it[4]];
    if (tag.kind != PyKind::Str || tag.s != "storage") fail("BINPERSID: persistent id does not start with 'storage'");
    if (type.kind != PyKind::Global || global_of(it[1]) != TorchGlobal::StorageType)
      fail(cat("BINPERSID: storage type is a ", kind_name(type.kind), (type.kind == PyKind::Global ? " " + quoted(type.s) : ""),
               ", expected a torch.*Storage type"));
    if (key.kind != PyKind::Str || key.s.empty() || key.s.size() > 64)
      fail("BINPERSID: storage key is not a string of 1 to 64 characters");
    for (char ch : key.s)
      if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_'))
        fail(cat("BINPERSID: storage key ", quoted(key.s), " has characters other than letters, digits and '_'"));
    if (loc.kind != PyKind::Str) fail("BINPERSID: storage location is not a string");
    if (numel.kind != PyKind::Int || numel.i < 0 || numel.i > kMaxElements)
      fail(cat("BINPERSID: storage size is ", numel.kind == PyKind::Int ? std::to_string(numel.i) : kind_name(numel.kind),
               ", expected an element count from 0 to 2^58"));
    TorchStorageRef s;
    s.key = key.s;
    s.dtype = type.dtype;
    s.location = loc.s;
    s.numel = numel.i;
    const uint32_t id = make(PyKind::Storage);
    obj(id).i = static_cast<int64_t>(g_.storages.size());
    g_.storages.push_back(std::move(s));
    return id;
  }

  // Executes one opcode; returns true at STOP.
  bool step(uint8_t op) {
    switch (op) {
      case 0x80: {  // PROTO
        const uint64_t v = read_le(1, "PROTO");
        if (v > 5) fail(cat("pickle protocol ", v, " is newer than 5"));
        return false;
      }
      case 0x95:  // FRAME: a length hint only
        if (read_le(8, "FRAME") > n_ - pos_) fail("FRAME is longer than the data that remains");
        return false;
      case 0x2e:  // STOP
        g_.root = pop("STOP");
        return true;
      case 0x28:  // MARK
        if (marks_.size() >= lim_.max_marks) fail(cat("MARKs nested deeper than ", lim_.max_marks));
        marks_.push_back(stack_.size());
        return false;
      case 0x30:  // POP
        if (stack_.size() > frame_base()) stack_.pop_back();
        else pop_mark("POP");
        return false;
      case 0x31:  // POP_MARK
        pop_mark("POP_MARK");
        return false;
      case 0x32:  // DUP
        push(top("DUP"));
        return false;
      case 0x4e:  // NONE
        push(make(PyKind::None));
        return false;
      case 0x88:
      case 0x89: {  // NEWTRUE / NEWFALSE
        const uint32_t id = make(PyKind::Bool);
        obj(id).i = op == 0x88;
        push(id);
        return false;
      }
      case 0x4a: case 0x4b: case 0x4d: {  // BININT (signed 4), BININT1 (unsigned 1), BININT2 (unsigned 2)
        const size_t bytes = op == 0x4a ? 4 : op == 0x4b ? 1 : 2;
        const uint64_t raw = read_le(bytes, opcode_name(op));
        const uint32_t id = make(PyKind::Int);
        obj(id).i = op == 0x4a ? static_cast<int64_t>(static_cast<int32_t>(static_cast<uint32_t>(raw)))
                               : static_cast<int64_t>(raw);
        push(id);
        return false;
      }
      case 0x8a: case 0x8b: {  // LONG1 / LONG4: little-endian two's complement of n bytes
        const uint64_t len = read_le(op == 0x8a ? 1 : 4, opcode_name(op));
        if (len > lim_.max_string_bytes) fail(cat(opcode_name(op), " of ", len, " bytes exceeds the limit"));
        const uint8_t* b = take(static_cast<size_t>(len), opcode_name(op));
        if (len > 8) {
          const uint32_t id = make(PyKind::BigInt);
          obj(id).s = cat("<", len, "-byte integer>");
          push(id);
          return false;
        }
        uint64_t v = 0;
        for (size_t i = static_cast<size_t>(len); i-- > 0;) v = (v << 8) | b[i];
        if (len > 0 && len < 8 && (b[len - 1] & 0x80)) v |= ~uint64_t(0) << (8 * len);  // sign-extend
        const uint32_t id = make(PyKind::Int);
        obj(id).i = static_cast<int64_t>(v);
        push(id);
        return false;
      }
      case 0x47: {  // BINFLOAT: big-endian IEEE double
        const uint8_t* b = take(8, "BINFLOAT");
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | b[i];
        const uint32_t id = make(PyKind::Float);
        std::memcpy(&obj(id).f, &bits, 8);
        push(id);
        return false;
      }
      case 0x58: push(read_string(read_le(4, "BINUNICODE"))); return false;
      case 0x8c: push(read_string(read_le(1, "SHORT_BINUNICODE"))); return false;
      case 0x8d: push(read_string(read_le(8, "BINUNICODE8"))); return false;
      case 0x29: push(make(PyKind::Tuple)); return false;  // EMPTY_TUPLE
      case 0x5d: push(make(PyKind::List)); return false;   // EMPTY_LIST
      case 0x7d: push(make(PyKind::Dict)); return false;   // EMPTY_DICT
      case 0x74: push(make_container(PyKind::Tuple, pop_mark("TUPLE"), "TUPLE")); return false;
      case 0x6c: push(make_container(PyKind::List, pop_mark("LIST"), "LIST")); return false;
      case 0x64: {  // DICT
        auto items = pop_mark("DICT");
        if (items.size() % 2) fail("DICT: odd number of items between MARK and DICT");
        push(make_container(PyKind::Dict, std::move(items), "DICT"));
        return false;
      }
      case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
        const size_t k = static_cast<size_t>(op - 0x84);
        if (stack_.size() - frame_base() < k) fail(cat(opcode_name(op), " needs ", k, " values on the stack"));
        std::vector<uint32_t> items(stack_.end() - static_cast<std::ptrdiff_t>(k), stack_.end());
        stack_.resize(stack_.size() - k);
        push(make_container(PyKind::Tuple, std::move(items), opcode_name(op)));
        return false;
      }
      case 0x61: {  // APPEND
        const uint32_t v = pop("APPEND");
        const uint32_t list = top("APPEND");
        if (obj(list).kind != PyKind::List) fail(cat("APPEND to a ", kind_name(obj(list).kind), ", expected a list"));
        add_items(list, {v}, "APPEND");
        return false;
      }
      case 0x65: {  // APPENDS
        auto items = pop_mark("APPENDS");
        const uint32_t list = top("APPENDS");
        if (obj(list).kind != PyKind::List) fail(cat("APPENDS to a ", kind_name(obj(list).kind), ", expected a list"));
        add_items(list, items, "APPENDS");
        return false;
      }
      case 0x73: {  // SETITEM
        const uint32_t v = pop("SETITEM");
        const uint32_t k = pop("SETITEM");
        const uint32_t d = top("SETITEM");
        if (obj(d).kind != PyKind::Dict) fail(cat("SETITEM on a ", kind_name(obj(d).kind), ", expected a dict"));
        add_items(d, {k, v}, "SETITEM");
        return false;
      }
      case 0x75: {  // SETITEMS
        auto items = pop_mark("SETITEMS");
        if (items.size() % 2) fail("SETITEMS: odd number of items between MARK and SETITEMS");
        const uint32_t d = top("SETITEMS");
        if (obj(d).kind != PyKind::Dict) fail(cat("SETITEMS on a ", kind_name(obj(d).kind), ", expected a dict"));
        add_items(d, items, "SETITEMS");
        return false;
      }
      case 0x71: memo_put(read_le(1, "BINPUT")); return false;
      case 0x72: memo_put(read_le(4, "LONG_BINPUT")); return false;
      case 0x94: memo_put(memo_.size()); return false;  // MEMOIZE
      case 0x68: memo_get(read_le(1, "BINGET"), "BINGET"); return false;
      case 0x6a: memo_get(read_le(4, "LONG_BINGET"), "LONG_BINGET"); return false;
      case 0x63: {  // GLOBAL "module\nname\n"
        const std::string module = read_line("GLOBAL module");
        const std::string name = read_line("GLOBAL name");
        push(resolve_global(module, name, "GLOBAL"));
        return false;
      }
      case 0x93: {  // STACK_GLOBAL
        const uint32_t name = pop("STACK_GLOBAL");
        const uint32_t module = pop("STACK_GLOBAL");
        if (obj(name).kind != PyKind::Str || obj(module).kind != PyKind::Str)
          fail("STACK_GLOBAL needs two strings (module, name) on the stack");
        push(resolve_global(obj(module).s, obj(name).s, "STACK_GLOBAL"));
        return false;
      }
      case 0x52: {  // REDUCE
        const uint32_t args = pop("REDUCE");
        const uint32_t callable = pop("REDUCE");
        if (obj(args).kind != PyKind::Tuple) fail(cat("REDUCE arguments are a ", kind_name(obj(args).kind), ", expected a tuple"));
        const std::vector<uint32_t> a = obj(args).items;
        push(reduce(callable, a));
        return false;
      }
      case 0x81: {  // NEWOBJ: cls.__new__(cls, *args); only argparse.Namespace, with no arguments
        const uint32_t args = pop("NEWOBJ");
        const uint32_t cls = pop("NEWOBJ");
        const PyObject& c = obj(cls);
        if (c.kind != PyKind::Global || global_of(cls) != TorchGlobal::Namespace)
          fail(cat("NEWOBJ of ", c.kind == PyKind::Global ? quoted(c.s) : std::string("a ") + kind_name(c.kind),
                   " is not allowed (only argparse.Namespace)"));
        if (obj(args).kind != PyKind::Tuple || !obj(args).items.empty()) fail("NEWOBJ argparse.Namespace with arguments");
        push(make(PyKind::Object));
        return false;
      }
      case 0x62: {  // BUILD: target.__setstate__(state)
        const uint32_t state = pop("BUILD");
        const uint32_t target = top("BUILD");
        const PyKind sk = obj(state).kind;
        if (sk != PyKind::Dict && sk != PyKind::None) fail(cat("BUILD with a ", kind_name(sk), " state, expected a dict"));
        if (obj(target).kind == PyKind::Dict) return false;  // OrderedDict attributes (a state dict's _metadata)
        if (obj(target).kind == PyKind::Object) {
          obj(target).items.assign(1, state);
          return false;
        }
        fail(cat("BUILD on a ", kind_name(obj(target).kind), " is not allowed"));
      }
      case 0x51: {  // BINPERSID
        const uint32_t pid = pop("BINPERSID");
        push(persistent_load(pid));
        return false;
      }
      default:
        fail(cat(op_str(op), " is not supported: torch.save does not write it for state dicts"));
    }
  }

  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0, op_pos_ = 0;
  std::string label_;
  PickleLimits lim_;
  PickleGraph g_;
  std::vector<uint32_t> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, uint32_t> memo_;
};

// Scalars become metadata strings: kept short (cut at a UTF-8 character boundary) and few, since one
// long string can be referenced from any number of keys.
constexpr size_t kMaxScalarText = 256;
constexpr size_t kMaxScalars = 256;

std::string scalar_text(const PyObject& o) {
  switch (o.kind) {
    case PyKind::None: return "None";
    case PyKind::Bool: return o.i ? "True" : "False";
    case PyKind::Int: return std::to_string(o.i);
    case PyKind::Float: {
      char buf[40];
      std::snprintf(buf, sizeof buf, "%.17g", o.f);
      return buf;
    }
    case PyKind::Str: {
      if (o.s.size() <= kMaxScalarText) return o.s;
      size_t cut = kMaxScalarText;
      while (cut > 0 && (static_cast<unsigned char>(o.s[cut]) & 0xc0) == 0x80) --cut;
      return o.s.substr(0, cut) + "...";
    }
    default: return "";
  }
}

bool is_scalar(PyKind k) {
  return k == PyKind::None || k == PyKind::Bool || k == PyKind::Int || k == PyKind::Float || k == PyKind::Str;
}

void add_scalar(const std::string& name, const PyObject& v, TorchStateDict* out) {
  if (name.size() > kMaxScalarText) return;
  if (out->scalars.size() >= kMaxScalars && !out->scalars.count(name)) return;
  out->scalars[name] = scalar_text(v);
}

// Flattens containers into dotted tensor names. Depth and total work are bounded because a hostile
// graph can be cyclic or share sub-objects so that naive expansion grows exponentially.
class Flattener {
 public:
  Flattener(const PickleGraph& g, const std::string& label) : g_(g), label_(label) {}

  void walk(uint32_t id, const std::string& prefix, int depth, TorchStateDict* out) {
    name_bytes_ += prefix.size();
    if (++visits_ > kMaxVisits || name_bytes_ > kMaxNameBytesTotal)
      throw InputError(cat(label_, ": the object graph is too large to search for tensors (over ", kMaxVisits,
                           " nodes or ", kMaxNameBytesTotal, " bytes of names)"));
    if (prefix.size() > kMaxNameBytes)
      throw InputError(cat(label_, ": a tensor name would be longer than ", kMaxNameBytes, " bytes"));
    const PyObject& o = g_.objects[id];
    if (o.kind == PyKind::Tensor) {
      add(prefix, static_cast<uint32_t>(o.i), out);
      return;
    }
    if (depth >= kMaxDepth) return;  // deeper than any state dict nests (and the end of any cycle)
    const std::string dot = prefix.empty() ? "" : prefix + ".";
    if (o.kind == PyKind::Dict) {
      for (size_t i = 0; i + 1 < o.items.size(); i += 2) {
        const PyObject& k = g_.objects[o.items[i]];
        const PyObject& v = g_.objects[o.items[i + 1]];
        std::string name;
        if (k.kind == PyKind::Str) name = k.s;
        else if (k.kind == PyKind::Int) name = std::to_string(k.i);
        else continue;  // tuple or None keys never name weights
        if (depth == 0 && is_scalar(v.kind)) add_scalar(name, v, out);
        walk(o.items[i + 1], dot + name, depth + 1, out);
      }
    } else if (o.kind == PyKind::List || o.kind == PyKind::Tuple) {
      for (size_t i = 0; i < o.items.size(); ++i) walk(o.items[i], dot + std::to_string(i), depth + 1, out);
    }
  }

 private:
  void add(const std::string& name, uint32_t tensor, TorchStateDict* out) {
    auto it = index_.find(name);
    if (it != index_.end()) {
      out->tensors[it->second].second = tensor;  // a repeated key: the later value wins, as in Python
      return;
    }
    index_.emplace(name, out->tensors.size());
    out->tensors.emplace_back(name, tensor);
  }
  // Work is bounded by node visits and by the bytes of names built, since shared sub-objects and long keys
  // can make a small pickle expand enormously.
  static constexpr int kMaxDepth = 32;
  static constexpr size_t kMaxVisits = size_t(1) << 20;
  static constexpr size_t kMaxNameBytes = 4096;
  static constexpr size_t kMaxNameBytesTotal = size_t(16) << 20;
  const PickleGraph& g_;
  const std::string& label_;
  size_t visits_ = 0, name_bytes_ = 0;
  std::map<std::string, size_t> index_;
};

// The value stored under string key `key` in dict `d` (the last one, as Python would keep), or -1.
int64_t dict_lookup(const PickleGraph& g, const PyObject& d, const std::string& key) {
  int64_t found = -1;
  for (size_t i = 0; i + 1 < d.items.size(); i += 2) {
    const PyObject& k = g.objects[d.items[i]];
    if (k.kind == PyKind::Str && k.s == key) found = d.items[i + 1];
  }
  return found;
}

std::string describe_entries(const PickleGraph& g, const PyObject& d) {
  std::string out;
  size_t shown = 0;
  for (size_t i = 0; i + 1 < d.items.size(); i += 2) {
    const PyObject& k = g.objects[d.items[i]];
    if (k.kind != PyKind::Str && k.kind != PyKind::Int) continue;
    if (shown == 12) {
      out += ", ...";
      break;
    }
    out += cat(shown ? ", " : "", k.kind == PyKind::Str ? quoted(k.s) : std::to_string(k.i), " (",
               kind_name(g.objects[d.items[i + 1]].kind), ")");
    ++shown;
  }
  return out.empty() ? "nothing" : out;
}

// Plain values next to a nested state dict ({"ema": ..., "epoch": 7}) say where it comes from: keep them.
void add_top_level_scalars(const PickleGraph& g, const PyObject& root, TorchStateDict* out) {
  for (size_t i = 0; i + 1 < root.items.size(); i += 2) {
    const PyObject& k = g.objects[root.items[i]];
    const PyObject& v = g.objects[root.items[i + 1]];
    if (k.kind == PyKind::Str && is_scalar(v.kind)) add_scalar(k.s, v, out);
  }
}

}  // namespace

void check_tensor_geometry(TorchTensorRef& t, const TorchStorageRef& storage, size_t max_dims) {
  if (t.shape.size() != t.stride.size())
    throw InputError(cat("size has ", t.shape.size(), " dimensions but stride has ", t.stride.size()));
  if (t.shape.size() > max_dims) throw InputError(cat(t.shape.size(), " dimensions, more than the ", max_dims, " allowed"));
  if (t.offset < 0) throw InputError(cat("negative storage offset ", t.offset));
  int64_t numel = 1;
  for (size_t d = 0; d < t.shape.size(); ++d) {
    if (t.shape[d] < 0) throw InputError(cat("negative size ", t.shape[d], " in dimension ", d));
    if (t.stride[d] < 0) throw InputError(cat("negative stride ", t.stride[d], " in dimension ", d));
    if (!checked_mul(numel, t.shape[d], &numel) || numel > kMaxElements)
      throw InputError("element count overflows (size too large)");
  }
  t.numel = numel;
  t.extent = 0;
  if (numel == 0) return;  // an empty tensor reads nothing
  int64_t last = t.offset;  // index of the furthest element
  for (size_t d = 0; d < t.shape.size(); ++d) {
    int64_t span = 0;
    if (!checked_mul(t.shape[d] - 1, t.stride[d], &span) || !checked_add(last, span, &last) || last >= kMaxElements)
      throw InputError(cat("stride ", t.stride[d], " in dimension ", d, " reaches past any storage (overflow)"));
  }
  t.extent = last + 1;
  if (t.extent > storage.numel)
    throw InputError(cat("tensor with storage offset ", t.offset, " reaches element ", last, " but storage '",
                         storage.key, "' holds ", storage.numel, " elements"));
}

Tensor materialize_torch_tensor(const TorchTensorRef& t, DType dtype, const uint8_t* storage, size_t storage_bytes,
                                bool big_endian) {
  const size_t es = dtype_size(dtype);
  if (t.numel == 0) return Tensor::zeros(t.shape, dtype);
  if (t.extent <= 0 || static_cast<uint64_t>(t.extent) > storage_bytes / es)
    throw InputError(cat("tensor reaches element ", t.extent - 1, " but its storage holds ", storage_bytes / es));
  const uint8_t* base = storage + static_cast<size_t>(t.offset) * es;
  Tensor out = Tensor::zeros(t.shape, dtype);
  auto* dst = static_cast<uint8_t*>(out.data());
  // Row-major over the view: whole rows of the last dimension at once when they are dense.
  const size_t nd = t.shape.size();
  const int64_t inner = nd ? t.shape[nd - 1] : 1;
  const int64_t inner_stride = nd ? t.stride[nd - 1] : 1;
  std::vector<int64_t> idx(nd, 0);
  const int64_t rows = t.numel / inner;
  for (int64_t r = 0; r < rows; ++r) {
    int64_t src = 0;
    for (size_t d = 0; d + 1 < nd; ++d) src += idx[d] * t.stride[d];
    const uint8_t* row = base + static_cast<size_t>(src) * es;
    if (inner_stride == 1) {
      std::memcpy(dst, row, static_cast<size_t>(inner) * es);
    } else {
      for (int64_t i = 0; i < inner; ++i)
        std::memcpy(dst + static_cast<size_t>(i) * es, row + static_cast<size_t>(i * inner_stride) * es, es);
    }
    dst += static_cast<size_t>(inner) * es;
    for (size_t d = nd > 1 ? nd - 1 : 0; d-- > 0;) {  // odometer over all but the last dimension
      if (++idx[d] < t.shape[d]) break;
      idx[d] = 0;
    }
  }
  if (big_endian && es > 1) {
    auto* p = static_cast<uint8_t*>(out.data());
    for (int64_t i = 0; i < t.numel; ++i, p += es) std::reverse(p, p + es);
  }
  return out;
}

PickleGraph unpickle_torch(const uint8_t* data, size_t size, const std::string& label, const PickleLimits& limits) {
  return Unpickler(data, size, label, limits).run();
}

TorchStateDict select_state_dict(const PickleGraph& graph, const std::string& key, const std::string& label) {
  if (graph.root >= graph.objects.size()) throw InputError(cat(label, ": the pickle holds no object"));
  const PyObject& root = graph.objects[graph.root];
  TorchStateDict out;
  Flattener flat(graph, label);
  if (!key.empty()) {
    if (root.kind != PyKind::Dict)
      throw InputError(cat(label, ": --key ", quoted(key), " given but the file holds a ", kind_name(root.kind), ", not a dict"));
    const int64_t v = dict_lookup(graph, root, key);
    if (v < 0)
      throw InputError(cat(label, ": no entry ", quoted(key), " at the top level (it holds ", describe_entries(graph, root), ")"));
    out.key = key;
    add_top_level_scalars(graph, root, &out);
    flat.walk(static_cast<uint32_t>(v), "", 0, &out);
    if (out.tensors.empty())
      throw InputError(cat(label, ": entry ", quoted(key), " (a ", kind_name(graph.objects[v].kind), ") holds no tensors"));
    return out;
  }
  if (root.kind == PyKind::Dict) {
    for (const char* candidate : {"ema", "model", "state_dict"}) {
      const int64_t v = dict_lookup(graph, root, candidate);
      if (v < 0 || graph.objects[v].kind != PyKind::Dict) continue;
      TorchStateDict part;
      part.key = candidate;
      add_top_level_scalars(graph, root, &part);
      Flattener f(graph, label);
      f.walk(static_cast<uint32_t>(v), "", 0, &part);
      if (!part.tensors.empty()) return part;
    }
  }
  flat.walk(graph.root, "", 0, &out);
  if (out.tensors.empty())
    throw InputError(cat(label, ": no tensors found (the file holds a ", kind_name(root.kind),
                         root.kind == PyKind::Dict ? " of " + describe_entries(graph, root) : std::string(), ")"));
  return out;
}

}  // namespace blr
