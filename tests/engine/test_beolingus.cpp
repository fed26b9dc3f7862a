// BEOLINGUS parsing (annotations, alternatives, synonyms, malformed lines, kinds), the
// deterministic train/valid/test split and the data folder, SentencePiece training from our code,
// and the word-by-word baseline. Expected values are written out by hand from the input lines.
#include <QTemporaryDir>
#include <QtTest>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

#include "test_support.h"
#include "text/sentencepiece_tokenizer.h"
#include "text/sentencepiece_trainer.h"
#include "train/beolingus.h"
#include "train/parallel_data.h"
#include "train/word_baseline.h"

using namespace attnlab;

namespace {

constexpr const char* kRealDictionary = "/usr/share/trans/de-en";

std::vector<TranslationPair> parse_text(const std::string& text, BeolingusStats* stats) {
  std::istringstream in(text);
  return parse_beolingus(in, stats);
}

std::string describe(const std::vector<TranslationPair>& pairs) {
  std::string text;
  for (const TranslationPair& p : pairs) text += "[" + p.de + " | " + p.en + " | " + pair_kind_name(p.kind) + "] ";
  return text;
}

#define EXPECT_PAIRS(actual, expected) \
  QVERIFY2((actual) == (expected), ("got " + describe(actual) + "\nwant " + describe(expected)).c_str())

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

using WordPairs = std::vector<std::pair<std::string, std::string>>;

// Plain German and English sentences for SentencePiece (about 2000 lines): 1000 "subject verb
// adjective noun." pairs, and German compounds against their English two-word nouns, twice each.
// Unigram training keeps only pieces the corpus uses, so it needs this many distinct words to
// reach 256 pieces.
std::vector<std::string> small_corpus() {
  const WordPairs subjects = {{"Wir", "We"},
                              {"Die Kinder", "The children"},
                              {"Unsere Nachbarn", "Our neighbours"},
                              {"Viele Leute", "Many people"},
                              {"Die Lehrer", "The teachers"},
                              {"Meine Eltern", "My parents"}};
  const WordPairs verbs = {
      {"sehen", "see"},      {"kaufen", "buy"},        {"suchen", "look for"}, {"finden", "find"},
      {"mögen", "like"},     {"brauchen", "need"},     {"tragen", "carry"},    {"vergessen", "forget"},
      {"verkaufen", "sell"}, {"reparieren", "repair"}, {"bemerken", "notice"}, {"zeichnen", "draw"},
      {"malen", "paint"},    {"zählen", "count"},      {"waschen", "wash"},    {"bauen", "build"},
      {"holen", "fetch"},    {"bestellen", "order"},   {"vermissen", "miss"},  {"beobachten", "watch"}};
  const WordPairs adjectives = {
      {"rote", "red"},         {"grüne", "green"},    {"blaue", "blue"},    {"gelbe", "yellow"},
      {"alte", "old"},         {"neue", "new"},       {"kleine", "small"},  {"große", "big"},
      {"schwere", "heavy"},    {"leichte", "light"},  {"billige", "cheap"}, {"teure", "expensive"},
      {"schöne", "beautiful"}, {"hässliche", "ugly"}, {"schnelle", "fast"}, {"langsame", "slow"},
      {"dunkle", "dark"},      {"helle", "bright"},   {"saubere", "clean"}, {"schmutzige", "dirty"}};
  const WordPairs nouns = {
      {"Häuser", "houses"},   {"Bäume", "trees"},      {"Autos", "cars"},     {"Bücher", "books"},
      {"Stühle", "chairs"},   {"Tische", "tables"},    {"Lampen", "lamps"},   {"Fahrräder", "bicycles"},
      {"Schlüssel", "keys"},  {"Taschen", "bags"},     {"Äpfel", "apples"},   {"Blumen", "flowers"},
      {"Vögel", "birds"},     {"Schiffe", "ships"},    {"Züge", "trains"},    {"Brücken", "bridges"},
      {"Fenster", "windows"}, {"Türen", "doors"},      {"Gläser", "glasses"}, {"Teller", "plates"},
      {"Kerzen", "candles"},  {"Koffer", "suitcases"}, {"Hüte", "hats"},      {"Schuhe", "shoes"},
      {"Uhren", "clocks"}};
  std::vector<std::string> corpus;
  for (std::size_t i = 0; i < 1000; ++i) {
    const auto& s = subjects[i % subjects.size()];
    const auto& v = verbs[(i / 6) % verbs.size()];
    const auto& a = adjectives[(i * 7) % adjectives.size()];
    const auto& n = nouns[(i * 11) % nouns.size()];
    corpus.push_back(s.first + " " + v.first + " " + a.first + " " + n.first + ".");
    corpus.push_back(s.second + " " + v.second + " " + a.second + " " + n.second + ".");
  }
  const WordPairs parts = {{"Haus", "house"},     {"Tür", "door"},     {"Garten", "garden"}, {"Schlüssel", "key"},
                           {"Fenster", "window"}, {"Wasser", "water"}, {"Feuer", "fire"},    {"Licht", "light"},
                           {"Straßen", "street"}, {"Bahn", "railway"}, {"Hof", "yard"},      {"Zimmer", "room"},
                           {"Küchen", "kitchen"}, {"Tisch", "table"},  {"Stuhl", "chair"},   {"Lampen", "lamp"}};
  for (std::size_t a = 0; a < parts.size(); ++a) {
    for (std::size_t b = 0; b < parts.size(); ++b) {
      if (a == b) continue;
      std::string second = parts[b].first;
      second[0] = static_cast<char>(second[0] - 'A' + 'a');  // all parts start with an ASCII capital
      for (int repeat = 0; repeat < 2; ++repeat) {
        corpus.push_back("Die " + parts[a].first + second + " ist neu.");
        corpus.push_back("The " + parts[a].second + " " + parts[b].second + " is new.");
      }
    }
  }
  return corpus;
}

}  // namespace

