// safetensors reading and writing. Expected files are built by hand here (length prefix, JSON
// text, little-endian F32/F16/BF16 bit patterns) and their values are stated independently
// (literals and powers of two); written files must read back bit-identically; every malformed
// header must raise FormatError naming the tensor and the problem before any data is touched.
#include <QtTest>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "byte_files.h"
#include "core/error.h"
#include "core/safetensors.h"

using namespace attnlab;
using namespace attnlab::test;

namespace {


std::string halves(std::initializer_list<std::uint16_t> values) {
  std::string out;
  for (auto v : values) out += le16(v);
  return out;
}

std::string words(std::initializer_list<std::uint32_t> values) {
  std::string out;
  for (auto v : values) out += le32(v);
  return out;
}

// A safetensors file: u64 LE header length, `json` (padded with spaces to a multiple of 8 when
// `pad`), then `data`.
std::string st_file(const std::string& json, const std::string& data, bool pad = true) {
  std::string header = json;
  if (pad) header.append((8 - header.size() % 8) % 8, ' ');
  return le64(header.size()) + header + data;
}

// Exact equality that also tells -0 from +0 and accepts NaN for NaN.
bool same_value(float actual, float expected) {
  if (std::isnan(expected)) return std::isnan(actual);
  return actual == expected && std::signbit(actual) == std::signbit(expected);
}

// A hand-built file with one tensor of each dtype, stored out of name order with a 2-byte gap,
// an unpadded (odd-length) header and metadata.
std::string hand_built_file() {
  const std::string json =
      R"({"w32":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
      R"("__metadata__":{"format":"pt","note":"hand-built"},)"
      R"("h16":{"shape":[3,4],"dtype":"F16","data_offsets":[16,40]},)"
      R"("b16":{"data_offsets":[42,54],"dtype":"BF16","shape":[6]}})";
  const std::string f32 = words({0x3F800000u, 0xC0200000u, 0x3EA00000u, 0x80000000u});
  const std::string f16 = halves({0x3C00, 0xC000, 0x0001, 0x8001, 0x03FF, 0x0400,  //
                                  0x7BFF, 0x7C00, 0xFC00, 0x7E00, 0x8000, 0x3555});
  const std::string gap = "\xAA\xBB";
  const std::string bf16 = halves({0x3F80, 0x4049, 0xC2F7, 0x7F80, 0x0001, 0xFF80});
  return st_file(json, f32 + f16 + gap + bf16, /*pad=*/false);
}

}  // namespace

class TestSafetensors : public QObject {
  Q_OBJECT

 private slots:
  void parses_hand_built_f32_f16_bf16();
  void parses_rank_0_and_zero_size();
  void serialize_layout();
  void serialize_without_metadata_has_no_metadata_key();
  void serialize_pads_header_to_multiple_of_8();
  void round_trip_is_bit_identical();
  void refuses_malformed_files_data();
  void refuses_malformed_files();
  void header_over_100_mb_is_refused_without_reading_it();
  void huge_declared_shape_in_small_file_is_format_error();
  void missing_file_is_io_error();
  void write_into_missing_folder_is_io_error();
  void refused_write_keeps_existing_file();
};

void TestSafetensors::parses_hand_built_f32_f16_bf16() {
  const std::string bytes = hand_built_file();
  QTemporaryDir dir;
  const QString path = dir.filePath("hand.safetensors");
  write_raw(path, bytes);

  for (const SafetensorsFile& file : {parse_safetensors(bytes, "hand.safetensors"), read_safetensors(path.toStdString())}) {
    QCOMPARE(file.tensors.size(), std::size_t(3));
    QCOMPARE(file.metadata.size(), std::size_t(2));
    QCOMPARE(file.metadata.at("format"), std::string("pt"));
    QCOMPARE(file.metadata.at("note"), std::string("hand-built"));

    const Tensor& w = file.tensors.at("w32");
    QCOMPARE(w.shape(), (Shape{2, 2}));
    const float w_expected[] = {1.0f, -2.5f, 0.3125f, -0.0f};
    for (int i = 0; i < 4; ++i) QVERIFY2(same_value(w.data()[i], w_expected[i]), qPrintable(QString::number(i)));

    const Tensor& h = file.tensors.at("h16");
    QCOMPARE(h.shape(), (Shape{3, 4}));
    const float inf = std::numeric_limits<float>::infinity();
    const float h_expected[] = {1.0f,
                                -2.0f,
                                std::ldexp(1.0f, -24),     // smallest subnormal
                                -std::ldexp(1.0f, -24),
                                std::ldexp(1023.0f, -24),  // largest subnormal
                                std::ldexp(1.0f, -14),     // smallest normal
                                65504.0f,                  // largest finite
                                inf,
                                -inf,
                                std::numeric_limits<float>::quiet_NaN(),
                                -0.0f,
                                0.333251953125f};
    for (int i = 0; i < 12; ++i) {
      QVERIFY2(same_value(h.data()[i], h_expected[i]),
               qPrintable(QString("F16 element %1: %2").arg(i).arg(double(h.data()[i]), 0, 'g', 17)));
    }

    const Tensor& b = file.tensors.at("b16");
    QCOMPARE(b.shape(), (Shape{6}));
    const float b_expected[] = {1.0f, 3.140625f, -123.5f, inf, std::ldexp(1.0f, -133), -inf};
    for (int i = 0; i < 6; ++i) {
      QVERIFY2(same_value(b.data()[i], b_expected[i]), qPrintable(QString("BF16 element %1").arg(i)));
    }
  }
}

