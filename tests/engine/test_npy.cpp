// .npy reading and writing. Expected files are built byte by byte here (magic, header text,
// little-endian float bit patterns), independently of serialize_npy; written files must read
// back bit-identically; every malformed case must raise FormatError naming the problem.
#include <QtTest>

#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "byte_files.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/npy.h"

using namespace attnlab;
using namespace attnlab::test;

namespace {

// Float bit patterns and the values they stand for, as written by hand.
struct KnownFloat {
  std::uint32_t bits;
  float value;
};
const KnownFloat kKnown[] = {{0x3F800000u, 1.0f}, {0xC0200000u, -2.5f}, {0x3F000000u, 0.5f},
                             {0x40400000u, 3.0f}, {0x42C80000u, 100.0f}, {0x80000000u, -0.0f}};


// The first `count` known floats as little-endian bytes.
std::string known_data(std::size_t count) {
  std::string out;
  for (std::size_t i = 0; i < count; ++i) out += le32(kKnown[i % std::size(kKnown)].bits);
  return out;
}

// A .npy file: magic, version major.0, header length, `dict` padded with spaces and '\n' to a
// multiple of 64 (when `pad`), then `data`.
std::string npy_file(const std::string& dict, const std::string& data, int major = 1, bool pad = true) {
  const std::size_t preamble = major == 1 ? 10 : 12;
  std::string header = dict;
  if (pad) {
    while ((preamble + header.size() + 1) % 64 != 0) header += ' ';
    header += '\n';
  }
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += '\0';
  out += major == 1 ? le16(static_cast<std::uint16_t>(header.size())) : le32(static_cast<std::uint32_t>(header.size()));
  return out + header + data;
}

std::string canonical_dict(const std::string& shape) {
  return "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
}

std::int64_t element_count(const Shape& shape) {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

}  // namespace

class TestNpy : public QObject {
  Q_OBJECT

