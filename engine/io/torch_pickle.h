// A restricted unpickler for the data.pkl inside PyTorch checkpoints (torch.save since 1.6, pickle
// protocol 2 by default, 4 when asked). Python's pickle is a small stack machine whose GLOBAL + REDUCE
// opcodes call any importable function; this reader is not Python and can only build what a state dict
// is made of: None, bools, ints, floats, strings, tuples, lists, dicts, storages (persistent ids) and
// tensors. The only callables it knows are an allow-list:
//   torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter, collections.OrderedDict,
//   torch.{Float,Half,BFloat16,Double,Long,Int,Short,Char,Byte,Bool}Storage (storage types in persistent
//   ids), and argparse.Namespace (inert: training checkpoints such as DiT's keep their command-line
//   arguments next to the weights).
// Any other global, any unknown or unsupported opcode, or an allowed callable given arguments of the wrong
// shape is refused with an InputError naming the opcode or global and its byte offset. Hostile inputs meet
// limits (memo size, stack depth, container sizes, string lengths, object count) and every length is
// checked against the bytes that remain before anything is allocated. Tensor geometry (shape, strides,
// storage offset) is checked against the storage's element count, with overflow-safe arithmetic.
//
// The result is a graph of plain objects in one array (so cycles a hostile pickle might build cost
// nothing to free), plus the storages and tensors it references. select_state_dict() then finds the
// tensors a model loader wants. Neither step touches the zip file: torch_checkpoint.cpp does that.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/core/tensor.h"

namespace blr {

struct PickleLimits {
  size_t max_objects = size_t(1) << 22;          // values created in total
  size_t max_stack = size_t(1) << 20;            // values on the stack at once
  size_t max_marks = size_t(1) << 12;            // MARK nesting
  size_t max_memo = size_t(1) << 22;             // memo entries
  size_t max_container_items = size_t(1) << 22;  // items in one tuple, list or dict
  size_t max_string_bytes = size_t(1) << 24;     // one string
  size_t max_dims = 64;                          // tensor rank
};

enum class PyKind : uint8_t { None, Bool, Int, BigInt, Float, Str, Tuple, List, Dict, Global, Storage, Tensor, Object };

// The globals this reader accepts (anything else is refused where it appears).
enum class TorchGlobal : uint8_t { RebuildTensorV2, RebuildParameter, OrderedDict, StorageType, Namespace };

struct PyObject {
  PyKind kind = PyKind::None;
  int64_t i = 0;   // Bool (0/1), Int; Global: TorchGlobal; Storage / Tensor: index into storages / tensors
  double f = 0;    // Float
  DType dtype = DType::F32;  // Global StorageType: the storage's element type
  std::string s;   // Str; Global: "module.name"; BigInt: "<n-byte integer>"
  std::vector<uint32_t> items;  // Tuple, List: elements; Dict: key, value, key, value...; Object: [state]
};

struct TorchStorageRef {
  std::string key;       // zip entry <folder>/data/<key>
  DType dtype = DType::F32;
  std::string location;  // "cpu", "cuda:0", ... (ignored: everything loads to the host)
  int64_t numel = 0;     // elements of `dtype`
};

struct TorchTensorRef {
  uint32_t storage = 0;  // index into PickleGraph::storages
  int64_t offset = 0;    // in elements
  std::vector<int64_t> shape, stride;  // strides in elements, all >= 0
  int64_t numel = 0;
  int64_t extent = 0;    // elements of the storage the tensor reaches: 0 if empty, else max index + 1
};

struct PickleGraph {
  std::vector<PyObject> objects;
  std::vector<TorchStorageRef> storages;
  std::vector<TorchTensorRef> tensors;
  uint32_t root = 0;
};

// Runs the restricted unpickler over `size` bytes. `label` starts every error ("model.pt:
// archive/data.pkl"). Throws InputError "<label>: offset N: <problem>" on anything refused or malformed.
PickleGraph unpickle_torch(const uint8_t* data, size_t size, const std::string& label,
                           const PickleLimits& limits = {});

// Checks a tensor's geometry against its storage and fills numel/extent; throws InputError naming the
// problem (negative or overflowing sizes/strides/offset, more dims than allowed, past the storage's end).
// Exposed for the unpickler and its tests.
void check_tensor_geometry(TorchTensorRef& t, const TorchStorageRef& storage, size_t max_dims);

// Copies tensor `t` (geometry already checked) out of its storage's bytes into a new contiguous host
// tensor, following strides and the storage offset, byte-swapping each element when `big_endian`.
// Throws InputError when `storage_bytes` is shorter than the tensor reaches.
Tensor materialize_torch_tensor(const TorchTensorRef& t, DType dtype, const uint8_t* storage, size_t storage_bytes,
                                bool big_endian);

// The tensors of one state dict inside the graph, flattened to dotted names ("blocks.0.attn.qkv.weight"),
// in the order the file lists them.
struct TorchStateDict {
  std::string key;  // which entry was chosen ("ema", "model", "state_dict", a --key value, or "" = top level)
  std::vector<std::pair<std::string, uint32_t>> tensors;  // name -> index into PickleGraph::tensors
  // Plain values (None, bool, int, float, str) at the top level and in the chosen dict ("epoch" -> "7").
  std::map<std::string, std::string> scalars;
};

// `key` empty: the first of "ema", "model", "state_dict" at the top level that holds tensors, else the
// top level itself. `key` given: that top-level entry (an InputError lists the entries there otherwise).
// Throws InputError when the chosen part holds no tensors. `label` names the file in errors.
TorchStateDict select_state_dict(const PickleGraph& graph, const std::string& key, const std::string& label);

}  // namespace blr
