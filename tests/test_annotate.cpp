// test_annotate.cpp - the CLI's --annotate drawing (tools/annotate.cpp): stb_easy_font draws ASCII
// 32..126 only, so labels with UTF-8 or control bytes are drawn with '?' in their place (under
// ASan, a byte outside that range would read outside stb_easy_font's tables).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "annotate.h"

namespace fm {
namespace {

Image Annotated(const std::string& label) {
  Image image;
  image.width = 240;
  image.height = 160;
  image.rgb.assign(size_t(240 * 160 * 3), 90);
  Face face;
  face.det = {40, 60, 120, 140, 0.9f, {}};
  face.label = 0;
  face.probs = {0.75f};
  AnnotateFaces(&image, {face}, {label});
  return image;
}

TEST(Annotate, LabelsOutsidePrintableAsciiAreDrawnAsQuestionMarks) {
  const std::pair<std::string, std::string> cases[] = {
      {"m\xc3\xa1scara", "m?scara"},                   // UTF-8: one '?' per character
      {"\xe2\x9c\x93 ok \xf0\x9f\x98\xb7", "? ok ?"},  // 3- and 4-byte sequences
      {"a\x01\x1b[31mb\x7f", "a??[31mb?"},             // control bytes and DEL
      {"\x80\xff"
       "c",
       "??c"},  // stray continuation and invalid bytes
  };
  for (const auto& c : cases) {
    const Image got = Annotated(c.first), want = Annotated(c.second);
    EXPECT_TRUE(got.rgb == want.rgb) << c.second;
    EXPECT_FALSE(got.rgb == Annotated("").rgb) << c.second << ": the tag is drawn";
  }
}

}  // namespace
}  // namespace fm