 private slots:
  void parses_hand_built_files_data();
  void parses_hand_built_files();
  void serialize_has_numpy_header_layout_data();
  void serialize_has_numpy_header_layout();
  void large_header_uses_version_2();
  void round_trip_is_bit_identical_data();
  void round_trip_is_bit_identical();
  void refuses_malformed_files_data();
  void refuses_malformed_files();
  void huge_declared_shape_in_small_file_is_format_error();
  void missing_file_is_io_error();
  void folder_is_io_error();
  void write_into_missing_folder_is_io_error();
  void failed_write_keeps_existing_file();
  void refused_tensor_keeps_existing_file();
};

void TestNpy::parses_hand_built_files_data() {
  QTest::addColumn<QByteArray>("bytes");
  QTest::addColumn<Shape>("shape");
  const auto add = [](const char* tag, const std::string& dict, const Shape& shape, int major = 1, bool pad = true) {
    const auto data = known_data(static_cast<std::size_t>(element_count(shape)));
    QTest::newRow(tag) << qbytes(npy_file(dict, data, major, pad)) << shape;
  };
  add("numpy 2x3", canonical_dict("(2, 3)"), {2, 3});
  add("keys reordered", "{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}", {2, 3});
  add("no spaces, no trailing comma", "{'descr':'<f4','fortran_order':False,'shape':(2,3)}", {2, 3});
  add("double quotes", "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (3, 2)}", {3, 2});
  add("spaces everywhere", "{ 'descr' : '<f4' ,\t'fortran_order' : False , 'shape' : ( 2 , 3 , ) , }", {2, 3});
  add("rank 1", canonical_dict("(6,)"), {6});
  add("rank 0", canonical_dict("()"), {});
  add("rank 3", canonical_dict("(1, 2, 3)"), {1, 2, 3});
  add("zero-size", canonical_dict("(0, 3)"), {0, 3});
  add("zero-size inner dim", canonical_dict("(2, 0, 5)"), {2, 0, 5});
  add("python 2 longs", canonical_dict("(2L, 3L)"), {2, 3});
  add("unpadded header", canonical_dict("(5,)"), {5}, 1, false);
  add("version 2.0", canonical_dict("(2, 3)"), {2, 3}, 2);
  add("version 3.0", canonical_dict("(3,)"), {3}, 3);
}

void TestNpy::parses_hand_built_files() {
  QFETCH(QByteArray, bytes);
  QFETCH(Shape, shape);
  const Tensor t = parse_npy(view(bytes), "hand.npy");
  QCOMPARE(t.shape(), shape);
  QCOMPARE(t.size(), element_count(shape));
  for (std::int64_t i = 0; i < t.size(); ++i) {
    const float expected = kKnown[static_cast<std::size_t>(i) % std::size(kKnown)].value;
    QCOMPARE(t.data()[i], expected);
    QCOMPARE(std::signbit(t.data()[i]), std::signbit(expected));  // -0.0 stays negative
  }

  // The same bytes through a real file.
  QTemporaryDir dir;
  const QString path = dir.filePath("hand.npy");
  write_raw(path, std::string(view(bytes)));
  QVERIFY(same_bits(read_npy(path.toStdString()), t));
}

void TestNpy::serialize_has_numpy_header_layout_data() {
  QTest::addColumn<Shape>("shape");
  QTest::addColumn<QString>("shape_text");
  QTest::newRow("2x3") << Shape{2, 3} << "(2, 3)";
  QTest::newRow("rank 1") << Shape{5} << "(5,)";
  QTest::newRow("rank 0") << Shape{} << "()";
  QTest::newRow("rank 4") << Shape{1, 2, 1, 3} << "(1, 2, 1, 3)";
  QTest::newRow("zero-size") << Shape{4, 0} << "(4, 0)";
}

void TestNpy::serialize_has_numpy_header_layout() {
  QFETCH(Shape, shape);
  QFETCH(QString, shape_text);
  Tensor t(shape);
  for (std::int64_t i = 0; i < t.size(); ++i) t.data()[i] = kKnown[static_cast<std::size_t>(i) % std::size(kKnown)].value;
  const std::string bytes = serialize_npy(t);

  QVERIFY(bytes.size() >= 10);
  QCOMPARE(bytes.substr(0, 6), std::string("\x93NUMPY"));
  QCOMPARE(int(bytes[6]), 1);  // version 1.0
  QCOMPARE(int(bytes[7]), 0);
  const std::size_t header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
  QCOMPARE((10 + header_len) % 64, std::size_t(0));
  QCOMPARE(bytes.size(), 10 + header_len + static_cast<std::size_t>(t.size()) * 4);

  const std::string header = bytes.substr(10, header_len);
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_text.toStdString() + ", }";
  QCOMPARE(header.substr(0, dict.size()), dict);
  QCOMPARE(header.back(), '\n');
  const std::string padding = header.substr(dict.size(), header.size() - dict.size() - 1);
  QCOMPARE(padding, std::string(padding.size(), ' '));
  QCOMPARE(bytes.substr(10 + header_len), known_data(static_cast<std::size_t>(t.size())));
}

void TestNpy::large_header_uses_version_2() {
  // 30000 dimensions of size 1 make a header of about 90 KB, too long for the u16 of version 1.0.
  const Tensor t = patterned_tensor(Shape(30000, 1));
  const std::string bytes = serialize_npy(t);
  QCOMPARE(int(bytes[6]), 2);
  QCOMPARE(int(bytes[7]), 0);
  std::uint32_t header_len = 0;
  for (int i = 0; i < 4; ++i) header_len |= std::uint32_t(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
  QVERIFY(header_len > 0xFFFF);
  QCOMPARE((12 + header_len) % 64, std::uint32_t(0));
  QCOMPARE(bytes[12 + header_len - 1], '\n');
  QCOMPARE(bytes.size(), std::size_t(12) + header_len + 4);
  QVERIFY(same_bits(parse_npy(bytes, "wide.npy"), t));
}

void TestNpy::round_trip_is_bit_identical_data() {
  QTest::addColumn<Shape>("shape");
  QTest::newRow("rank 0") << Shape{};
  QTest::newRow("rank 1") << Shape{7};
  QTest::newRow("rank 2") << Shape{3, 5};
  QTest::newRow("rank 3") << Shape{2, 3, 4};
  QTest::newRow("rank 4") << Shape{2, 1, 3, 2};
  QTest::newRow("zero-size") << Shape{0};
  QTest::newRow("zero-size rank 3") << Shape{3, 0, 2};
}

void TestNpy::round_trip_is_bit_identical() {
  QFETCH(Shape, shape);
  const Tensor t = patterned_tensor(shape);
  QVERIFY(same_bits(parse_npy(serialize_npy(t), "memory.npy"), t));

  QTemporaryDir dir;
  const std::string path = dir.filePath("t.npy").toStdString();
  write_npy(path, t);
  QVERIFY(same_bits(read_npy(path), t));
  QCOMPARE(read_raw(QString::fromStdString(path)), serialize_npy(t));
}

void TestNpy::refuses_malformed_files_data() {
  QTest::addColumn<QByteArray>("bytes");
  QTest::addColumn<QString>("problem");
  const auto row = [](const char* tag, const std::string& bytes, const char* problem) {
    QTest::newRow(tag) << qbytes(bytes) << problem;
  };
  const std::string six = known_data(6);
  const std::string good = npy_file(canonical_dict("(2, 3)"), six);

  row("empty file", "", "truncated header");
  row("cut inside magic", "\x93NUM", "truncated header");
  row("cut inside version", "\x93NUMPY\x01", "truncated header");
  row("cut inside header length", std::string("\x93NUMPY\x01\x00\x40", 9), "truncated header");
  row("header length beyond file", good.substr(0, 40), "truncated header");
  row("bad magic", "\x93NUMPZ" + good.substr(6), "magic");
  row("not npy at all", "PK\x03\x04 this is a zip file", "magic");
  row("version 4.0", "\x93NUMPY\x04" + good.substr(7), "unsupported .npy format version 4.0");
  row("version 1.1", "\x93NUMPY\x01\x01" + good.substr(8), "unsupported .npy format version 1.1");
  row("version 0.0", std::string("\x93NUMPY\x00\x00", 8) + good.substr(8), "unsupported .npy format version 0.0");
  row("truncated data", npy_file(canonical_dict("(1000000,)"), known_data(3)),
      "declares shape [1000000] (4000000 bytes of data) but only 12 bytes follow");
  row("one byte short", good.substr(0, good.size() - 1), "(24 bytes of data) but only 23 bytes follow");
  row("extra trailing bytes", npy_file(canonical_dict("(2,)"), known_data(3)), "4 extra bytes follow the data");
  row("float64", npy_file("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", known_data(6)),
      "has dtype '<f8'; AttnLab reads float32 '<f4'");
  row("big-endian float32", npy_file("{'descr': '>f4', 'fortran_order': False, 'shape': (6,), }", six),
      "has dtype '>f4'; AttnLab reads float32 '<f4'");
  row("int32", npy_file("{'descr': '<i4', 'fortran_order': False, 'shape': (6,), }", six), "has dtype '<i4'");
  row("structured dtype", npy_file("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,), }", six),
      "structured dtype");
  row("fortran order", npy_file("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", six), "Fortran order");
  row("missing shape", npy_file("{'descr': '<f4', 'fortran_order': False}", six), "malformed header dict");
  row("unknown key", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'extra': 1}", six),
      "unexpected or repeated key 'extra'");
  row("repeated key", npy_file("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", six),
      "unexpected or repeated key 'descr'");
  row("not a dict", npy_file("this is not a dict", six), "malformed header dict");
  row("unclosed tuple", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3}", six), "malformed header dict");
  row("missing colon", npy_file("{'descr' '<f4', 'fortran_order': False, 'shape': (2, 3)}", six), "malformed header dict");
  row("unclosed dict", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)", six), "malformed header dict");
  row("text after dict", npy_file(canonical_dict("(2, 3)") + " x", six), "malformed header dict");
  row("unterminated string", npy_file("{'descr: '<f4', 'fortran_order': False, 'shape': (2, 3)}", six), "malformed header dict");
  row("fractional dimension", npy_file(canonical_dict("(2.5,)"), six), "malformed header dict");
  row("boolean as string", npy_file("{'descr': '<f4', 'fortran_order': 'no', 'shape': (6,)}", six), "malformed header dict");
  row("negative dimension", npy_file(canonical_dict("(-1, 3)"), six), "negative dimension in shape [-1, 3]");
  row("dimension beyond int64", npy_file(canonical_dict("(1000000000000000000000000000000,)"), six), "too large");
  row("bytes beyond 2^64", npy_file(canonical_dict("(4294967296, 4294967296)"), six),
      "(more than 2^64 bytes of data) but only 24 bytes follow");
}

void TestNpy::refuses_malformed_files() {
  QFETCH(QByteArray, bytes);
  QFETCH(QString, problem);
  const QString message = message_of<FormatError>([&] { parse_npy(view(bytes), "bad.npy"); });
  QVERIFY2(!message.isNull(), "no FormatError thrown");
  QVERIFY2(message.startsWith("bad.npy: "), qPrintable(message));
  QVERIFY2(message.contains(problem), qPrintable(message));
  QVERIFY2(!message.contains('\n'), qPrintable(message));
}

void TestNpy::huge_declared_shape_in_small_file_is_format_error() {
  // 10**12 floats declared in a file of about 100 bytes: refused from the file size alone.
  QTemporaryDir dir;
  const QString path = dir.filePath("huge.npy");
  write_raw(path, npy_file(canonical_dict("(1000000000000,)"), known_data(4), 1, /*pad=*/false));
  QVERIFY(QFileInfo(path).size() <= 100);
  const QString message = message_of<FormatError>([&] { read_npy(path.toStdString()); });
  QVERIFY2(message.contains(path + ": declares shape [1000000000000] (4000000000000 bytes of data) but only 16 bytes follow"),
           qPrintable(message));
}

void TestNpy::missing_file_is_io_error() {
  QTemporaryDir dir;
  const QString path = dir.filePath("absent.npy");
  const QString message = message_of<IoError>([&] { read_npy(path.toStdString()); });
  QVERIFY2(message.contains(path), qPrintable(message));
  QVERIFY2(message.contains(QString::fromLocal8Bit(std::strerror(ENOENT))), qPrintable(message));
}

void TestNpy::folder_is_io_error() {
  QTemporaryDir dir;
  const QString message = message_of<IoError>([&] { read_npy(dir.path().toStdString()); });
  QVERIFY2(message.contains(dir.path()), qPrintable(message));
}

void TestNpy::write_into_missing_folder_is_io_error() {
  QTemporaryDir dir;
  const QString path = dir.filePath("no/such/folder/t.npy");
  const QString message = message_of<IoError>([&] { write_npy(path.toStdString(), patterned_tensor({2, 2})); });
  QVERIFY2(message.contains(path), qPrintable(message));
  QVERIFY(!QFileInfo::exists(path));
}

void TestNpy::failed_write_keeps_existing_file() {
  QTemporaryDir dir;
  const QString path = dir.filePath("keep.npy");
  const Tensor old_tensor = patterned_tensor({3, 4});
  write_npy(path.toStdString(), old_tensor);
  const std::string old_bytes = read_raw(path);

  // A writer that fails half-way through must leave the old file as it was, and no temporary.
  const auto failing_writer = [](std::ostream& out) {
    out << "partial garbage";
    throw IoError("simulated failure while writing");
  };
  QVERIFY_THROWS_EXCEPTION(IoError, write_file_atomically(path.toStdString(), failing_writer));
  QCOMPARE(read_raw(path), old_bytes);
  QCOMPARE(QDir(dir.path()).entryList(QDir::Files | QDir::Hidden), QStringList{"keep.npy"});
  QVERIFY(same_bits(read_npy(path.toStdString()), old_tensor));

  // A successful write replaces it.
  const Tensor new_tensor = patterned_tensor({5});
  write_npy(path.toStdString(), new_tensor);
  QVERIFY(same_bits(read_npy(path.toStdString()), new_tensor));
}

void TestNpy::refused_tensor_keeps_existing_file() {
  QTemporaryDir dir;
  const QString path = dir.filePath("keep.npy");
  write_npy(path.toStdString(), patterned_tensor({2}));
  const std::string old_bytes = read_raw(path);
  // A default Tensor has shape [] (one element) but no storage: not writable.
  QVERIFY_THROWS_EXCEPTION(ShapeError, write_npy(path.toStdString(), Tensor()));
  QCOMPARE(read_raw(path), old_bytes);
}

QTEST_GUILESS_MAIN(TestNpy)
#include "test_npy.moc"
