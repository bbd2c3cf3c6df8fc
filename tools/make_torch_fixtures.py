#!/usr/bin/env python3
"""Writes the PyTorch checkpoint fixtures for tests/unit/torch_checkpoint_test.cpp.

usage: make_torch_fixtures.py OUT_DIR      (e.g. tests/data/torch/torch-2.11)

Each torch version gets its own folder, so files written by different releases are all tested:
  good files   torch.save of small state dicts (every dtype; views with storage offsets and strides;
               shared storages; nn.Module state dicts with their _metadata; nested {"ema", "opt", ...};
               a DiT-style training checkpoint with an argparse.Namespace; parameters; protocol 4;
               a deflated, a big-endian, an unaligned and a renamed-folder rewrite of the zip),
               each with <name>.expected.safetensors holding the same tensors made contiguous;
  bad files    malicious pickles (os.system, posix.system, builtins.eval via GLOBAL / STACK_GLOBAL +
               REDUCE), unknown and unsupported opcodes, memo index out of range, missing and short
               storages, bad tensor geometry, a truncated zip, bomb-like declared sizes, a legacy
               (pre-1.6) file and a bare pickle;
  manifest.json  what each file must load to (expected file, chosen state dict, scalars) or which
               words its error must contain.
Runs with torch 1.13 (Debian, CPU) and torch 2.x. Only writes files; never loads a pickle it did not make.
"""
import argparse
import collections
import copy
import io
import json
import os
import pickle
import struct
import sys
import zipfile

import torch


# ---------------------------------------------------------------------------------------------------
# safetensors writer for the expected values: the safetensors package when present, else by hand
# (8-byte little-endian header length, JSON header, raw little-endian data).
ST_DTYPE = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}


