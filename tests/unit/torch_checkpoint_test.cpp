// PyTorch checkpoint reader: every fixture set under tests/data/torch/<torch-version>/ (written by
// tools/make_torch_fixtures.py) loads to exactly the values in its .expected.safetensors, and every
// malicious or broken file is refused with an error naming the problem; plus direct tests of the
// restricted unpickler, its limits and the state-dict selection on hand-written pickles.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "engine/core/error.h"
#include "engine/io/checkpoint.h"
#include "engine/io/safetensors.h"
#include "engine/io/torch_checkpoint.h"
#include "engine/io/torch_pickle.h"
#if BLR_HAVE_LIBZIP
#include "engine/io/torch_zip.h"
#endif
#include "tests/common/test_util.h"

namespace blr {
namespace {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------------------
// Fixture sets, one per torch version that wrote them.

#if BLR_HAVE_LIBZIP

struct FixtureCase {
  std::string set;  // folder, e.g. "torch-1.13"
  json entry;       // the manifest entry
  std::string dir() const { return test::data_path("torch/" + set); }
  std::string file() const { return dir() + "/" + entry["file"].get<std::string>(); }
  std::string key() const { return entry.value("key", ""); }
};

std::vector<std::string> fixture_sets() {
  std::vector<std::string> sets;
  const std::string root = test::data_path("torch");
  if (!std::filesystem::is_directory(root)) return sets;
  for (const auto& d : std::filesystem::directory_iterator(root))
    if (std::filesystem::exists(d.path() / "manifest.json")) sets.push_back(d.path().filename().string());
  std::sort(sets.begin(), sets.end());
  return sets;
}

std::vector<FixtureCase> cases(const std::string& expect) {
  std::vector<FixtureCase> out;
  for (const auto& set : fixture_sets()) {
    const json m = json::parse(test::read_file(test::data_path("torch/" + set + "/manifest.json")));
    for (const auto& e : m["fixtures"])
      if (e["expect"] == expect) out.push_back({set, e});
  }
  return out;
}

std::string case_name(const testing::TestParamInfo<FixtureCase>& info) {
  std::string n = info.param.set + "_" + info.param.entry["file"].get<std::string>() + "_" + info.param.key();
  for (char& c : n)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
}

TEST(TorchFixtures, AtLeastOneSetIsPresent) {
  ASSERT_TRUE(torch_checkpoints_supported()) << "this build has no libzip; the PyTorch reader is the stub";
  EXPECT_FALSE(fixture_sets().empty()) << "no tests/data/torch/*/manifest.json: run tools/make_torch_fixtures.py";
  EXPECT_GT(cases("ok").size(), 10u);
  EXPECT_GT(cases("error").size(), 20u);
}

class TorchGoodFile : public testing::TestWithParam<FixtureCase> {};

// Every tensor: same name order, dtype, shape and bytes as torch's own tensor made contiguous.
TEST_P(TorchGoodFile, LoadsExactValues) {
  const FixtureCase& c = GetParam();
  CheckpointOptions opt;
  opt.key = c.key();
  const Checkpoint ckpt = Checkpoint::open(c.file(), opt);
  EXPECT_EQ(ckpt.format(), "pytorch-zip");
  EXPECT_EQ(ckpt.metadata_or("pytorch.state_dict", "?"), c.entry["chosen"].get<std::string>());
  for (const auto& [k, v] : c.entry["scalars"].items())
    EXPECT_EQ(ckpt.metadata_or(k, "<absent>"), v.get<std::string>()) << "scalar '" << k << "'";

  const auto expected = SafetensorsFile::open(c.dir() + "/" + c.entry["expected"].get<std::string>());
  const std::vector<std::string> want_names = c.entry["names"].get<std::vector<std::string>>();
  ASSERT_EQ(ckpt.names(), want_names);
  for (const auto& name : want_names) {
    SCOPED_TRACE("tensor '" + name + "'");
    const Tensor want = expected->get(name);
    const TensorInfo ti = ckpt.info(name);
    EXPECT_EQ(ti.dtype, want.dtype()) << dtype_name(ti.dtype) << " vs " << dtype_name(want.dtype());
    EXPECT_EQ(ti.shape, want.shape()) << shape_str(ti.shape) << " vs " << shape_str(want.shape());
    const Tensor got = ckpt.get(name);
    ASSERT_EQ(got.dtype(), want.dtype());
    ASSERT_EQ(got.shape(), want.shape());
    ASSERT_TRUE(got.is_contiguous()) << "get() must materialise views: " << got.describe();
    EXPECT_EQ(std::memcmp(got.data(), want.data(), want.nbytes()), 0) << "bytes differ from torch's values";
  }
}

// fp32 checkpoints convert at load: get_as(bf16/f16) equals converting torch's values.
TEST_P(TorchGoodFile, ConvertsFloatTensorsAtLoad) {
  const FixtureCase& c = GetParam();
  CheckpointOptions opt;
  opt.key = c.key();
  const Checkpoint ckpt = Checkpoint::open(c.file(), opt);
  const auto expected = SafetensorsFile::open(c.dir() + "/" + c.entry["expected"].get<std::string>());
  for (const auto& name : ckpt.names()) {
    if (ckpt.info(name).dtype != DType::F32) continue;
    for (DType to : {DType::BF16, DType::F16}) {
      const Tensor got = ckpt.get_as(name, to);
      const Tensor want = expected->get(name).to_dtype(to);
      ASSERT_EQ(got.dtype(), to);
      EXPECT_EQ(std::memcmp(got.data(), want.data(), want.nbytes()), 0) << name << " as " << dtype_name(to);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllSets, TorchGoodFile, testing::ValuesIn(cases("ok")), case_name);

class TorchBadFile : public testing::TestWithParam<FixtureCase> {};

// Refused with an InputError (never a crash, never another exception type) whose text names the problem.
TEST_P(TorchBadFile, IsRefusedWithAClearError) {
  const FixtureCase& c = GetParam();
  CheckpointOptions opt;
  opt.key = c.key();
  std::string message;
  try {
    const Checkpoint ckpt = Checkpoint::open(c.file(), opt);
    for (const auto& name : ckpt.names()) ckpt.get(name);  // some problems only show when data is read
  } catch (const InputError& e) {
    message = e.what();
  }
  ASSERT_FALSE(message.empty()) << c.file() << " was accepted";
  EXPECT_NE(message.find(c.file()), std::string::npos) << "error does not name the file: " << message;
  for (const auto& part : c.entry["error_contains"])
    EXPECT_NE(message.find(part.get<std::string>()), std::string::npos)
        << "error lacks '" << part.get<std::string>() << "': " << message;
}

INSTANTIATE_TEST_SUITE_P(AllSets, TorchBadFile, testing::ValuesIn(cases("error")), case_name);

// Contiguous tensors are zero-copy views of the mapped file, and tensors sharing a storage share memory.
TEST(TorchCheckpoint, ContiguousViewsShareTheMappedStorage) {
  for (const auto& set : fixture_sets()) {
    SCOPED_TRACE(set);
    const Checkpoint ckpt = Checkpoint::open(test::data_path("torch/" + set + "/views.pt"));
    const Tensor base = ckpt.get("base"), rows = ckpt.get("rows"), alias = ckpt.get("alias");
    EXPECT_EQ(alias.data(), base.data());
    EXPECT_EQ(static_cast<const char*>(rows.data()) - static_cast<const char*>(base.data()), 20 * 4)
        << "rows = base[2:4] starts 20 floats into the same storage";
    EXPECT_EQ(rows.at({1, 9}), 39.0);
  }
}

// The reader outlives nothing it hands out: tensors stay valid after the checkpoint is gone.
TEST(TorchCheckpoint, TensorsOutliveTheReader) {
  Tensor column, rows;
  const auto sets = fixture_sets();
  ASSERT_FALSE(sets.empty());
  {
    const Checkpoint ckpt = Checkpoint::open(test::data_path("torch/" + sets[0] + "/views.pt"));
    column = ckpt.get("column");
    rows = ckpt.get("rows");
  }
  ASSERT_EQ(column.shape(), Shape({6}));
  for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(column.at({i}), 10.0 * i + 3) << i;
  EXPECT_EQ(rows.at({0, 0}), 20.0);
}

TEST(TorchCheckpoint, UnknownTensorNameIsAnInputError) {
  const auto sets = fixture_sets();
  ASSERT_FALSE(sets.empty());
  const Checkpoint ckpt = Checkpoint::open(test::data_path("torch/" + sets[0] + "/module.pt"));
  EXPECT_FALSE(ckpt.has("nope"));
  EXPECT_THROW(ckpt.get("nope"), InputError);
  EXPECT_THROW(ckpt.info("nope"), InputError);
}

// Stored entries (all torch.save writes) are zero-copy views of the mapping, at torch's 64-byte alignment;
// deflated ones are decompressed into memory; both give the entry's exact bytes.
TEST(TorchZip, StoredEntriesAreMappedDeflatedOnesCopied) {
  const auto sets = fixture_sets();
  ASSERT_FALSE(sets.empty());
  const std::string dir = test::data_path("torch/" + sets[0]);
  const auto stored = ZipReader::open(dir + "/module.pt");
  const auto deflated = ZipReader::open(dir + "/deflated.pt");
  size_t storages = 0;
  for (const ZipEntry& e : stored->entries()) {
    if (e.name.find("/data/") == std::string::npos) continue;
    SCOPED_TRACE(e.name);
    ++storages;
    const ZipBytes a = stored->read(e, e.size);
    EXPECT_TRUE(a.mapped);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data) % 64, 0u) << "torch.save aligns storages to 64 bytes";
    const ZipEntry* d = deflated->find(e.name);
    ASSERT_NE(d, nullptr);
    EXPECT_EQ(d->method, 8);
    const ZipBytes b = deflated->read(*d, d->size);
    EXPECT_FALSE(b.mapped);
    ASSERT_EQ(a.size, b.size);
    EXPECT_EQ(std::memcmp(a.data, b.data, a.size), 0);
    const ZipBytes head = stored->read(e, e.size / 2);  // a prefix, as the reader may ask for
    EXPECT_EQ(head.size, e.size / 2);
    EXPECT_EQ(head.data, a.data);
  }
  EXPECT_GT(storages, 3u);
  EXPECT_THROW(stored->read(stored->entries()[0], stored->entries()[0].size + 1), InputError);
}

#else  // no libzip: the stub explains how to convert instead

TEST(TorchCheckpointStub, SaysHowToConvert) {
  EXPECT_FALSE(torch_checkpoints_supported());
  const std::string path = test::temp_dir("torch_stub") + "/model.pt";
  test::write_file(path, std::string("PK\x03\x04rest", 8));
  try {
    Checkpoint::open(path);
    FAIL() << "the stub accepted a .pt file";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("not supported by this build"), std::string::npos) << e.what();
  }
}

#endif  // BLR_HAVE_LIBZIP

// ---------------------------------------------------------------------------------------------------
// The unpickler on hand-written pickles. String literals carry the `s` suffix so embedded NUL bytes stay.

using namespace std::string_literals;

PickleGraph unpickle(const std::string& s, const PickleLimits& lim = {}) {
  const std::vector<uint8_t> b(s.begin(), s.end());
  return unpickle_torch(b.data(), b.size(), "test.pkl", lim);
}

std::string refusal(const std::string& s, const PickleLimits& lim = {}) {
  try {
    unpickle(s, lim);
  } catch (const InputError& e) {
    return e.what();
  }
  return "<accepted>";
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A tensor as torch.save pickles it: _rebuild_tensor_v2(storage, 1, (2, 3), (3, 1), False, OrderedDict()),
// its storage a persistent id ('storage', torch.<type>, key, 'cpu', numel).
const std::string kProto = "\x80\x02"s;
const std::string kRebuild = "ctorch._utils\n_rebuild_tensor_v2\n"s;
const std::string kOrderedDict = "ccollections\nOrderedDict\n)R"s;
std::string str(const std::string& s) {  // BINUNICODE
  const uint32_t n = static_cast<uint32_t>(s.size());
  return "X"s + static_cast<char>(n & 0xff) + static_cast<char>(n >> 8) + '\0' + '\0' + s;
}
std::string storage_pid(const std::string& type, const std::string& key, int numel) {
  return "("s + str("storage") + "ctorch\n" + type + "\n" + str(key) + str("cpu") + "K" + static_cast<char>(numel) + "tQ";
}
std::string tensor_call(const std::string& pid, const std::string& extra_args = "") {
  return kRebuild + "(" + pid + "K\x01" "K\x02K\x03\x86" "K\x03K\x01\x86" "\x89" + kOrderedDict + extra_args + "tR";
}

TEST(TorchPickle, BuildsTensorRecordsFromATorchStylePickle) {
  const std::string p = kProto + "}q\x00"s + str("w") + tensor_call(storage_pid("FloatStorage", "0", 7)) + "s.";
  const PickleGraph g = unpickle(p);
  ASSERT_EQ(g.storages.size(), 1u);
  EXPECT_EQ(g.storages[0].key, "0");
  EXPECT_EQ(g.storages[0].dtype, DType::F32);
  EXPECT_EQ(g.storages[0].numel, 7);
  ASSERT_EQ(g.tensors.size(), 1u);
  EXPECT_EQ(g.tensors[0].offset, 1);
  EXPECT_EQ(g.tensors[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(g.tensors[0].stride, (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(g.tensors[0].numel, 6);
  EXPECT_EQ(g.tensors[0].extent, 7);
  const TorchStateDict sd = select_state_dict(g, "", "test");
  ASSERT_EQ(sd.tensors.size(), 1u);
  EXPECT_EQ(sd.tensors[0].first, "w");
  EXPECT_EQ(sd.key, "");
}

TEST(TorchPickle, AcceptsTorch2MetadataArgument) {
  const std::string p = kProto + "}" + str("w") + tensor_call(storage_pid("HalfStorage", "k_1", 7), "}") + "s.";
  const PickleGraph g = unpickle(p);
  ASSERT_EQ(g.tensors.size(), 1u);
  EXPECT_EQ(g.storages[0].dtype, DType::F16);
  EXPECT_EQ(g.storages[0].key, "k_1");
}

TEST(TorchPickle, RefusesTensorPastItsStorage) {
  const std::string m = refusal(kProto + tensor_call(storage_pid("FloatStorage", "0", 6)) + ".");
  EXPECT_TRUE(has(m, "reaches element 6 but storage '0' holds 6 elements")) << m;
  EXPECT_TRUE(has(m, "_rebuild_tensor_v2")) << m;
}

TEST(TorchPickle, RefusesBadPersistentIds) {
  std::string m = refusal(kProto + storage_pid("FloatStorage", "../x", 1) + ".");
  EXPECT_TRUE(has(m, "characters other than")) << m;
  m = refusal(kProto + "(" + str("x") + "tQ.");
  EXPECT_TRUE(has(m, "5-tuple")) << m;
  m = refusal(kProto + storage_pid("QInt8Storage", "0", 1) + ".");
  EXPECT_TRUE(has(m, "'torch.QInt8Storage'")) << m;
}

TEST(TorchPickle, DecodesScalarsAndContainers) {
  // [None, True, False, -2 (BININT), 300 (BININT2), 255 (BININT1), -129 (LONG1), 2^63-1 (LONG1),
  //  2^64 (LONG1 of 9 bytes -> BigInt), 1.5 (BINFLOAT), "é" (BINUNICODE8), (1,) (DUP then POP), {'a': 1}]
  const std::string p = kProto + "(N\x88\x89" "J\xfe\xff\xff\xff" "M\x2c\x01" "K\xff" "\x8a\x02\x7f\xff" +
                        "\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f" + "\x8a\x09\0\0\0\0\0\0\0\0\x01"s +
                        "G\x3f\xf8\0\0\0\0\0\0"s + "\x8d\x02\0\0\0\0\0\0\0\xc3\xa9"s + "K\x01\x85" "2" "0" + "(" +
                        str("a") + "K\x01" "d" "l.";
  const PickleGraph g = unpickle(p);
  const PyObject& list = g.objects[g.root];
  ASSERT_EQ(list.kind, PyKind::List);
  ASSERT_EQ(list.items.size(), 13u);
  auto at = [&](size_t i) -> const PyObject& { return g.objects[list.items[i]]; };
  EXPECT_EQ(at(0).kind, PyKind::None);
  EXPECT_EQ(at(1).i, 1);
  EXPECT_EQ(at(2).i, 0);
  EXPECT_EQ(at(3).i, -2);
  EXPECT_EQ(at(4).i, 300);
  EXPECT_EQ(at(5).i, 255);
  EXPECT_EQ(at(6).i, -129);
  EXPECT_EQ(at(7).i, INT64_MAX);
  EXPECT_EQ(at(8).kind, PyKind::BigInt);
  EXPECT_EQ(at(9).f, 1.5);
  EXPECT_EQ(at(10).s, "\xc3\xa9");
  EXPECT_EQ(at(11).kind, PyKind::Tuple);
  EXPECT_EQ(at(12).kind, PyKind::Dict);
  EXPECT_EQ(at(12).items.size(), 2u);
}

TEST(TorchPickle, Protocol4FramesMemoizeAndStackGlobal) {
  const std::string p = "\x80\x04\x95\x10\0\0\0\0\0\0\0"s + "]\x94\x8c\x0b" "collections\x94\x8c\x0b" +
                        "OrderedDict\x94\x93\x94)R\x94" "a" "h\0a."s;
  const PickleGraph g = unpickle(p);
  const PyObject& list = g.objects[g.root];
  ASSERT_EQ(list.kind, PyKind::List);
  ASSERT_EQ(list.items.size(), 2u);
  EXPECT_EQ(g.objects[list.items[0]].kind, PyKind::Dict);
  EXPECT_EQ(list.items[1], g.root) << "memo 0 is the list itself: a cycle, which must be harmless";
  EXPECT_THROW(select_state_dict(g, "", "t"), InputError);  // no tensors, and the search ends
}

// STACK_GLOBAL's names live in the object table that resolving the global grows; the table reallocates at
// some object count, so resolve after every count up to well past a few growth steps.
TEST(TorchPickle, StackGlobalResolvesAtEveryObjectCount) {
  for (int before = 0; before < 70; ++before) {
    std::string p = kProto;
    for (int i = 0; i < before; ++i) p += "N0";  // objects made and popped
    p += "\x8c\x0b" "collections" "\x8c\x0b" "OrderedDict" "\x93)R.";
    const std::string m = refusal(p);
    EXPECT_EQ(m, "<accepted>") << "after " << before << " objects: " << m;
  }
}

TEST(TorchPickle, RefusesDisallowedGlobalsWhereverTheyAppear) {
  for (const std::string global : {"os\nsystem\n", "posix\nsystem\n", "builtins\neval\n", "subprocess\nPopen\n",
                                   "torch\nload\n", "torch._utils\n_rebuild_device_tensor_from_numpy\n"}) {
    const std::string m = refusal(kProto + "(c" + global + ".");
    EXPECT_TRUE(has(m, "GLOBAL '")) << m;
    EXPECT_TRUE(has(m, "offset 3")) << m;
    EXPECT_TRUE(has(m, "not allowed")) << m;
  }
  const std::string model = refusal(kProto + "c__main__\nDiT\n)\x81.");
  EXPECT_TRUE(has(model, "GLOBAL '__main__.DiT' is not allowed")) << model;
  EXPECT_TRUE(has(model, "model.state_dict()")) << model;
  // PROTO (0-1), SHORT_BINUNICODE 'builtins' (2-11), SHORT_BINUNICODE 'exec' (12-17), STACK_GLOBAL at 18.
  const std::string m = refusal(kProto + "\x8c\x08" "builtins" "\x8c\x04" "exec" "\x93.");
  EXPECT_TRUE(has(m, "STACK_GLOBAL 'builtins.exec'")) << m;
  EXPECT_TRUE(has(m, "offset 18")) << m;
}

TEST(TorchPickle, RefusesCallsThatAreNotTheAllowedShape) {
  EXPECT_TRUE(has(refusal(kProto + "))R."), "REDUCE on a tuple"));
  EXPECT_TRUE(has(refusal(kProto + "ccollections\nOrderedDict\n]R."), "arguments are a list"));
  EXPECT_TRUE(has(refusal(kProto + "ccollections\nOrderedDict\n(K\x01tR."), "passes none"));
  EXPECT_TRUE(has(refusal(kProto + kRebuild + "(K\x01tR."), "1 arguments, expected 6 or 7"));
  EXPECT_TRUE(has(refusal(kProto + kRebuild + "(NK\0))\x89}tR."s), "argument 1 (storage) is a None"));
  EXPECT_TRUE(has(refusal(kProto + "ccollections\nOrderedDict\n)\x81."), "NEWOBJ of 'collections.OrderedDict'"));
  EXPECT_TRUE(has(refusal(kProto + "]}b."), "BUILD on a list"));
  EXPECT_TRUE(has(refusal(kProto + "ctorch\nFloatStorage\n)R."), "REDUCE on 'torch.FloatStorage'"));
}

TEST(TorchPickle, NamespaceIsInertData) {
  const PickleGraph g = unpickle(kProto + "cargparse\nNamespace\n)\x81}" + str("x") + "K\x05sb.");
  ASSERT_EQ(g.objects[g.root].kind, PyKind::Object);
  ASSERT_EQ(g.objects[g.root].items.size(), 1u);
  EXPECT_EQ(g.objects[g.objects[g.root].items[0]].kind, PyKind::Dict);
}

TEST(TorchPickle, RefusesMalformedStreams) {
  const std::pair<std::string, std::string> cases[] = {
      {kProto + "\xff.", "unknown opcode 0xff"},
      {kProto + "I1\n.", "INT (0x49) is not supported"},
      {"\x80\x06.", "protocol 6"},
      {kProto + "}", "without a STOP"},
      {kProto + ".", "STOP needs a value"},
      {kProto + "h\0."s, "memo index 0 out of range"},
      {kProto + "Nj\0\0\0\x80."s, "memo index 2147483648 out of range"},
      {kProto + "X\0\0\x01\0" "abc."s, "needs 65536 bytes but only 4 remain"},
      {kProto + "X\x02\0\0\0\xc0\xaf."s, "not valid UTF-8"},      // overlong '/'
      {kProto + "X\x03\0\0\0\xed\xa0\x80."s, "not valid UTF-8"},  // a lone surrogate
      {kProto + "t.", "TUPLE needs a MARK"},
      {kProto + "(\x85.", "TUPLE1 needs 1 values"},
      {kProto + "N(a.", "APPEND needs a value"},
      {kProto + "NNNa.", "APPEND to a None"},
      {kProto + "}(Nu.", "odd number of items"},
      {kProto + "\x95\xff\xff\0\0\0\0\0\0."s, "FRAME is longer"},
      {kProto + "cos", "newline-terminated"},
  };
  for (const auto& [pickle, want] : cases) {
    const std::string m = refusal(pickle);
    EXPECT_TRUE(has(m, want)) << "expected '" << want << "', got: " << m;
    EXPECT_TRUE(has(m, "test.pkl: offset ")) << m;
  }
}

TEST(TorchPickle, LimitsBoundHostileInputs) {
  PickleLimits lim;
  lim.max_stack = 100;
  EXPECT_TRUE(has(refusal(kProto + std::string(200, 'N') + ".", lim), "stack deeper than 100"));
  lim = {};
  lim.max_marks = 10;
  EXPECT_TRUE(has(refusal(kProto + std::string(20, '(') + ".", lim), "MARKs nested deeper than 10"));
  lim = {};
  lim.max_memo = 3;
  EXPECT_TRUE(has(refusal(kProto + "Nq\0q\x01q\x02q\x03."s, lim), "memo would exceed 3"));
  lim = {};
  lim.max_objects = 50;
  EXPECT_TRUE(has(refusal(kProto + std::string(60, 'N') + ".", lim), "more than 50 objects"));
  lim = {};
  lim.max_container_items = 4;
  EXPECT_TRUE(has(refusal(kProto + "](NNNNNe.", lim), "more than 4 items"));
  lim = {};
  lim.max_string_bytes = 8;
  EXPECT_TRUE(has(refusal(kProto + str("123456789") + ".", lim), "exceeds the limit of 8"));
  // A doubling chain of shared dicts is tiny to pickle but has 2^40 paths: the search must stop.
  std::string p = kProto + "}q\0"s;  // d0 = {}
  for (int i = 1; i <= 40; ++i) {
    const char prev = static_cast<char>(i - 1), cur = static_cast<char>(i);
    p += "}(" + str("a") + "h" + prev + str("b") + "h" + prev + "uq" + cur;
  }
  p += ".";
  const PickleGraph g = unpickle(p);
  try {
    select_state_dict(g, "", "t");
    FAIL() << "exponential graph accepted";
  } catch (const InputError& e) {
    EXPECT_TRUE(has(e.what(), "too large")) << e.what();
  }
}

TEST(TorchPickle, NamesAndScalarsAreBounded) {
  // Nested dicts under 1000-byte keys: the flattened name would pass 4096 bytes.
  const std::string key(1000, 'k');
  std::string p = kProto;
  for (int i = 0; i < 6; ++i) p += "}" + str(key);
  p += tensor_call(storage_pid("FloatStorage", "0", 7));
  for (int i = 0; i < 6; ++i) p += "s";
  p += ".";
  try {
    select_state_dict(unpickle(p), "", "t");
    FAIL() << "a 6000-byte tensor name was accepted";
  } catch (const InputError& e) {
    EXPECT_TRUE(has(e.what(), "longer than 4096 bytes")) << e.what();
  }
  // A long scalar is cut at a character boundary (here inside a 2-byte 'é') and marked.
  const std::string text = std::string(255, 'a') + "\xc3\xa9" + std::string(100, 'b');
  const std::string q = kProto + "}(" + str("w") + tensor_call(storage_pid("FloatStorage", "0", 7)) + str("note") +
                        str(text) + "u.";
  const TorchStateDict sd = select_state_dict(unpickle(q), "", "t");
  ASSERT_EQ(sd.scalars.count("note"), 1u);
  EXPECT_EQ(sd.scalars.at("note"), std::string(255, 'a') + "...");
}

TEST(TorchPickle, GeometryChecks) {
  TorchStorageRef s;
  s.key = "0";
  s.numel = 12;
  auto check = [&](int64_t offset, std::vector<int64_t> shape, std::vector<int64_t> stride) {
    TorchTensorRef t;
    t.offset = offset;
    t.shape = std::move(shape);
    t.stride = std::move(stride);
    check_tensor_geometry(t, s, 64);
    return t;
  };
  EXPECT_EQ(check(0, {3, 4}, {4, 1}).extent, 12);
  EXPECT_EQ(check(2, {2, 2}, {1, 5}).extent, 9);       // transposed view: last index 2 + 1 + 5 = 8
  EXPECT_EQ(check(11, {}, {}).extent, 12);             // a scalar at the last element
  EXPECT_EQ(check(0, {5, 0}, {1, 1}).numel, 0);        // empty: reads nothing
  EXPECT_EQ(check(0, {1000, 12}, {0, 1}).extent, 12);  // broadcast (stride 0)
  EXPECT_THROW(check(1, {3, 4}, {4, 1}), InputError);  // one past the end
  EXPECT_THROW(check(-1, {2}, {1}), InputError);
  EXPECT_THROW(check(0, {-2}, {1}), InputError);
  EXPECT_THROW(check(0, {2}, {-1}), InputError);
  EXPECT_THROW(check(0, {2, 2}, {1}), InputError);
  EXPECT_THROW(check(0, {int64_t(1) << 40, int64_t(1) << 40}, {0, 0}), InputError);  // numel overflow
  EXPECT_THROW(check(0, {3}, {INT64_MAX / 2}), InputError);                         // span overflow
  EXPECT_THROW(check(INT64_MAX, {2}, {1}), InputError);                              // offset overflow
  EXPECT_THROW(check(0, std::vector<int64_t>(65, 1), std::vector<int64_t>(65, 1)), InputError);  // rank
}

TEST(TorchPickle, StateDictSelection) {
  // {"model": {"w": T0}, "ema": {"w": T1, "inner": {"b": T2}}, "epoch": 3}
  const std::string pid = storage_pid("FloatStorage", "0", 7);
  const std::string p = kProto + "}(" + str("model") + "}" + str("w") + tensor_call(pid) + "s" + str("ema") + "}(" +
                        str("w") + tensor_call(pid) + str("inner") + "}" + str("b") + tensor_call(pid) + "su" +
                        str("epoch") + "K\x03u.";
  const PickleGraph g = unpickle(p);
  ASSERT_EQ(g.tensors.size(), 3u);
  const TorchStateDict a = select_state_dict(g, "", "t");
  EXPECT_EQ(a.key, "ema");
  ASSERT_EQ(a.tensors.size(), 2u);
  EXPECT_EQ(a.tensors[0].first, "w");
  EXPECT_EQ(a.tensors[0].second, 1u);
  EXPECT_EQ(a.tensors[1].first, "inner.b");
  const TorchStateDict m = select_state_dict(g, "model", "t");
  ASSERT_EQ(m.tensors.size(), 1u);
  EXPECT_EQ(m.tensors[0].second, 0u);
  EXPECT_THROW(select_state_dict(g, "epoch", "t"), InputError);  // holds no tensors
  try {
    select_state_dict(g, "opt", "t");
    FAIL() << "missing key accepted";
  } catch (const InputError& e) {
    EXPECT_TRUE(has(e.what(), "'model' (dict), 'ema' (dict), 'epoch' (int)")) << e.what();
  }
}

TEST(TorchPickle, RepeatedKeyKeepsFirstPositionAndLastValue) {
  const std::string pid = storage_pid("FloatStorage", "0", 7);
  const std::string p = kProto + "}(" + str("a") + tensor_call(pid) + str("b") + tensor_call(pid) + str("a") +
                        tensor_call(pid) + "u.";
  const TorchStateDict sd = select_state_dict(unpickle(p), "", "t");
  ASSERT_EQ(sd.tensors.size(), 2u);
  EXPECT_EQ(sd.tensors[0].first, "a");
  EXPECT_EQ(sd.tensors[0].second, 2u);
  EXPECT_EQ(sd.tensors[1].first, "b");
}

}  // namespace
}  // namespace blr
