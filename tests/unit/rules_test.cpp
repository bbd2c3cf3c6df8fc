// Layer rules: parsing (and the message of every malformed form), glob matching, first-match-wins, and the
// shape checks of validate_spec.
#include <gtest/gtest.h>

#include "engine/core/error.h"
#include "engine/nn/linear.h"

namespace blr {
namespace {

std::string parse_error(const std::string& text) {
  try {
    parse_layer_rule(text);
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

std::string validate_error(const LinearSpec& s, int64_t in, int64_t out) {
  try {
    validate_spec(s, in, out, "L");
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

LinearSpec spec(LinearKind k, int64_t b, int64_t r) {
  LinearSpec s;
  s.kind = k;
  s.blocks = b;
  s.rank = r;
  return s;
}

TEST(Rules, ParsesEachMethod) {
  LayerRule r = parse_layer_rule("blocks.*.attn.qkv=blast:b=9,r=384");
  EXPECT_EQ(r.pattern, "blocks.*.attn.qkv");
  EXPECT_EQ(r.spec.kind, LinearKind::Blast);
  EXPECT_EQ(r.spec.blocks, 9);
  EXPECT_EQ(r.spec.rank, 384);
  EXPECT_EQ(r.spec.iterations, 300);
  EXPECT_FALSE(r.iterations_given);
  EXPECT_EQ(r.text, "blocks.*.attn.qkv=blast:b=9,r=384");
  EXPECT_EQ(r.spec.describe(), "blast:b=9,r=384");

  r = parse_layer_rule("x=blast:r=16, b=2 ,iters=50");
  EXPECT_EQ(r.spec.blocks, 2);
  EXPECT_EQ(r.spec.rank, 16);
  EXPECT_EQ(r.spec.iterations, 50);
  EXPECT_TRUE(r.iterations_given);

  r = parse_layer_rule("*.fc1=monarch:b=4,r=128");
  EXPECT_EQ(r.spec.kind, LinearKind::Monarch);
  EXPECT_EQ(r.spec.describe(), "monarch:b=4,r=128");

  r = parse_layer_rule("head=lowrank:r=64");
  EXPECT_EQ(r.spec.kind, LinearKind::LowRank);
  EXPECT_EQ(r.spec.blocks, 1);
  EXPECT_EQ(r.spec.rank, 64);

  r = parse_layer_rule("blocks.0.*=dense");
  EXPECT_EQ(r.spec.kind, LinearKind::Dense);
  EXPECT_EQ(parse_layer_rule("a=lowrank:b=1,r=3").spec.rank, 3);  // b=1 is the one b lowrank accepts
}

TEST(Rules, MalformedRulesSayWhatIsWrong) {
  struct Case {
    const char* text;
    const char* expect;
  } cases[] = {
      {"blocks.0.attn.qkv", "expected PATTERN=METHOD"},
      {"=blast:b=2,r=4", "pattern before '=' is empty"},
      {"x=", "no method"},
      {"x=svd:r=4", "unknown layer method 'svd'"},
      {"x=blast:b=2", "needs a rank r"},
      {"x=blast:r=4", "needs a block count b"},
      {"x=monarch:r=4", "needs a block count b"},
      {"x=lowrank", "needs a rank r"},
      {"x=blast:b=2,r=4,b=3", "'b' given twice"},
      {"x=blast:b=two,r=4", "b='two' is not a positive integer"},
      {"x=blast:b=0,r=4", "b must be positive"},
      {"x=blast:b=-2,r=4", "is not a positive integer"},
      {"x=blast:b=2,r=99999999999", "is not a positive integer"},
      {"x=lowrank:b=2,r=4", "lowrank has no blocks"},
      {"x=monarch:b=2,r=4,iters=3", "iters applies to blast only"},
      {"x=dense:r=3", "dense takes no parameters"},
      {"x=blast:b=2,r=4,k=1", "unknown parameter 'k'"},
      {"x=blast:", "nothing after ':'"},
      {"x=blast:b=2,,r=4", "is not KEY=VALUE"},
      {"x=blast:b2,r=4", "'b2' is not KEY=VALUE"},
  };
  for (const auto& c : cases) {
    const std::string msg = parse_error(c.text);
    EXPECT_NE(msg.find(c.expect), std::string::npos) << "rule '" << c.text << "' gave: " << msg;
    EXPECT_NE(msg.find(std::string("rule '") + c.text + "'"), std::string::npos) << "message must quote the rule: " << msg;
  }
}

TEST(Glob, StarsAndQuestionMarks) {
  EXPECT_TRUE(glob_match("blocks.*.attn.qkv", "blocks.0.attn.qkv"));
  EXPECT_TRUE(glob_match("blocks.*.attn.qkv", "blocks.27.attn.qkv"));
  EXPECT_FALSE(glob_match("blocks.*.attn.qkv", "blocks.0.attn.proj"));
  EXPECT_FALSE(glob_match("blocks.*.attn.qkv", "xblocks.0.attn.qkv"));
  EXPECT_FALSE(glob_match("blocks.*.attn.qkv", "blocks.0.attn.qkv.extra"));
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_TRUE(glob_match("*", "anything.at.all"));
  EXPECT_TRUE(glob_match("*.fc1", "blocks.1.mlp.fc1"));
  EXPECT_FALSE(glob_match("*.fc1", "blocks.1.mlp.fc2"));
  EXPECT_TRUE(glob_match("a?c", "abc"));
  EXPECT_FALSE(glob_match("a?c", "ac"));
  EXPECT_FALSE(glob_match("a?c", "abbc"));
  EXPECT_TRUE(glob_match("a*b*c", "aXXbYYc"));
  EXPECT_TRUE(glob_match("a*b*c", "abc"));
  EXPECT_FALSE(glob_match("a*b*c", "acb"));
  EXPECT_TRUE(glob_match("**x", "yyx"));
  EXPECT_TRUE(glob_match("head", "head"));
  EXPECT_FALSE(glob_match("head", "heads"));
  EXPECT_FALSE(glob_match("", "a"));
  // '*' crosses dots (names are matched as plain strings).
  EXPECT_TRUE(glob_match("blocks.*", "blocks.3.mlp.fc2"));
}

TEST(Rules, FirstMatchWins) {
  const std::vector<LayerRule> rules = {parse_layer_rule("blocks.0.*=dense"),
                                        parse_layer_rule("blocks.*.mlp.*=monarch:b=4,r=128"),
                                        parse_layer_rule("blocks.*=blast:b=3,r=64")};
  ASSERT_TRUE(match_rules(rules, "blocks.0.mlp.fc1").has_value());
  EXPECT_EQ(match_rules(rules, "blocks.0.mlp.fc1")->kind, LinearKind::Dense);
  EXPECT_EQ(match_rules(rules, "blocks.5.mlp.fc1")->kind, LinearKind::Monarch);
  EXPECT_EQ(match_rules(rules, "blocks.5.attn.qkv")->kind, LinearKind::Blast);
  EXPECT_FALSE(match_rules(rules, "head").has_value());
  EXPECT_FALSE(match_rules({}, "head").has_value());
}

TEST(Validate, AcceptsThePaperConfigs) {
  EXPECT_NO_THROW(validate_spec(spec(LinearKind::Blast, 9, 384), 1152, 3456, "qkv"));   // DiT qkv
  EXPECT_NO_THROW(validate_spec(spec(LinearKind::Blast, 9, 256), 1152, 4608, "fc1"));   // DiT fc1
  EXPECT_NO_THROW(validate_spec(spec(LinearKind::Blast, 9, 256), 1152, 6912, "adaLN"));
  EXPECT_NO_THROW(validate_spec(spec(LinearKind::Blast, 3, 128), 768, 2304, "vit qkv"));
  EXPECT_NO_THROW(validate_spec(spec(LinearKind::Monarch, 4, 128), 3072, 768, "vit fc2"));
  EXPECT_NO_THROW(validate_spec(spec(LinearKind::LowRank, 1, 768), 768, 3072, "full rank"));
  EXPECT_NO_THROW(validate_spec(spec(LinearKind::Dense, 1, 0), 5, 7, "dense"));
  EXPECT_NO_THROW(validate_spec(spec(LinearKind::Blast, 2, 10), 10, 12, "blast at min(in,out)"));
}

TEST(Validate, RejectsImpossibleSpecsWithReasons) {
  EXPECT_NE(validate_error(spec(LinearKind::Blast, 7, 64), 1152, 3456).find("b=7 must divide both in=1152 and out=3456"),
            std::string::npos);
  EXPECT_NE(validate_error(spec(LinearKind::Monarch, 4, 130), 768, 768).find("multiple of b=4"), std::string::npos);
  EXPECT_NE(validate_error(spec(LinearKind::Monarch, 4, 4 * 200), 768, 768).find("r/b=200 exceeds"), std::string::npos);
  EXPECT_NE(validate_error(spec(LinearKind::LowRank, 1, 13), 12, 40).find("exceeds min(in, out)=12"), std::string::npos);
  EXPECT_NE(validate_error(spec(LinearKind::LowRank, 2, 4), 12, 40).find("no blocks"), std::string::npos);
  EXPECT_NE(validate_error(spec(LinearKind::Blast, 2, 11), 10, 12).find("exceeds min(in, out)=10"), std::string::npos);
  EXPECT_NE(validate_error(spec(LinearKind::Blast, 2, 0), 10, 12).find("rank r must be positive"), std::string::npos);
  // The layer and its shape are named.
  EXPECT_NE(validate_error(spec(LinearKind::Blast, 7, 64), 1152, 3456).find("layer 'L' (3456x1152"), std::string::npos);
}

TEST(LinearKinds, NamesRoundTrip) {
  for (LinearKind k : {LinearKind::Dense, LinearKind::LowRank, LinearKind::Monarch, LinearKind::Blast})
    EXPECT_EQ(parse_linear_kind(linear_kind_name(k)), k);
  EXPECT_THROW(parse_linear_kind("tt"), InputError);
}

}  // namespace
}  // namespace blr