def tensor_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def write_safetensors(path, tensors):
    try:
        from safetensors.torch import save_file
        save_file({k: v.detach().contiguous().clone() for k, v in tensors.items()}, path)
        return
    except ImportError:
        pass
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = tensor_bytes(t)
        header[name] = {"dtype": ST_DTYPE[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


# ---------------------------------------------------------------------------------------------------
# What our reader should find: the same rules as select_state_dict() in engine/io/torch_pickle.cpp.
def flatten(obj, prefix=""):
    out = collections.OrderedDict()
    dot = prefix + "." if prefix else ""
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(k, bool) or not isinstance(k, (str, int)):
                continue
            out.update(flatten(v, dot + str(k)))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(flatten(v, dot + str(i)))
    return out


def choose(obj, key):
    if key:
        return key, obj[key]
    if isinstance(obj, dict):
        for k in ("ema", "model", "state_dict"):
            if isinstance(obj.get(k), dict) and flatten(obj[k]):
                return k, obj[k]
    return "", obj


def scalars(obj):
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(k, bool) or not isinstance(k, (str, int)):
                continue
            if v is None:
                out[str(k)] = "None"
            elif isinstance(v, bool):
                out[str(k)] = "True" if v else "False"
            elif isinstance(v, (int, str)):
                out[str(k)] = str(v)
    return out


# ---------------------------------------------------------------------------------------------------
class Fixtures:
    def __init__(self, out_dir):
        self.out = out_dir
        self.manifest = []
        os.makedirs(out_dir, exist_ok=True)

    def path(self, name):
        return os.path.join(self.out, name)

    def good(self, name, obj, key="", save=True, **save_kwargs):
        if save:
            torch.save(obj, self.path(name), **save_kwargs)
        chosen, part = choose(obj, key)
        tensors = flatten(part)
        expected = name.replace(".pt", "") + (("." + key) if key else "") + ".expected.safetensors"
        write_safetensors(self.path(expected), tensors)
        self.manifest.append({"file": name, "expect": "ok", "key": key, "chosen": chosen or "(top level)",
                              "expected": expected, "names": list(tensors.keys()),
                              "scalars": dict(scalars(obj), **scalars(part)) if chosen else scalars(part)})

    def bad(self, name, contains, key="", data=None):
        if data is not None:
            with open(self.path(name), "wb") as f:
                f.write(data)
        self.manifest.append({"file": name, "expect": "error", "key": key, "error_contains": contains})

    def write_manifest(self):
        info = {"torch": torch.__version__, "python": sys.version.split()[0], "fixtures": self.manifest}
        with open(self.path("manifest.json"), "w") as f:
            json.dump(info, f, indent=1)
            f.write("\n")


def read_zip(path):
    with zipfile.ZipFile(path) as z:
        return [(i.filename, z.read(i.filename)) for i in z.infolist()]


def write_zip(path, entries, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for name, data in entries:  # a fixed date keeps the files identical from run to run
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, compress_type=compression)


def rename_folder(entries, folder):
    return [(folder + "/" + n.split("/", 1)[1], d) for n, d in entries]


def torch_like_zip(path, pickle_bytes, storages, folder="archive"):
    """A zip laid out like torch.save's, around a pickle we crafted."""
    entries = [(folder + "/data.pkl", pickle_bytes)]
    entries += [(folder + "/data/" + k, v) for k, v in storages.items()]
    entries += [(folder + "/version", b"3\n"), (folder + "/byteorder", b"little")]
    write_zip(path, entries)


# Crafted pickles: objects whose reduction is exactly the call torch.save would emit, with geometry and
# storages of our choosing (to test what torch itself would never write).
class FakeStorage:
    def __init__(self, key, numel, storage_type=torch.FloatStorage):
        self.key, self.numel, self.storage_type = key, numel, storage_type


class FakeTensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


class FakeCall:
    """Pickles as REDUCE(func, args) for any func: how a malicious file calls what it likes."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


class TorchLikePickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, FakeStorage):
            return ("storage", obj.storage_type, obj.key, "cpu", obj.numel)
        return None


def crafted_pickle(obj, protocol=2):
    buf = io.BytesIO()
    TorchLikePickler(buf, protocol=protocol).dump(obj)
    return buf.getvalue()


def patch_declared_size(path, entry_name, new_size):
    """Rewrites an entry's uncompressed size in both its local header and the central directory."""
    data = bytearray(open(path, "rb").read())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(entry_name)
    local = info.header_offset
    assert data[local:local + 4] == b"PK\x03\x04"
    struct.pack_into("<I", data, local + 22, new_size)
    name = entry_name.encode()
    pos = data.find(b"PK\x01\x02")
    while pos >= 0:
        name_len = struct.unpack_from("<H", data, pos + 28)[0]
        if bytes(data[pos + 46:pos + 46 + name_len]) == name:
            struct.pack_into("<I", data, pos + 24, new_size)
        pos = data.find(b"PK\x01\x02", pos + 4)
    open(path, "wb").write(bytes(data))


# ---------------------------------------------------------------------------------------------------
def make_good(fx):
    torch.manual_seed(0)
    inf, nan = float("inf"), float("nan")
    floats = [0.0, -0.0, 1.5, -2.25, inf, -inf, nan, 65504.0, 1e-7, 3.0e38, -1e-30, 7.0]
    dtypes = collections.OrderedDict([
        ("f64", torch.tensor(floats + [1e300, 5e-324], dtype=torch.float64).reshape(2, 7)),
        ("f32", torch.tensor(floats, dtype=torch.float32).reshape(3, 4)),
        ("f16", torch.tensor(floats[:8] + [6e-8, -0.5, 1024.0, 0.1], dtype=torch.float16).reshape(4, 3)),
        ("bf16", torch.tensor(floats[:7] + [1e38, 1e-38, -3.0, 0.1, 255.0], dtype=torch.bfloat16).reshape(2, 6)),
        ("i64", torch.tensor([0, -1, 2**62, -2**63, 2**63 - 1, 12345678901], dtype=torch.int64)),
        ("i32", torch.tensor([[0, -1, 2**31 - 1], [-2**31, 7, 65536]], dtype=torch.int32)),
        ("i16", torch.tensor([0, -1, 32767, -32768, 300], dtype=torch.int16)),
        ("i8", torch.tensor([0, -1, 127, -128, 5], dtype=torch.int8)),
        ("u8", torch.tensor([0, 1, 255, 128, 42], dtype=torch.uint8)),
        ("bool", torch.tensor([[True, False, True], [False, False, True]])),
        ("scalar", torch.tensor(3.25)),
        ("empty", torch.zeros(0, 5)),
    ])
    fx.good("dtypes.pt", dtypes)

    base = torch.arange(60, dtype=torch.float32).reshape(6, 10)
    views = collections.OrderedDict([
        ("base", base),
        ("rows", base[2:4]),                 # contiguous, storage offset 20
        ("column", base[:, 3]),              # stride 10, offset 3
        ("transposed", base.t()),            # strides (1, 10)
        ("strided", base[1::2, 2::3]),       # strides (20, 3), offset 12
        ("alias", base),                     # the same tensor under a second name
        ("expanded", torch.arange(4.0).expand(3, 4)),  # stride 0
        ("int_view", torch.arange(24, dtype=torch.int64).reshape(2, 3, 4).permute(2, 0, 1)[1:, :, 1:]),
        ("half_slice", torch.linspace(-1, 1, 16).to(torch.float16)[5:13:2]),
    ])
    fx.good("views.pt", views)
    fx.good("views_protocol4.pt", views, pickle_protocol=4)

    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3), torch.nn.BatchNorm1d(3),
                              torch.nn.Linear(3, 2, bias=False))
    with torch.no_grad():
        net[2].running_mean.copy_(torch.tensor([0.5, -0.25, 2.0]))
        net[2].num_batches_tracked.fill_(17)
    module_sd = net.state_dict()
    fx.good("module.pt", module_sd)

    # Nested: the EMA weights are picked automatically; --key opt reaches the optimizer state.
    ema = {k: v.clone() * 0.5 if v.is_floating_point() else v.clone() for k, v in module_sd.items()}
    ema = collections.OrderedDict(ema)
    trained = copy.deepcopy(net)  # the optimizer steps a copy, so module_sd keeps the values saved above
    opt = torch.optim.AdamW(trained.parameters(), lr=1e-3)
    trained(torch.randn(5, 4)).sum().backward()
    opt.step()
    nested = {"ema": ema, "opt": opt.state_dict(), "epoch": 7, "note": "nested fixture"}
    fx.good("nested.pt", nested)
    fx.good("nested.pt", nested, key="opt", save=False)

    # A DiT-style training checkpoint: model, ema, optimizer and the argparse.Namespace of its arguments.
    args = argparse.Namespace(model="DiT-XL/2", image_size=256, lr=1e-4, ckpt=None)
    training = {"model": module_sd, "ema": ema, "opt": opt.state_dict(), "args": args}
    fx.good("training.pt", training)
    fx.good("training.pt", training, key="model", save=False)

    params = collections.OrderedDict([
        ("weight", torch.nn.Parameter(torch.randn(3, 2))),
        ("frozen", torch.nn.Parameter(torch.randn(2), requires_grad=False)),
        ("lr", 0.5), ("step", 3), ("tag", "demo"), ("flag", True), ("nothing", None),
    ])
    fx.good("parameters.pt", params)

    buf = io.BytesIO()  # saved to a buffer: the zip's folder is "archive"
    torch.save(module_sd, buf)
    with open(fx.path("from_buffer.pt"), "wb") as f:
        f.write(buf.getvalue())
    fx.good("from_buffer.pt", module_sd, save=False)

    # Rewrites of torch's zip: what other tools may produce from the same checkpoint.
    entries = read_zip(fx.path("module.pt"))
    write_zip(fx.path("deflated.pt"), entries, zipfile.ZIP_DEFLATED)
    fx.good("deflated.pt", module_sd, save=False)
    write_zip(fx.path("renamed_folder.pt"), rename_folder(entries, "some_other_name"))
    fx.good("renamed_folder.pt", module_sd, save=False)
    # Unaligned: a one-byte name field shift leaves storages at odd offsets.
    dentries = read_zip(fx.path("dtypes.pt"))
    write_zip(fx.path("unaligned.pt"), rename_folder(dentries, "x"))
    fx.good("unaligned.pt", dtypes, save=False)

    # Big-endian: the storages byte-swapped and archive/byteorder = "big", as a big-endian machine writes.
    folder = dentries[0][0].split("/", 1)[0]
    sizes_by_key = storage_itemsizes(dict(dentries)[folder + "/data.pkl"])
    swapped = []
    for name, data in dentries:
        if "/data/" in name:
            es = sizes_by_key[name.rsplit("/", 1)[1]]
            data = b"".join(data[i:i + es][::-1] for i in range(0, len(data), es))
        if name.endswith("/byteorder"):
            continue
        swapped.append((name, data))
    swapped.append((folder + "/byteorder", b"big"))
    write_zip(fx.path("big_endian.pt"), swapped)
    fx.good("big_endian.pt", dtypes, save=False)