void TestSafetensors::parses_rank_0_and_zero_size() {
  const std::string json =
      R"({"scalar":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"
      R"("empty":{"dtype":"F16","shape":[0,3],"data_offsets":[4,4]}})";
  const SafetensorsFile file = parse_safetensors(st_file(json, words({0x42C80000u})), "small.safetensors");
  QCOMPARE(file.tensors.at("scalar").shape(), Shape{});
  QCOMPARE(file.tensors.at("scalar").data()[0], 100.0f);
  QCOMPARE(file.tensors.at("empty").shape(), (Shape{0, 3}));
  QCOMPARE(file.tensors.at("empty").size(), std::int64_t(0));
  QVERIFY(file.metadata.empty());
}

void TestSafetensors::serialize_layout() {
  SafetensorsFile file;
  file.tensors.emplace("beta", Tensor::from_data({2}, std::vector<float>{4.0f, -1.0f}.data(), 2));
  file.tensors.emplace("alpha", Tensor::from_data({3, 1}, std::vector<float>{1.0f, 0.5f, -2.5f}.data(), 3));
  file.metadata["source"] = "test";
  const std::string bytes = serialize_safetensors(file);

  QVERIFY(bytes.size() >= 8);
  std::uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= std::uint64_t(static_cast<unsigned char>(bytes[i])) << (8 * i);
  QCOMPARE(n % 8, std::uint64_t(0));
  QCOMPARE(bytes.size(), std::size_t(8 + n + 20));
  const std::string text = bytes.substr(8, n);
  const std::size_t last_brace = text.rfind('}');
  QCOMPARE(text.substr(last_brace + 1), std::string(n - last_brace - 1, ' '));

  using nlohmann::json;
  const json header = json::parse(text);
  QCOMPARE(header.size(), std::size_t(3));
  QVERIFY(header.at("alpha") == json({{"dtype", "F32"}, {"shape", {3, 1}}, {"data_offsets", {0, 12}}}));  // sorted: alpha first
  QVERIFY(header.at("beta") == json({{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {12, 20}}}));
  QVERIFY(header.at("__metadata__") == json({{"source", "test"}}));
  // Names appear in sorted order in the text too.
  QVERIFY(text.find("\"alpha\"") < text.find("\"beta\""));

  const std::string data = words({0x3F800000u, 0x3F000000u, 0xC0200000u, 0x40800000u, 0xBF800000u});
  QCOMPARE(bytes.substr(8 + n), data);
}

void TestSafetensors::serialize_without_metadata_has_no_metadata_key() {
  SafetensorsFile file;
  file.tensors.emplace("x", Tensor({1}));
  const std::string bytes = serialize_safetensors(file);
  QVERIFY(bytes.find("__metadata__") == std::string::npos);
  QVERIFY(parse_safetensors(bytes, "x.safetensors").metadata.empty());
}

void TestSafetensors::serialize_pads_header_to_multiple_of_8() {
  // Names of 1..8 characters make JSON texts of eight consecutive lengths, so every amount of
  // padding from 0 to 7 spaces occurs.
  for (int length = 1; length <= 8; ++length) {
    SafetensorsFile file;
    file.tensors.emplace(std::string(static_cast<std::size_t>(length), 'n'), Tensor({1}));
    const std::string bytes = serialize_safetensors(file);
    std::uint64_t n = 0;
    for (int i = 0; i < 8; ++i) n |= std::uint64_t(static_cast<unsigned char>(bytes[i])) << (8 * i);
    QCOMPARE(n % 8, std::uint64_t(0));
    QCOMPARE(bytes.size(), std::size_t(8 + n + 4));
    const std::string text = bytes.substr(8, n);
    const std::size_t end = text.rfind('}') + 1;
    QCOMPARE(text.substr(end), std::string(n - end, ' '));
    QVERIFY(n - end < 8);
  }
}