class TestBeolingus : public QObject {
  Q_OBJECT

 private slots:
  // ---- parsing -----------------------------------------------------------------------------------

  void annotations_are_stripped() {
    const std::string text =
        "Aal {m} (auf der Speisekarte) [cook.] | Aale {pl} :: eel (on a menu) [Br.] | eels\n"  // curly, square, gloss
        "Europäische Union {f} /EU/ :: European Union /EU/\n"                                  // /ABBR/
        "Kleinholz {n} <Brennhölzer> :: kindling <fire wood>\n"                                // <...>
        "etw. ausblenden {vt} [comp.] :: to hide {hid; hidden} sth.\n"                         // ';' inside {}
        "Grinsemännchen {n} /:-)/ :: smiley /:-)/\n"                                           // bracket in /ABBR/
        "Datenanalysator {m} :: data analyser [Br.]/analyzer [Am.]\n"                          // Br./Am. spelling
        "Theaterszene {f} :: theatre [Br.] / theater [Am.] scene\n"                       // ... inside a phrase
        "Was ist daran so   komisch? :: What’s so funny (about it)?\n"                         // gloss in a sentence
        "Straße {f}; Gasse {f} :: street; lane\n";
    BeolingusStats stats;
    const auto pairs = parse_text(text, &stats);
    const std::vector<TranslationPair> expected = {
        {"Aal", "eel", PairKind::word},
        {"Aale", "eels", PairKind::word},
        {"Europäische Union", "European Union", PairKind::phrase},
        {"Kleinholz", "kindling", PairKind::word},
        {"etw. ausblenden", "to hide sth.", PairKind::phrase},
        {"Grinsemännchen", "smiley", PairKind::word},
        {"Datenanalysator", "data analyser", PairKind::word},
        {"Theaterszene", "theatre scene", PairKind::word},
        {"Was ist daran so komisch?", "What’s so funny?", PairKind::sentence},
        {"Straße", "street", PairKind::word},
        {"Gasse", "lane", PairKind::word},
    };
    EXPECT_PAIRS(pairs, expected);
    QCOMPARE(stats.entries, std::int64_t{9});
    QCOMPARE(stats.skipped_lines(), std::int64_t{0});
    QCOMPARE(strip_annotations("  (elektrischer) Wasserkocher {m}  "), std::string("Wasserkocher"));
    QCOMPARE(strip_annotations("Ich …! ([Kindersprache], um etw. zu beanspruchen)"), std::string("Ich …!"));
    QCOMPARE(strip_annotations("in (small) change ."), std::string("in change."));
  }

