// Tensor views, copies and dtype conversions on the host.
#include <cmath>

#include "engine/core/tensor.h"
#include "tests/common/test_util.h"

namespace blr {

TEST(Tensor, ZerosHasShapeStridesAndZeroes) {
  Tensor t = Tensor::zeros({2, 3, 4});
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.nbytes(), 96u);
  EXPECT_EQ(shape_str(t.strides()), "[12,4,1]");
  EXPECT_TRUE(t.is_contiguous());
  for (int64_t i = 0; i < t.numel(); ++i) EXPECT_EQ(t.flat(i), 0.0);
}

TEST(Tensor, SliceSelectTransposeShareMemory) {
  std::vector<float> v(24);
  for (int i = 0; i < 24; ++i) v[i] = static_cast<float>(i);
  Tensor t = Tensor::from_vector({2, 3, 4}, v);
  Tensor s = t.slice(1, 1, 3);  // [2,2,4]
  EXPECT_EQ(shape_str(s.shape()), "[2,2,4]");
  EXPECT_FALSE(s.is_contiguous());
  EXPECT_EQ(s.at({0, 0, 0}), 4.0);
  EXPECT_EQ(s.at({1, 1, 3}), 23.0);
  Tensor sel = t.select(0, 1);  // [3,4] starting at 12
  EXPECT_EQ(sel.at({2, 1}), 21.0);
  Tensor tr = t.transpose(1, 2);  // [2,4,3]
  EXPECT_EQ(tr.at({0, 3, 2}), 11.0);
  // Writing through a view changes the original.
  sel.data_as<float>()[0] = -1.0f;
  EXPECT_EQ(t.at({1, 0, 0}), -1.0);
}

TEST(Tensor, ToHostMakesStridedViewsContiguous) {
  std::vector<float> v(12);
  for (int i = 0; i < 12; ++i) v[i] = static_cast<float>(i);
  Tensor t = Tensor::from_vector({3, 4}, v).transpose(0, 1);  // [4,3]
  Tensor c = t.to_host();
  ASSERT_TRUE(c.is_contiguous());
  const float* p = c.data_as<float>();
  for (int r = 0; r < 4; ++r)
    for (int col = 0; col < 3; ++col) EXPECT_EQ(p[r * 3 + col], v[col * 4 + r]);
}

TEST(Tensor, ReshapeInfersOneDimensionAndRejectsBadSizes) {
  Tensor t = Tensor::zeros({2, 6});
  EXPECT_EQ(shape_str(t.reshape({3, -1}).shape()), "[3,4]");
  EXPECT_THROW(t.reshape({5, -1}), Error);
  EXPECT_THROW(t.reshape({-1, -1}), Error);
  EXPECT_THROW(t.transpose(0, 1).reshape({12}), Error);  // not contiguous
}

TEST(Tensor, OutOfRangeViewsThrow) {
  Tensor t = Tensor::zeros({2, 3});
  EXPECT_THROW(t.slice(1, 2, 4), Error);
  EXPECT_THROW(t.select(0, 2), Error);
  EXPECT_THROW(t.dim(2), Error);
  EXPECT_THROW(t.at({0, 3}), Error);
}

TEST(Tensor, FlattenRowsKeepsRowStride) {
  Tensor t = Tensor::zeros({2, 5, 8});
  Tensor cols = t.slice(2, 0, 4);  // rows of 4 with stride 8
  EXPECT_TRUE(cols.rows_are_dense());
  Tensor m = cols.flatten_rows();
  EXPECT_EQ(shape_str(m.shape()), "[10,4]");
  EXPECT_EQ(m.stride(0), 8);
  EXPECT_FALSE(t.transpose(1, 2).rows_are_dense());
}

TEST(Tensor, DtypeConversionsRoundTrip) {
  const std::vector<float> v = {0.0f, 1.0f, -2.5f, 3.140625f, 65504.0f, 1e-3f, -0.0f, 100.25f};
  Tensor t = Tensor::from_vector({8}, v);
  for (DType dt : {DType::F64, DType::F16, DType::BF16, DType::F32}) {
    Tensor back = t.to_dtype(dt).to_dtype(DType::F32);
    for (size_t i = 0; i < v.size(); ++i) {
      // f16 has 11 significant bits and bf16 8: relative error at most 2^-11 and 2^-8 respectively.
      const double tol = dt == DType::BF16 ? std::fabs(v[i]) / 256.0 : dt == DType::F16 ? std::fabs(v[i]) / 2048.0 : 0.0;
      EXPECT_NEAR(back.flat(i), v[i], tol) << dtype_name(dt) << " element " << i;
    }
  }
  Tensor ints = t.to_dtype(DType::I32);
  EXPECT_EQ(ints.flat(2), -2.0);  // truncation toward zero, as C++ casts do
  EXPECT_EQ(ints.flat(7), 100.0);
}

TEST(Dtype, Bf16RoundsToNearestEvenAndKeepsNaN) {
  // 1 + 2^-8 lies exactly between two bf16 values (1 and 1 + 2^-7): ties go to the even mantissa (1).
  EXPECT_EQ(bf16_bits_to_f32(f32_to_bf16_bits(1.0f + 1.0f / 256)), 1.0f);
  EXPECT_EQ(bf16_bits_to_f32(f32_to_bf16_bits(1.0f + 3.0f / 256)), 1.0f + 4.0f / 256);
  EXPECT_TRUE(std::isnan(bf16_bits_to_f32(f32_to_bf16_bits(std::nanf("")))));
}

TEST(Dtype, F16HandlesSubnormalsOverflowAndExactValues) {
  EXPECT_EQ(f16_bits_to_f32(f32_to_f16_bits(1.0f)), 1.0f);
  EXPECT_EQ(f32_to_f16_bits(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16_bits(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16_bits(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16_bits(1e6f), 0x7c00);                        // overflow -> +inf
  EXPECT_EQ(f16_bits_to_f32(0x0001), std::ldexp(1.0f, -24));       // smallest subnormal
  EXPECT_EQ(f32_to_f16_bits(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(f32_to_f16_bits(std::ldexp(1.0f, -26)), 0x0000);       // underflows to zero
}

TEST(Dtype, ParseAcceptsBothSpellingsAndRejectsUnknown) {
  EXPECT_EQ(parse_dtype("bf16"), DType::BF16);
  EXPECT_EQ(parse_dtype("BF16"), DType::BF16);
  EXPECT_EQ(parse_dtype("F32"), DType::F32);
  EXPECT_EQ(dtype_size(DType::I64), 8u);
  try {
    parse_dtype("f8");
    FAIL() << "f8 accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown dtype 'f8'"), std::string::npos) << e.what();
  }
}

TEST(Tensor, CheckShapeNamesTheTensorAndBothShapes) {
  Tensor t = Tensor::zeros({3, 4});
  EXPECT_NO_THROW(check_shape(t, {3, -1}, "w"));
  try {
    check_shape(t, {4, 4}, "blocks.0.attn.qkv.weight");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(), "blocks.0.attn.qkv.weight: shape [3,4], expected [4,4]");
  }
}

}  // namespace blr
