// test_annotate.cpp - the CLI's --annotate drawing (tools/annotate.cpp): stb_easy_font draws ASCII
// 32..126 only, so labels with UTF-8 or control bytes are drawn with '?' in their place (under
// ASan, a byte outside that range would read outside stb_easy_font's tables); a tag stays inside
// the photo.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "annotate.h"

namespace fm {
namespace {

Image Annotated(const std::string& label, float x0 = 40) {
  Image image;
  image.width = 240;
  image.height = 160;
  image.rgb.assign(size_t(240 * 160 * 3), 90);
  Face face;
  face.det = {x0, 60, x0 + 80, 140, 0.9f, {}};
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

// A face at the photo's right edge gets its whole tag, moved left: as many text (white) pixels as
// the same tag drawn in the open.
TEST(Annotate, TagAtTheRightEdgeIsMovedInsideThePhoto) {
  auto white = [](const Image& im) {
    int n = 0;
    for (size_t i = 0; i + 2 < im.rgb.size(); i += 3)
      n += im.rgb[i] == 255 && im.rgb[i + 1] == 255 && im.rgb[i + 2] == 255;
    return n;
  };
  const std::string label = "a long label for the tag";
  const int open = white(Annotated(label, 10)), edge = white(Annotated(label, 155));
  ASSERT_GT(open, 0);
  EXPECT_EQ(edge, open);
}

}  // namespace
}  // namespace fm