void TestSafetensors::round_trip_is_bit_identical() {
  SafetensorsFile file;
  const std::vector<std::pair<std::string, Shape>> shapes = {
      {"rank0", {}}, {"rank1", {7}}, {"rank2", {3, 5}}, {"rank3", {2, 3, 4}}, {"rank4", {2, 1, 3, 2}},
      {"zero", {0}}, {"zero3", {3, 0, 2}}, {"layers.0.attn.q_proj.weight", {4, 4}}};
  std::uint32_t seed = 1;
  for (const auto& [name, shape] : shapes) file.tensors.emplace(name, patterned_tensor(shape, seed++));
  file.metadata = {{"format", "pt"}, {"comment", "quotes \" and \\ and ünïcode"}};

  const auto check = [&](const SafetensorsFile& back) {
    QCOMPARE(back.metadata, file.metadata);
    QCOMPARE(back.tensors.size(), file.tensors.size());
    for (const auto& [name, tensor] : file.tensors) {
      QVERIFY2(back.tensors.count(name), name.c_str());
      QVERIFY2(same_bits(back.tensors.at(name), tensor), name.c_str());
    }
  };
  check(parse_safetensors(serialize_safetensors(file), "memory.safetensors"));

  QTemporaryDir dir;
  const QString path = dir.filePath("t.safetensors");
  write_safetensors(path.toStdString(), file);
  check(read_safetensors(path.toStdString()));
  QCOMPARE(read_raw(path), serialize_safetensors(file));
}

void TestSafetensors::refuses_malformed_files_data() {
  QTest::addColumn<QByteArray>("bytes");
  QTest::addColumn<QString>("problem");
  const auto row = [](const char* tag, const std::string& bytes, const char* problem) {
    QTest::newRow(tag) << qbytes(bytes) << problem;
  };
  // One F32 tensor 'a' of shape [2] at [0, 8], with an entry body that each row varies.
  const auto one = [](const std::string& entry, std::size_t data_bytes = 8) {
    return st_file(R"({"a":)" + entry + "}", std::string(data_bytes, '\x01'));
  };
  const std::string good = one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})");

  row("empty file", "", "truncated");
  row("shorter than length field", good.substr(0, 5), "truncated");
  row("header cut", good.substr(0, 30), "exceeds the 22 bytes that follow it");
  row("header length larger than file", le64(1000) + "{}", "header length 1000 exceeds the 2 bytes");
  row("header length near 2^64", le64(0xFFFFFFFFFFFFFFF0ull) + "{}", "exceeds");
  row("invalid JSON", st_file(R"({"a": {"dtype": )", ""), "header is not valid JSON");
  row("JSON not UTF-8", st_file("{\"\xff\": 1}", ""), "header is not valid JSON");
  row("JSON with a raw newline in a string", st_file("{\"a\nb\": 1}", ""), "header is not valid JSON");
  row("JSON array", st_file("[1, 2]", ""), "header is JSON array, not an object");
  row("entry not object", one("3"), "tensor 'a' is described by number, not an object");
  row("missing field", one(R"({"dtype":"F32","shape":[2]})"), "tensor 'a' lacks the field 'data_offsets'");
  row("extra field", one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8],"foo":1})"),
      "tensor 'a' has an unexpected field 'foo'");
  row("dtype not string", one(R"({"dtype":4,"shape":[2],"data_offsets":[0,8]})"), "tensor 'a': dtype must be a string");
  row("unknown dtype I64", one(R"({"dtype":"I64","shape":[1],"data_offsets":[0,8]})"),
      "tensor 'a' has dtype 'I64'; AttnLab reads F32, F16 and BF16");
  row("shape not array", one(R"({"dtype":"F32","shape":"2","data_offsets":[0,8]})"), "tensor 'a': shape must be an array");
  row("fractional dimension", one(R"({"dtype":"F32","shape":[2.0],"data_offsets":[0,8]})"), "tensor 'a': shape must be");
  row("negative dimension", one(R"({"dtype":"F32","shape":[-2],"data_offsets":[0,8]})"),
      "tensor 'a': shape has a negative value -2");
  row("dimension beyond int64", one(R"({"dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,8]})"),
      "tensor 'a': shape has a value too large");
  row("three offsets", one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,4,8]})"), "data_offsets must be [begin, end]");
  row("negative offset", one(R"({"dtype":"F32","shape":[2],"data_offsets":[-8,0]})"), "data_offsets has a negative value");
  row("begin after end", one(R"({"dtype":"F32","shape":[2],"data_offsets":[8,0]})"), "begin after end");
  row("offsets past the end", one(R"({"dtype":"F32","shape":[2],"data_offsets":[4,12]})"),
      "tensor 'a' has data_offsets [4, 12] past the end of the data area (8 bytes)");
  row("data area cut", one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})", 5), "past the end of the data area (5 bytes)");
  row("wrong byte count for shape", one(R"({"dtype":"F32","shape":[3],"data_offsets":[0,8]})", 12),
      "tensor 'a' has shape [3] of F32 (12 bytes) but data_offsets [0, 8] span 8 bytes");
  row("wrong byte count for F16", one(R"({"dtype":"F16","shape":[2],"data_offsets":[0,8]})"), "(4 bytes) but data_offsets");
  row("bytes beyond 2^64", one(R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]})"),
      "(more than 2^64 bytes)");
  row("overlapping tensors",
      st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
              std::string(12, '\0')),
      "tensors 'a' [0, 8] and 'b' [4, 12] overlap");
  row("tensor inside another",
      st_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]}})",
              std::string(16, '\0')),
      "tensors 'a' [0, 16] and 'b' [8, 12] overlap");
  row("metadata not object", st_file(R"({"__metadata__":["x"]})", ""), "__metadata__ must be an object");
  row("metadata value not string", st_file(R"({"__metadata__":{"epoch":3}})", ""),
      "__metadata__ value of 'epoch' is number");
}