  void alternatives_and_synonyms_pair_up() {
    const std::string text =
        // alternatives by position; synonyms by position when the counts match
        "Spielwürfel {m}; Würfel {m} | Spielwürfel {pl}; Würfel {pl} | Würfel spielen :: "
        "dice; die | dice | to play at dice\n"
        // uneven synonyms: every German with the first English, the first German with every English
        "komisch; lustig; spaßig {adj} :: funny\n"
        "Leidensgenosse {m}; Leidensgefährte {m} :: fellow sufferer; fellow in misery; companion in misfortune\n"
        // exact duplicates of earlier pairs are dropped
        "Würfel {m} :: die\n";
    BeolingusStats stats;
    const auto pairs = parse_text(text, &stats);
    const std::vector<TranslationPair> expected = {
        {"Spielwürfel", "dice", PairKind::word},
        {"Würfel", "die", PairKind::word},
        {"Würfel", "dice", PairKind::word},
        {"Würfel spielen", "to play at dice", PairKind::phrase},
        {"komisch", "funny", PairKind::word},
        {"lustig", "funny", PairKind::word},
        {"spaßig", "funny", PairKind::word},
        {"Leidensgenosse", "fellow sufferer", PairKind::word},
        {"Leidensgefährte", "fellow sufferer", PairKind::word},
        {"Leidensgenosse", "fellow in misery", PairKind::word},
        {"Leidensgenosse", "companion in misfortune", PairKind::word},
    };
    EXPECT_PAIRS(pairs, expected);
    // "Spielwürfel {pl}; Würfel {pl} :: dice" gives (Spielwürfel, dice) again; line 4 repeats (Würfel, die).
    QCOMPARE(stats.duplicate_pairs, std::int64_t{2});
    QCOMPARE(stats.entries, std::int64_t{4});
    QCOMPARE(stats.words, std::int64_t{10});
    QCOMPARE(stats.phrases, std::int64_t{1});
  }

  void malformed_lines_are_skipped_and_counted() {
    const std::string text =
        "# Version :: devel\n"
        "\n"
        "keine Trennung hier\n"                                       // no " :: "
        "a :: b :: c\n"                                               // two separators
        "Tisch {m} | Tische {pl} :: table\n"                          // 2 alternatives against 1
        "(nur eine Glosse) :: [Br.]\n"                                // nothing left
        "? :: National Institute\n"                                   // a side without letters
        "Wasser aufsetzen / Wasser kochen :: to put the kettle on\n"  // inline alternatives
        "Folie {f} (Dicke: > 0,25 mm) :: sheet\n"                     // '>' unbalances the brackets
        "Hund {m} :: dog\r\n";                                        // CRLF line end: fine
    BeolingusStats stats;
    const auto pairs = parse_text(text, &stats);  // never throws for a bad line
    const std::vector<TranslationPair> expected = {{"Hund", "dog", PairKind::word}};
    EXPECT_PAIRS(pairs, expected);
    QCOMPARE(stats.lines, std::int64_t{10});
    QCOMPARE(stats.comment_lines, std::int64_t{1});
    QCOMPARE(stats.blank_lines, std::int64_t{1});
    QCOMPARE(stats.skipped_no_separator, std::int64_t{2});
    QCOMPARE(stats.skipped_alternative_counts, std::int64_t{1});
    QCOMPARE(stats.skipped_empty, std::int64_t{3});
    QCOMPARE(stats.dropped_empty_side, std::int64_t{2});
    QCOMPARE(stats.dropped_inline_alternatives, std::int64_t{1});
    QCOMPARE(stats.skipped_unbalanced_brackets, std::int64_t{1});
    QCOMPARE(stats.entries, std::int64_t{1});
    QCOMPARE(stats.lines, stats.comment_lines + stats.blank_lines + stats.entries + stats.skipped_lines());
  }

