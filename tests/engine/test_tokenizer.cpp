// Word and SentencePiece tokenizers: ids, and byte offsets that map tokens back to the text.
#include <QtTest>
#include <fstream>
#include <sentencepiece_trainer.h>

#include "text/sentencepiece_tokenizer.h"
#include "text/word_tokenizer.h"
#include "test_support.h"

using namespace attnlab;

class TestTokenizer : public QObject {
  Q_OBJECT

 private slots:
  void word_tokenizer_splits_words_and_punctuation() {
    const WordTokenizer t(8192);
    const std::string text = "The animal didn't cross, it was  tired.";
    const std::vector<Token> tokens = t.encode(text);
    std::vector<std::string> words;
    for (const Token& tok : tokens) {
      words.push_back(tok.text);
      QCOMPARE(text.substr(tok.begin, tok.end - tok.begin), tok.text);  // offsets point back to the text
      QVERIFY(tok.id >= WordTokenizer::kFirstWordId && tok.id < 8192);
    }
    const std::vector<std::string> expected = {"The", "animal", "didn't", "cross", ",", "it", "was", "tired", "."};
    QCOMPARE(words, expected);
    QCOMPARE(t.encode("the")[0].id, t.encode("THE")[0].id);  // case-insensitive ids
    QVERIFY(t.encode("cat")[0].id != t.encode("dog")[0].id);
    QVERIFY(t.encode("").empty());
    QVERIFY(t.encode(" \n\t ").empty());
  }

  void word_tokenizer_keeps_utf8_words_whole() {
    const WordTokenizer t(100);
    const std::string text = "Das Mädchen liest — schön!";
    const auto tokens = t.encode(text);
    QCOMPARE(tokens.size(), std::size_t{6});
    QCOMPARE(tokens[1].text, std::string("Mädchen"));
    QCOMPARE(tokens[1].begin, std::size_t{4});
    QCOMPARE(tokens[1].end, std::size_t{4 + 8});  // "ä" is two bytes
    QCOMPARE(tokens[3].text, std::string("—"));     // Unicode punctuation is a token of its own
    QCOMPARE(tokens[4].text, std::string("schön"));
    QCOMPARE(tokens[5].text, std::string("!"));
    const auto quoted = t.encode("„Ja“, sagte er\u00a0laut");  // German quotes, no-break space
    QCOMPARE(quoted.size(), std::size_t{7});
    QCOMPARE(quoted[0].text, std::string("„"));
    QCOMPARE(quoted[2].text, std::string("“"));
    QCOMPARE(quoted[6].text, std::string("laut"));
  }

  void sentencepiece_model_trained_here_round_trips() {
    QTemporaryDir dir;
    const std::string corpus = (dir.path() + "/corpus.txt").toStdString();
    {
      std::ifstream in(std::string(ATTNLAB_SOURCE_DIR) + "/assets/examples/long_paragraph.txt");
      const std::string paragraph((std::istreambuf_iterator<char>(in)), {});
      QVERIFY(!paragraph.empty());
      std::ofstream out(corpus);
      for (int i = 0; i < 20; ++i) out << paragraph << "\n";
    }
    const std::string prefix = (dir.path() + "/tiny").toStdString();
    const auto status = sentencepiece::SentencePieceTrainer::Train(
        "--input=" + corpus + " --model_prefix=" + prefix +
        " --vocab_size=120 --model_type=unigram --character_coverage=1.0 --hard_vocab_limit=false"
        " --minloglevel=2");
    QVERIFY2(status.ok(), status.ToString().c_str());
    const SentencePieceTokenizer t(prefix + ".model");
    QVERIFY(t.vocab_size() > 20 && t.vocab_size() <= 120);
    const std::string text = "Attention grows with the square of its length.";
    const auto tokens = t.encode(text);
    QVERIFY(tokens.size() > 5);
    std::string rebuilt;
    for (const Token& tok : tokens) {
      QVERIFY(tok.id >= 0 && tok.id < t.vocab_size());
      QVERIFY(tok.begin <= tok.end && tok.end <= text.size());
      rebuilt += text.substr(tok.begin, tok.end - tok.begin);
    }
    QCOMPARE(rebuilt, text);  // byte ranges cover the text (spaces belong to the following piece)
    QVERIFY(make_tokenizer(prefix + ".model", 1000)->describe().find("SentencePiece") != std::string::npos);
    EXPECT_ERROR(ParamError, make_tokenizer(prefix + ".model", 10), "pieces but the model's vocabulary holds 10");
  }

  void bad_sentencepiece_files_give_clear_errors() {
    EXPECT_ERROR(IoError, SentencePieceTokenizer missing("/nonexistent/x.model"), "/nonexistent/x.model' does not exist");
    QTemporaryDir dir;
    const std::string junk = (dir.path() + "/junk.model").toStdString();
    std::ofstream(junk) << "this is not a model";
    EXPECT_ERROR(FormatError, SentencePieceTokenizer loaded(junk), "cannot be loaded");
  }
};

QTEST_GUILESS_MAIN(TestTokenizer)
#include "test_tokenizer.moc"