void TestSafetensors::refuses_malformed_files() {
  QFETCH(QByteArray, bytes);
  QFETCH(QString, problem);
  const QString message = message_of<FormatError>([&] { parse_safetensors(view(bytes), "bad.safetensors"); });
  QVERIFY2(!message.isNull(), "no FormatError thrown");
  QVERIFY2(message.startsWith("bad.safetensors: "), qPrintable(message));
  QVERIFY2(message.contains(problem), qPrintable(message));
  QVERIFY2(!message.contains('\n'), qPrintable(message));
}

void TestSafetensors::header_over_100_mb_is_refused_without_reading_it() {
  // A sparse file: an honest length field of 100 MB + 1 that the file does hold (as zeros).
  QTemporaryDir dir;
  const QString path = dir.filePath("big-header.safetensors");
  const std::uint64_t n = 100'000'001;
  write_raw(path, le64(n));
  QFile file(path);
  QVERIFY(file.resize(static_cast<qint64>(8 + n)));
  const QString message = message_of<FormatError>([&] { read_safetensors(path.toStdString()); });
  QVERIFY2(message.contains(path + ": header length 100000001 exceeds the 100 MB limit"), qPrintable(message));
}

void TestSafetensors::huge_declared_shape_in_small_file_is_format_error() {
  QTemporaryDir dir;
  const QString path = dir.filePath("huge.safetensors");
  write_raw(path, st_file(R"({"a":{"dtype":"F32","shape":[1000000000000],"data_offsets":[0,8]}})", std::string(8, '\0')));
  const QString message = message_of<FormatError>([&] { read_safetensors(path.toStdString()); });
  QVERIFY2(message.contains("tensor 'a' has shape [1000000000000] of F32 (4000000000000 bytes) but data_offsets [0, 8] span 8 bytes"),
           qPrintable(message));
}

void TestSafetensors::missing_file_is_io_error() {
  QTemporaryDir dir;
  const QString path = dir.filePath("absent.safetensors");
  const QString message = message_of<IoError>([&] { read_safetensors(path.toStdString()); });
  QVERIFY2(message.contains(path), qPrintable(message));
  QVERIFY2(message.contains(QString::fromLocal8Bit(std::strerror(ENOENT))), qPrintable(message));
}

void TestSafetensors::write_into_missing_folder_is_io_error() {
  QTemporaryDir dir;
  const QString path = dir.filePath("no/such/folder/t.safetensors");
  SafetensorsFile file;
  file.tensors.emplace("x", Tensor({2}));
  const QString message = message_of<IoError>([&] { write_safetensors(path.toStdString(), file); });
  QVERIFY2(message.contains(path), qPrintable(message));
  QVERIFY(!QFileInfo::exists(path));
}

void TestSafetensors::refused_write_keeps_existing_file() {
  QTemporaryDir dir;
  const QString path = dir.filePath("keep.safetensors");
  SafetensorsFile old_file;
  old_file.tensors.emplace("x", patterned_tensor({3}, 7));
  write_safetensors(path.toStdString(), old_file);
  const std::string old_bytes = read_raw(path);

  // A tensor named like the metadata key cannot be written; nothing at the target changes.
  SafetensorsFile bad;
  bad.tensors.emplace("__metadata__", Tensor({1}));
  QVERIFY_THROWS_EXCEPTION(ParamError, write_safetensors(path.toStdString(), bad));
  // Nor can a tensor whose storage does not match its shape.
  SafetensorsFile inconsistent;
  inconsistent.tensors.emplace("x", Tensor());
  QVERIFY_THROWS_EXCEPTION(ShapeError, write_safetensors(path.toStdString(), inconsistent));

  QCOMPARE(read_raw(path), old_bytes);
  QCOMPARE(QDir(dir.path()).entryList(QDir::Files | QDir::Hidden), QStringList{"keep.safetensors"});
}

QTEST_GUILESS_MAIN(TestSafetensors)
#include "test_safetensors.moc"