  void kinds_follow_the_rules() {
    QCOMPARE(classify_pair("Aal", "eel"), PairKind::word);
    QCOMPARE(classify_pair("Ich habe keine Zeit.", "I have no time."), PairKind::sentence);
    QCOMPARE(classify_pair("Übermäßige Hitze schadet!", "Excessive heat harms!"),
             PairKind::sentence);                                                                  // Ü is uppercase
    QCOMPARE(classify_pair("2 hoch 3 ist 8.", "2 to the power of 3 is 8."), PairKind::sentence);   // digit start
    QCOMPARE(classify_pair("Er kam.", "He came."), PairKind::phrase);                              // 2 words
    QCOMPARE(classify_pair("wenn ich mich nicht irre.", "if I am not wrong."), PairKind::phrase);  // lowercase
    QCOMPARE(classify_pair("Ich habe keine Zeit.", "no time"), PairKind::phrase);                  // English open
    QCOMPARE(classify_pair("Wenn ich mich nicht irre …", "If I’m not mistaken …"), PairKind::phrase);
    QCOMPARE(classify_pair("Gewinde schneiden in etw.", "to tap sth."), PairKind::phrase);  // placeholder
    QCOMPARE(classify_pair("Das gehört jdm./etw.", "That belongs to sb./sth."), PairKind::phrase);
    QCOMPARE(classify_pair("das A und O", "the nuts and bolts"), PairKind::phrase);
    PairKind kind = PairKind::word;
    QVERIFY(parse_pair_kind("sentence", &kind));
    QCOMPARE(kind, PairKind::sentence);
    QVERIFY(!parse_pair_kind("Sentence", &kind));
  }

  void missing_dictionary_names_the_package() {
    EXPECT_ERROR(IoError, read_beolingus("/nonexistent/de-en", nullptr), "/nonexistent/de-en");
    EXPECT_ERROR(IoError, read_beolingus("/nonexistent/de-en", nullptr), "trans-de-en");
  }

  // ---- split -------------------------------------------------------------------------------------

  void fnv_and_normalisation_match_references() {
    // Published FNV-1a 64-bit test vectors.
    QCOMPARE(fnv1a_64(""), std::uint64_t{0xcbf29ce484222325ull});
    QCOMPARE(fnv1a_64("a"), std::uint64_t{0xaf63dc4c8601ec8cull});
    QCOMPARE(fnv1a_64("foobar"), std::uint64_t{0x85944171f73967e8ull});
    QCOMPARE(normalise_for_split("  Der  HUND\tbellt "), std::string("der hund bellt"));
    QCOMPARE(normalise_for_split("Ärger IM Büro"), std::string("Ärger im büro"));  // only ASCII is lowercased
    // The bucket rule, written out for a few texts.
    for (const std::string de :
         {"Ich habe keine Zeit.", "Der Hund bellt laut.", "Aal", "das A und O", "Wir gehen heute."}) {
      const std::uint64_t bucket = fnv1a_64(normalise_for_split(de)) % 100;
      const Split as_sentence = bucket < 6 ? Split::test : bucket < 9 ? Split::valid : Split::train;
      const Split as_phrase = bucket >= 6 && bucket < 9 ? Split::valid : Split::train;
      QCOMPARE(assign_split({de, "x.", PairKind::sentence}), as_sentence);
      QCOMPARE(assign_split({de, "x", PairKind::phrase}), as_phrase);
      QCOMPARE(assign_split({de, "x", PairKind::word}), as_phrase);
    }
  }