def storage_itemsizes(pkl):
    """Element size of each storage key, read from the pickle's persistent ids without running it."""
    sizes = {"DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2, "LongStorage": 8,
             "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1, "BoolStorage": 1}
    out = {}

    class Scan(pickle.Unpickler):
        def find_class(self, module, name):
            if module == "torch" and name in sizes:
                return ("type", sizes[name])
            if module == "torch._utils" and name == "_rebuild_tensor_v2":
                return lambda *a: None
            if module == "collections" and name == "OrderedDict":
                return collections.OrderedDict
            raise pickle.UnpicklingError(module + "." + name)

        def persistent_load(self, pid):
            out[pid[2]] = pid[1][1]
            return None

    Scan(io.BytesIO(pkl)).load()
    return out


def make_bad(fx):
    # Malicious pickles inside a well-formed torch-like zip, so they reach the unpickler.
    os_system = b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00echoq\x01\x85q\x02Rq\x03."
    torch_like_zip(fx.path("evil_os_system.pt"), os_system, {})
    fx.bad("evil_os_system.pt", ["GLOBAL", "'os.system'", "not allowed", "offset 2"])

    torch_like_zip(fx.path("evil_posix_system.pt"), crafted_pickle(FakeCall(os.system, ("echo pwned",))), {})
    fx.bad("evil_posix_system.pt", ["'posix.system'", "not allowed", "offset 2"])

    torch_like_zip(fx.path("evil_builtins_eval.pt"), crafted_pickle(FakeCall(eval, ("1+1",)), protocol=4), {})
    fx.bad("evil_builtins_eval.pt", ["STACK_GLOBAL", "'builtins.eval'", "not allowed", "offset"])

    good_tensor = FakeTensor(FakeStorage("0", 4), 0, (4,), (1,))
    four_floats = struct.pack("<4f", 1, 2, 3, 4)
    hidden = {"weight": good_tensor, "payload": FakeCall(os.system, ("echo pwned",))}
    torch_like_zip(fx.path("evil_inside_state_dict.pt"), crafted_pickle(hidden), {"0": four_floats})
    fx.bad("evil_inside_state_dict.pt", ["'posix.system'", "not allowed"])

    storage_call = {"w": FakeCall(torch.FloatStorage, (4,))}
    torch_like_zip(fx.path("evil_reduce_storage_type.pt"), crafted_pickle(storage_call), {})
    fx.bad("evil_reduce_storage_type.pt", ["REDUCE on 'torch.FloatStorage'", "not allowed"])

    torch_like_zip(fx.path("bad_opcode.pt"), b"\x80\x02\xff.", {})
    fx.bad("bad_opcode.pt", ["unknown opcode 0xff", "offset 2"])
    torch_like_zip(fx.path("unsupported_opcode.pt"), b"\x80\x02(i__main__\nX\n.", {})
    fx.bad("unsupported_opcode.pt", ["INST (0x69)", "not supported", "offset 3"])
    torch_like_zip(fx.path("memo_out_of_range.pt"), b"\x80\x02}q\x00h\x05.", {})
    fx.bad("memo_out_of_range.pt", ["BINGET", "memo index 5 out of range", "offset 5"])
    torch_like_zip(fx.path("no_stop.pt"), b"\x80\x02}q\x00", {})
    fx.bad("no_stop.pt", ["without a STOP"])

    # Storages: missing from the zip, shorter than the tensor, smaller in the pickle than the tensor.
    module_entries = read_zip(fx.path("module.pt"))
    folder = module_entries[0][0].split("/", 1)[0]
    write_zip(fx.path("missing_storage.pt"), [(n, d) for n, d in module_entries if n != folder + "/data/0"])
    fx.bad("missing_storage.pt", ["storage '0'", "missing from the archive"])
    write_zip(fx.path("short_storage.pt"),
              [(n, d[:len(d) // 2] if n == folder + "/data/0" else d) for n, d in module_entries])
    fx.bad("short_storage.pt", ["storage '0'", "shorter than the tensor"])
    small = {"w": FakeTensor(FakeStorage("0", 2), 1, (4,), (1,))}
    torch_like_zip(fx.path("tensor_past_storage.pt"), crafted_pickle(small), {"0": four_floats})
    fx.bad("tensor_past_storage.pt", ["_rebuild_tensor_v2", "reaches element 4", "holds 2 elements"])
    neg = {"w": FakeTensor(FakeStorage("0", 4), 3, (4,), (-1,))}
    torch_like_zip(fx.path("negative_stride.pt"), crafted_pickle(neg), {"0": four_floats})
    fx.bad("negative_stride.pt", ["negative stride -1"])
    over = {"w": FakeTensor(FakeStorage("0", 4), 0, (3, 2**20), (2**60, 1))}
    torch_like_zip(fx.path("overflow_stride.pt"), crafted_pickle(over), {"0": four_floats})
    fx.bad("overflow_stride.pt", ["overflow"])
    huge = {"w": FakeTensor(FakeStorage("0", 2**62), 0, (4,), (1,))}
    torch_like_zip(fx.path("huge_storage_numel.pt"), crafted_pickle(huge), {"0": four_floats})
    fx.bad("huge_storage_numel.pt", ["BINPERSID", "storage size"])
    complex_sd = {"c": torch.zeros(2, dtype=torch.complex64)}
    torch.save(complex_sd, fx.path("complex_dtype.pt"))
    fx.bad("complex_dtype.pt", ["'torch.ComplexFloatStorage'", "no dtype"])

    # The zip itself: truncated, and declared sizes no data could back (zip bombs).
    data = open(fx.path("module.pt"), "rb").read()
    fx.bad("truncated.pt", ["not a readable zip archive"], data=data[:len(data) // 2])
    write_zip(fx.path("bomb_pickle.pt"), module_entries, zipfile.ZIP_DEFLATED)
    patch_declared_size(fx.path("bomb_pickle.pt"), folder + "/data.pkl", 0xFFFFFF00)
    fx.bad("bomb_pickle.pt", ["data.pkl", "declares 4294967040 bytes"])
    write_zip(fx.path("bomb_storage.pt"), module_entries, zipfile.ZIP_DEFLATED)
    patch_declared_size(fx.path("bomb_storage.pt"), folder + "/data/0", 0xFFFFFF00)
    fx.bad("bomb_storage.pt", ["data/0", "more than deflate can produce"])

    # Not a loadable state dict at all.
    try:
        torch.save({"w": torch.ones(2)}, fx.path("legacy.pt"), _use_new_zipfile_serialization=False)
    except (TypeError, RuntimeError):  # a torch without the legacy writer: its header is what matters
        magic = 0x1950a86a20f9469cfc6c
        fx.bad("legacy.pt", [], data=pickle.dumps(magic, protocol=2) + pickle.dumps(1001, protocol=2))
        fx.manifest.pop()
    fx.bad("legacy.pt", ["legacy PyTorch checkpoint", "torch.save(torch.load("])
    fx.bad("bare_pickle.pt", ["bare Python pickle"], data=pickle.dumps({"a": 1}, protocol=2))
    torch.save(torch.nn.Sequential(torch.nn.Linear(2, 2)), fx.path("whole_model.pt"))  # torch.save(model)
    fx.bad("whole_model.pt", ["'torch.nn.modules.container.Sequential' is not allowed", "model.state_dict()"])
    torch.save([1, 2, "three"], fx.path("no_tensors.pt"))
    fx.bad("no_tensors.pt", ["no tensors found"])
    fx.bad("nested.pt", ["no entry 'missing'", "'ema' (dict)"], key="missing")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", help="folder to write, e.g. tests/data/torch/torch-%s" % torch.__version__[:4])
    a = ap.parse_args()
    fx = Fixtures(a.out_dir)
    make_good(fx)
    make_bad(fx)
    fx.write_manifest()
    total = sum(os.path.getsize(fx.path(f)) for f in os.listdir(a.out_dir))
    print("wrote %d fixtures (%d files, %.1f KiB) to %s with torch %s" %
          (len(fx.manifest), len(os.listdir(a.out_dir)), total / 1024, a.out_dir, torch.__version__))


if __name__ == "__main__":
    main()
