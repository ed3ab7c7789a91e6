// tests/unit/store/field_codec_test.cpp: the header/option BLOB encoding, byte for byte.
// SPDX-License-Identifier: Apache-2.0
#include "core/store/field_codec.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace anm::store {
namespace {

TEST(FieldCodec, LayoutIsLittleEndianLengthThenBytes) {
  std::string encoded = encodeHeaders({{"Ab", "xyz"}, {"", ""}});
  std::string expected(
      "\x02\x00\x00\x00"
      "Ab"
      "\x03\x00\x00\x00"
      "xyz"
      "\x00\x00\x00\x00"
      "\x00\x00\x00\x00",
      21);
  EXPECT_EQ(encoded, expected);
  EXPECT_EQ(encodeHeaders({}), "");
}

TEST(FieldCodec, LongValueLengthUsesAllFourBytes) {
  std::string value(0x010203, 'v');
  std::string encoded = encodeHeaders({{"N", value}});
  ASSERT_EQ(encoded.size(), 4u + 1u + 4u + value.size());
  EXPECT_EQ(encoded.substr(5, 4), std::string("\x03\x02\x01\x00", 4));
  EXPECT_EQ(decodeHeaders(encoded), (std::vector<Header>{{"N", value}}));
}

TEST(FieldCodec, RoundTripKeepsOrderDuplicatesAndAnyBytes) {
  std::vector<Header> headers = {
      {"X-A", "1"}, {"x-a", ""}, {"X-A", std::string("\0\xff", 2)}, {std::string("\0", 1), "z"}};
  EXPECT_EQ(decodeHeaders(encodeHeaders(headers)), headers);

  std::vector<std::pair<std::string, std::string>> options = {{"b", "2"}, {"a", "1"}, {"b", "3"}};
  EXPECT_EQ(decodeOptions(encodeOptions(options)), options);
}

TEST(FieldCodec, TruncatedInputIsRefused) {
  std::string encoded = encodeHeaders({{"Name", "value"}});
  for (size_t cut = 1; cut < encoded.size(); ++cut) {
    EXPECT_THROW(decodeHeaders(encoded.substr(0, cut)), StoreError) << "cut at " << cut;
  }
  EXPECT_THROW(decodeHeaders(std::string("\xff\xff\xff\xff", 4)), StoreError);
}

}  // namespace
}  // namespace anm::store