  void split_is_deterministic_disjoint_and_keeps_test_out_of_training() {
    std::vector<TranslationPair> pairs;
    for (int i = 0; i < 2000; ++i) {
      const std::string n = std::to_string(i);
      pairs.push_back(
          {"Der Satz Nummer " + n + " ist hier.", "Sentence number " + n + " is here.", PairKind::sentence});
      pairs.push_back({"Wort" + n, "word" + n, PairKind::word});
      pairs.push_back({"die Wendung " + n, "the phrase " + n, PairKind::phrase});
    }
    // A test sentence's English given to a word, and its German (in another case) to a phrase:
    // both would otherwise land in train.
    std::string test_de, test_en;
    for (const TranslationPair& p : pairs) {
      if (assign_split(p) == Split::test) {
        test_de = p.de;
        test_en = p.en;
        break;
      }
    }
    QVERIFY(!test_de.empty());
    TranslationPair leak_en{"Leckwort", test_en, PairKind::word};
    for (int k = 0; assign_split(leak_en) != Split::train; ++k) leak_en.de = "Leckwort" + std::to_string(k);
    const TranslationPair leak_de{"DER  " + test_de.substr(4), "an open phrase", PairKind::phrase};
    pairs.push_back(leak_en);
    pairs.push_back(leak_de);
    pairs.push_back({"Tab\tim Text", "tab", PairKind::phrase});

    const ParallelData data = split_parallel_data(pairs);
    QCOMPARE(data.stats.dropped_tab_or_newline, std::int64_t{1});
    // Deterministic: the same input gives the same split.
    const ParallelData again = split_parallel_data(pairs);
    QVERIFY(again.train == data.train && again.valid == data.valid && again.test == data.test);
    // Counts add up and match the vectors.
    QCOMPARE(data.stats.total(Split::train), static_cast<std::int64_t>(data.train.size()));
    QCOMPARE(data.stats.total(Split::valid), static_cast<std::int64_t>(data.valid.size()));
    QCOMPARE(data.stats.total(Split::test), static_cast<std::int64_t>(data.test.size()));
    QCOMPARE(data.stats.total(Split::train) + data.stats.total(Split::valid) + data.stats.total(Split::test) +
                 data.stats.removed_train_test_overlap + data.stats.removed_valid_test_overlap +
                 data.stats.removed_train_valid_overlap,
             static_cast<std::int64_t>(pairs.size()) - 1);
    // About 6 % of 2000 sentences in test and 3 % in valid (binomial: 120 ± 11, 60 ± 8).
    QVERIFY2(data.test.size() > 80 && data.test.size() < 160, std::to_string(data.test.size()).c_str());
    QVERIFY(data.stats.count(Split::valid, PairKind::sentence) > 30);
    // Test holds sentences only.
    for (const TranslationPair& p : data.test) QCOMPARE(p.kind, PairKind::sentence);
    // No normalised German in two splits; no test side anywhere in train or valid.
    std::set<std::string> train_de, valid_de, test_de_set, test_en_set;
    for (const auto& p : data.train) train_de.insert(normalise_for_split(p.de));
    for (const auto& p : data.valid) valid_de.insert(normalise_for_split(p.de));
    for (const auto& p : data.test) {
      test_de_set.insert(normalise_for_split(p.de));
      test_en_set.insert(normalise_for_split(p.en));
    }
    for (const std::string& de : test_de_set) QVERIFY(!train_de.count(de) && !valid_de.count(de));
    for (const std::string& de : valid_de) QVERIFY(!train_de.count(de));
    for (const auto* split : {&data.train, &data.valid}) {
      for (const TranslationPair& p : *split) {
        QVERIFY(!test_de_set.count(normalise_for_split(p.de)));
        QVERIFY(!test_en_set.count(normalise_for_split(p.en)));
      }
    }
    // The two planted leaks were removed from train.
    QVERIFY(std::find(data.train.begin(), data.train.end(), leak_en) == data.train.end());
    QVERIFY(std::find(data.train.begin(), data.train.end(), leak_de) == data.train.end());
    QVERIFY(data.stats.removed_train_test_overlap >= 2);
  }

