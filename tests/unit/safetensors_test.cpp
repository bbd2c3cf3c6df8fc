// safetensors: round trip of every dtype, metadata, zero-copy views, and one specific error for each
// kind of malformed file (these also run under ASan/UBSan in CI).
#include <cstring>

#include "engine/io/checkpoint.h"
#include "engine/io/safetensors.h"
#include "tests/common/test_util.h"

namespace blr {

namespace {

// Builds a file image: 8-byte little-endian header length, header text, then `data`.
std::string make_file(const std::string& header, const std::string& data, uint64_t declared_len = UINT64_MAX) {
  const uint64_t n = declared_len == UINT64_MAX ? header.size() : declared_len;
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

// Opens `bytes` written to a file and returns the error message (empty if it opened).
std::string open_error(const std::string& bytes) {
  const std::string path = test::temp_dir("safetensors") + "/bad.safetensors";
  test::write_file(path, bytes);
  try {
    SafetensorsFile::open(path);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Safetensors, RoundTripsEveryDtypeAndMetadata) {
  const std::string path = test::temp_dir("safetensors") + "/all.safetensors";
  std::vector<std::pair<std::string, Tensor>> tensors;
  const DType all[] = {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64,
                       DType::I32, DType::I16, DType::I8, DType::U8, DType::Bool};
  const Tensor base = Tensor::from_vector({2, 3}, {0.0f, 1.0f, -2.0f, 3.0f, 100.0f, 1.0f});
  for (DType dt : all) tensors.emplace_back(std::string("t_") + dtype_name(dt), base.to_dtype(dt));
  tensors.emplace_back("scalarish", Tensor::from_vector({1}, {42.5f}));
  tensors.emplace_back("empty", Tensor::zeros({0, 4}));
  write_safetensors(path, tensors, {{"format", "pt"}, {"note", "hello"}});

  auto f = SafetensorsFile::open(path);
  EXPECT_EQ(f->names().size(), tensors.size());
  EXPECT_EQ(f->metadata().at("note"), "hello");
  for (const auto& [name, t] : tensors) {
    const Tensor got = f->get(name);
    EXPECT_EQ(got.dtype(), t.dtype()) << name;
    EXPECT_EQ(shape_str(got.shape()), shape_str(t.shape())) << name;
    ASSERT_EQ(got.nbytes(), t.nbytes()) << name;
    EXPECT_EQ(std::memcmp(got.data(), t.data(), t.nbytes()), 0) << name;
  }
  // Zero-copy: an aligned tensor points into the mapping, and the mapping outlives the file object.
  Tensor kept = f->get("t_f32");
  f.reset();
  EXPECT_EQ(kept.at({1, 1}), 100.0);
}

TEST(Safetensors, CheckpointOpenReadsSafetensorsAndConverts) {
  const std::string path = test::temp_dir("safetensors") + "/ck.safetensors";
  write_safetensors(path, {{"w", Tensor::from_vector({2, 2}, {1, 2, 3, 4})}});
  const Checkpoint ck = Checkpoint::open(path);
  EXPECT_EQ(ck.format(), "safetensors");
  EXPECT_TRUE(ck.has("w"));
  EXPECT_EQ(ck.get_as("w", DType::BF16).dtype(), DType::BF16);
  EXPECT_EQ(ck.get_checked("w", {2, -1}, DType::F32).at({1, 0}), 3.0);
  try {
    ck.get_checked("w", {3, 2}, DType::F32);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'w': shape [2,2], expected [3,2]"), std::string::npos) << e.what();
  }
  try {
    ck.get("missing");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'missing' not found"), std::string::npos) << e.what();
  }
}

TEST(Safetensors, WriterRefusesDuplicateAndReservedNames) {
  const std::string dir = test::temp_dir("safetensors");
  const Tensor t = Tensor::zeros({2});
  EXPECT_THROW(write_safetensors(dir + "/dup.safetensors", {{"a", t}, {"a", t}}), InputError);
  EXPECT_THROW(write_safetensors(dir + "/meta.safetensors", {{"__metadata__", t}}), InputError);
  EXPECT_FALSE(test::file_exists(dir + "/dup.safetensors"));
  EXPECT_FALSE(test::file_exists(dir + "/dup.safetensors.tmp"));
}

struct Malformed {
  const char* what;
  std::string bytes;
  const char* expected;  // substring of the error
};

class SafetensorsMalformed : public ::testing::TestWithParam<int> {};

static std::vector<Malformed> malformed_cases() {
  const std::string f32x2(8, '\0');
  return {
      {"truncated", std::string("\x10\x00\x00", 3), "too short"},
      {"header length past end", make_file("{}", "", 1000), "runs past the end of the file"},
      {"bad JSON", make_file("{\"a\": {\"dtype\": ", ""), "not valid JSON"},
      {"non-object header", make_file("[1,2,3]", ""), "expected an object"},
      {"unknown dtype", make_file(R"({"a":{"dtype":"F12","shape":[2],"data_offsets":[0,8]}})", f32x2), "unknown dtype 'F12'"},
      {"shape/size mismatch", make_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", f32x2),
       "needs 12 bytes but data_offsets span 8"},
      {"overlapping ranges",
       make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                 f32x2),
       "overlaps"},
      {"range past end", make_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", f32x2),
       "run past the data section"},
      {"negative shape", make_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", f32x2),
       "not a non-negative integer"},
      {"missing offsets", make_file(R"({"a":{"dtype":"F32","shape":[2]}})", f32x2), "data_offsets must be"},
      {"backwards offsets", make_file(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", f32x2), "run backwards"},
      {"metadata not strings", make_file(R"({"__metadata__":{"k":1}})", ""), "is not a string"},
      {"entry not an object", make_file(R"({"a":5})", ""), "entry is not an object"},
      {"huge shape", make_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}})", f32x2),
       "too large"},
  };
}

TEST_P(SafetensorsMalformed, GivesItsSpecificError) {
  const Malformed m = malformed_cases()[GetParam()];
  const std::string err = open_error(m.bytes);
  ASSERT_FALSE(err.empty()) << m.what << ": malformed file was accepted";
  EXPECT_NE(err.find(m.expected), std::string::npos) << m.what << ": got '" << err << "'";
  EXPECT_NE(err.find("bad.safetensors"), std::string::npos) << m.what << ": message does not name the file: " << err;
}

INSTANTIATE_TEST_SUITE_P(AllKinds, SafetensorsMalformed, ::testing::Range(0, 14));

TEST(Safetensors, MissingFileAndDirectoryAreReported) {
  try {
    SafetensorsFile::open("/nonexistent/x.safetensors");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot open"), std::string::npos);
  }
  EXPECT_THROW(SafetensorsFile::open(test::temp_dir("safetensors")), InputError);
}

TEST(Safetensors, UnalignedDataIsCopiedNotMisread) {
  // Header of odd length makes the data section start at an odd address: get() must copy, not alias.
  const float v[2] = {1.5f, -2.25f};
  std::string data(reinterpret_cast<const char*>(v), 8);
  const std::string bytes = make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} )", data);
  auto owned = std::make_shared<std::string>(bytes);
  auto f = SafetensorsFile::from_memory(std::shared_ptr<const void>(owned, owned->data()), owned->size(), "mem");
  const Tensor t = f->get("a");
  EXPECT_EQ(t.flat(0), 1.5);
  EXPECT_EQ(t.flat(1), -2.25);
}

}  // namespace blr