  void data_folder_is_written_and_read_back() {
    QTemporaryDir dir;
    const std::string folder = (dir.path() + "/data/nested").toStdString();  // created when missing
    ParallelData data;
    data.train = {{"Hund", "dog", PairKind::word},
                  {"der große Hund", "the big dog", PairKind::phrase},
                  {"Der Hund bellt laut.", "The dog barks loudly.", PairKind::sentence}};
    data.valid = {{"Katze", "cat", PairKind::word},
                  {"Die Katze schläft ruhig.", "The cat sleeps quietly.", PairKind::sentence}};
    data.test = {{"Ich habe keine Zeit.", "I have no time.", PairKind::sentence},
                 {"Das Mädchen liest ein Buch.", "The girl reads a book.", PairKind::sentence}};
    write_prepared_data(folder, data, nlohmann::json{{"note", "hand-made"}});
    const std::string train_text = read_file(folder + "/train.tsv");
    QCOMPARE(train_text, std::string("Hund\tdog\tword\nder große Hund\tthe big dog\tphrase\n"
                                     "Der Hund bellt laut.\tThe dog barks loudly.\tsentence\n"));
    QVERIFY(read_pairs_tsv(folder + "/train.tsv") == data.train);
    QVERIFY(read_pairs_tsv(folder + "/valid.tsv") == data.valid);
    QCOMPARE(read_lines(folder + "/test.de"),
             (std::vector<std::string>{"Ich habe keine Zeit.", "Das Mädchen liest ein Buch."}));
    QCOMPARE(read_lines(folder + "/test.en"), (std::vector<std::string>{"I have no time.", "The girl reads a book."}));
    QCOMPARE(read_lines(folder + "/valid.de"),
             (std::vector<std::string>{"Die Katze schläft ruhig."}));  // sentences only
    QCOMPARE(read_lines(folder + "/valid.en"), (std::vector<std::string>{"The cat sleeps quietly."}));
    QCOMPARE(nlohmann::json::parse(read_file(folder + "/stats.json"))["note"].get<std::string>(),
             std::string("hand-made"));
    data.train.push_back({"Zeile\nzwei", "line", PairKind::phrase});
    EXPECT_ERROR(ParamError, write_prepared_data(folder, data, {}), "tab or line break");
  }

  void tsv_read_errors_name_the_line() {
    QTemporaryDir dir;
    const std::string path = (dir.path() + "/train.tsv").toStdString();
    const auto write = [&](const std::string& text) { std::ofstream(path, std::ios::binary) << text; };
    write("Hund\tdog\tword\nKatze\tcat\tword\nMaus\tmouse\n");
    EXPECT_ERROR(FormatError, read_pairs_tsv(path), path + ":3: expected 3 tab-separated fields");
    write("Hund\tdog\tword\nKatze\tcat\tnoun\n");
    EXPECT_ERROR(FormatError, read_pairs_tsv(path), path + ":2: unknown kind 'noun'");
    write("\tdog\tword\n");
    EXPECT_ERROR(FormatError, read_pairs_tsv(path), path + ":1: empty German or English text");
    EXPECT_ERROR(IoError, read_pairs_tsv(path + ".missing"), ".missing' does not exist");
  }

  // ---- the real dictionary -----------------------------------------------------------------------

  void real_dictionary_gives_sensible_counts() {
    if (!std::filesystem::exists(kRealDictionary))
      QSKIP("/usr/share/trans/de-en is not installed (Debian package trans-de-en)");
    BeolingusStats stats;
    const auto pairs = read_beolingus(kRealDictionary, &stats);
    QVERIFY(stats.lines > 150000);
    QCOMPARE(stats.lines, stats.comment_lines + stats.blank_lines + stats.entries + stats.skipped_lines());
    QVERIFY2(stats.skipped_lines() * 100 < stats.lines, std::to_string(stats.skipped_lines()).c_str());  // < 1 %
    QCOMPARE(static_cast<std::int64_t>(pairs.size()), stats.pairs());
    QVERIFY(stats.words > stats.phrases && stats.phrases > stats.sentences && stats.sentences > 10000);
    // Line 14 of the file: "Aalbestand {m} | Aalbestände {pl} :: eel stock | eel stocks".
    QVERIFY(std::find(pairs.begin(), pairs.end(), TranslationPair{"Aalbestände", "eel stocks", PairKind::word}) !=
            pairs.end());
    for (const TranslationPair& p : pairs) {
      QVERIFY(p.de.find_first_of("{}[]<>\t\n") == std::string::npos &&
              p.en.find_first_of("{}[]<>\t\n") == std::string::npos);
    }
    const ParallelData data = split_parallel_data(pairs);
    QVERIFY2(data.test.size() >= 1000, std::to_string(data.test.size()).c_str());
    QVERIFY(data.stats.count(Split::valid, PairKind::sentence) >= 400);
    QVERIFY(data.stats.total(Split::train) > 10 * data.stats.total(Split::valid));
    std::set<std::string> test_de, test_en;
    for (const auto& p : data.test) {
      QCOMPARE(p.kind, PairKind::sentence);
      test_de.insert(normalise_for_split(p.de));
      test_en.insert(normalise_for_split(p.en));
    }
    for (const auto& p : data.train) {
      QVERIFY(!test_de.count(normalise_for_split(p.de)) && !test_en.count(normalise_for_split(p.en)));
    }
  }

  // ---- SentencePiece ----------------------------------------------------------------------------

  void sentencepiece_trains_with_fixed_special_ids_and_round_trips() {
    QTemporaryDir dir;
    const std::string folder = dir.path().toStdString();
    const std::vector<std::string> corpus = small_corpus();
    SentencePieceTrainOptions options;
    options.vocab_size = 256;
    options.seed = 7;
    const SentencePieceTrainResult result = train_sentencepiece(corpus, folder, options);
    QCOMPARE(result.model_path, folder + "/spm.model");
    QCOMPARE(result.sentences, static_cast<std::int64_t>(corpus.size()));
    const SentencePieceTokenizer t(result.model_path);
    QCOMPARE(t.vocab_size(), 256);
    QCOMPARE(t.pad_id(), 0);
    QCOMPARE(t.unk_id(), 1);
    QCOMPARE(t.bos_id(), 2);
    QCOMPARE(t.eos_id(), 3);
    const std::vector<std::string> vocab = read_lines(result.vocab_path);
    QCOMPARE(vocab.size(), std::size_t{256});
    QCOMPARE(vocab[0].substr(0, vocab[0].find('\t')), std::string("<pad>"));
    QCOMPARE(vocab[1].substr(0, vocab[1].find('\t')), std::string("<unk>"));
    QCOMPARE(vocab[2].substr(0, vocab[2].find('\t')), std::string("<s>"));
    QCOMPARE(vocab[3].substr(0, vocab[3].find('\t')), std::string("</s>"));
    // Plain sentences, seen and unseen, come back byte for byte (umlauts and ß included).
    for (const std::string s : {"Die Kinder mögen große Äpfel.", "Many people wash dirty cars.",
                                "Wir bauen schöne Brücken über das Wasser.", "The garden door is new."}) {
      const std::vector<std::int32_t> ids = t.encode_ids(s);
      QVERIFY(!ids.empty());
      for (const std::int32_t id : ids) QVERIFY(id > 3 && id < 256);  // no unk, no specials
      QCOMPARE(t.decode(ids), std::string(s));
    }
    // Special ids decode to nothing; ids outside the vocabulary are refused.
    std::vector<std::int32_t> framed = t.encode_ids("Die Haustür ist neu.");
    framed.insert(framed.begin(), t.bos_id());
    framed.push_back(t.eos_id());
    framed.push_back(t.pad_id());
    QCOMPARE(t.decode(framed), std::string("Die Haustür ist neu."));
    EXPECT_ERROR(ParamError, t.decode({4, 256}), "token id 256 at position 1 is outside the vocabulary 0..255");
    EXPECT_ERROR(ParamError, t.decode({-1}), "token id -1");
    // The encode() pieces agree with encode_ids().
    const std::string s = "Meine Eltern kaufen teure Uhren.";
    const auto tokens = t.encode(s);
    const auto ids = t.encode_ids(s);
    QCOMPARE(tokens.size(), ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) QCOMPARE(tokens[i].id, ids[i]);
  }

  void sentencepiece_is_deterministic() {
    QTemporaryDir dir;
    const std::string a = (dir.path() + "/a").toStdString(), b = (dir.path() + "/b").toStdString();
    std::filesystem::create_directories(a);
    std::filesystem::create_directories(b);
    SentencePieceTrainOptions options;
    options.vocab_size = 300;
    train_sentencepiece(small_corpus(), a, options);
    train_sentencepiece(small_corpus(), b, options);
    const std::string model_a = read_file(a + "/spm.model");
    QVERIFY(!model_a.empty());
    QVERIFY(model_a == read_file(b + "/spm.model"));
    QVERIFY(read_file(a + "/spm.vocab") == read_file(b + "/spm.vocab"));
  }

  void sentencepiece_errors_are_clear() {
    QTemporaryDir dir;
    const std::string folder = dir.path().toStdString();
    SentencePieceTrainOptions options;
    options.vocab_size = 100;
    EXPECT_ERROR(ParamError, train_sentencepiece(small_corpus(), folder, options),
                 "vocabulary size 100: allowed 256..32000");
    options.vocab_size = 40000;
    EXPECT_ERROR(ParamError, train_sentencepiece(small_corpus(), folder, options), "allowed 256..32000");
    options.vocab_size = 1000;
    EXPECT_ERROR(IoError, train_sentencepiece(small_corpus(), folder + "/missing", options),
                 "/missing' does not exist");
    EXPECT_ERROR(ParamError, train_sentencepiece({}, folder, options), "corpus is empty");
    // Too many pieces for this corpus: the library's own message comes through.
    options.vocab_size = 32000;
    EXPECT_ERROR(ParamError, train_sentencepiece(small_corpus(), folder, options), "SentencePiece training failed: ");
    QVERIFY(!std::filesystem::exists(folder + "/spm.model"));
  }

  // ---- word baseline ----------------------------------------------------------------------------

  void baseline_translates_word_by_word() {
    const std::vector<TranslationPair> pairs = {
        {"ich", "I", PairKind::word},
        {"habe", "to have", PairKind::word},  // "to " is stripped
        {"keine", "no", PairKind::word},
        {"Zeit", "period", PairKind::word},
        {"Zeit", "time", PairKind::word},
        {"Zeit", "to time", PairKind::word},  // time: 2 against 1
        {"Hund", "hound", PairKind::word},
        {"Hund", "dog", PairKind::word},                     // tie: the first seen
        {"keine Zeit", "no time at all", PairKind::phrase},  // not a word pair
    };
    const WordBaseline baseline = WordBaseline::build(pairs);
    QCOMPARE(baseline.size(), std::size_t{5});
    QCOMPARE(baseline.translate("Ich habe keine Zeit."), std::string("I have no time."));  // "Ich" → "ich"
    // The first word is looked up lowercased first; inside the sentence the noun wins.
    const WordBaseline nouns = WordBaseline::build({{"Ich", "ego", PairKind::word}, {"ich", "I", PairKind::word},
                                                    {"Zeit", "time", PairKind::word}, {"zeit", "during", PairKind::word}});
    QCOMPARE(nouns.translate("Ich Zeit ich."), std::string("I time I."));
    QCOMPARE(nouns.translate("Zeit ich."), std::string("During I."));
    QCOMPARE(baseline.translate("zeit, Hund!"), std::string("Time, hound!"));              // "zeit" → "Zeit"
    QCOMPARE(baseline.translate("Ich habe „keine“ Zeit (heute)."), std::string("I have „no“ time (heute)."));
    QCOMPARE(baseline.translate("über  Hund-Zeit"), std::string("Über Hund-Zeit"));  // unknown words copied
    QCOMPARE(baseline.translate(""), std::string());
    QVERIFY(!baseline.lookup("Katze").has_value());

    QTemporaryDir dir;
    const std::string path = (dir.path() + "/baseline.tsv").toStdString();
    baseline.save_tsv(path);
    QCOMPARE(read_file(path),
             std::string("Hund\thound\nZeit\ttime\nhabe\thave\nich\tI\nkeine\tno\n"));  // bytewise order
    const WordBaseline loaded = WordBaseline::load_tsv(path);
    QCOMPARE(loaded.translate("Ich habe keine Zeit."), std::string("I have no time."));
    std::ofstream(path, std::ios::binary) << "Hund\tdog\nKatze cat\n";
    EXPECT_ERROR(FormatError, WordBaseline::load_tsv(path), path + ":2: expected 'German<TAB>English'");
    EXPECT_ERROR(IoError, WordBaseline::load_tsv(path + ".missing"), "does not exist");
  }
};

QTEST_GUILESS_MAIN(TestBeolingus)
#include "test_beolingus.moc"
