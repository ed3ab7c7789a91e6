// tests/integration/framing_test.cpp: request framing, timeouts, keep-alive fairness, listening.
// SPDX-License-Identifier: Apache-2.0
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Timespan.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/edge/body_reader.h"
#include "core/edge/config.h"
#include "core/edge/edge_server.h"
#include "edge_fixture.h"
#include "test_http.h"

namespace anm::test {
namespace {

using edge::EdgeConfig;
using edge::EdgeServer;
using Fields = std::vector<std::pair<std::string, std::string>>;

constexpr size_t kTestMaxBody = 4096;

struct Hook {
  std::string id;
  std::string token;
};

// Everything the peer sends until it closes (or 10 s pass).
std::string readAll(Poco::Net::StreamSocket& socket) {
  socket.setReceiveTimeout(Poco::Timespan(10, 0));
  std::string out;
  char buffer[65536];
  for (;;) {
    int n = 0;
    try {
      n = socket.receiveBytes(buffer, sizeof(buffer));
    } catch (const Poco::Net::ConnectionResetException&) {
      break;
    }
    if (n <= 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  return out;
}

// Sends `bytes`, half-closes, and returns every byte of the answer.
std::string exchangeAll(uint16_t port, const std::string& bytes, bool halfClose = true) {
  Poco::Net::StreamSocket socket(Poco::Net::SocketAddress("127.0.0.1", port));
  socket.sendBytes(bytes.data(), static_cast<int>(bytes.size()));
  if (halfClose) socket.shutdownSend();
  return readAll(socket);
}

int statusOf(const std::string& answer) {
  if (answer.size() < 12 || answer.compare(0, 5, "HTTP/") != 0) return 0;
  return std::stoi(answer.substr(9, 3));
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

EdgeConfig baseConfig(const std::string& dataDir) {
  EdgeConfig config = loopbackEdgeConfig(dataDir);
  config.maxBodyBytes = kTestMaxBody;
  config.maxThreads = 8;
  return config;
}

class FramingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/anm-framing-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }

  void TearDown() override {
    server_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void startServer(EdgeConfig config) {
    server_ = std::make_unique<EdgeServer>(config);
    server_->start();
    port_ = server_->port();
  }

  void startServer() { startServer(baseConfig(dir_ + "/data")); }

  Hook createHook() {
    const auto r = request(port_, "POST", "/api/v1/hooks", "{}");
    EXPECT_EQ(r.status, 201) << r.body;
    return Hook{jsonField(r.body, "id"), jsonField(r.body, "token")};
  }

  Poco::JSON::Object::Ptr json(const std::string& text) {
    Poco::JSON::Parser parser;
    return parser.parse(text).extract<Poco::JSON::Object::Ptr>();
  }

  size_t storedEvents(const Hook& hook) {
    const auto list = apiRequest(port_, "GET", "/api/v1/hooks/" + hook.id + "/events", hook.token);
    return json(list.body)->getArray("events")->size();
  }

  // The stored events' ids, oldest first.
  std::vector<std::string> eventIds(const Hook& hook) {
    const auto list = apiRequest(port_, "GET", "/api/v1/hooks/" + hook.id + "/events", hook.token);
    const auto events = json(list.body)->getArray("events");
    std::vector<std::string> ids;
    for (size_t i = 0; i < events->size(); ++i) {
      ids.push_back(events->getObject(static_cast<unsigned>(i))->getValue<std::string>("id"));
    }
    return ids;
  }

  std::string storedBody(const Hook& hook, const std::string& id) {
    return apiRequest(port_, "GET", "/api/v1/hooks/" + hook.id + "/events/" + id + "/body",
                      hook.token)
        .body;
  }

  Fields storedHeaders(const Hook& hook, const std::string& id) {
    const auto event = json(
        apiRequest(port_, "GET", "/api/v1/hooks/" + hook.id + "/events/" + id, hook.token).body);
    Fields out;
    const auto headers = event->getArray("headers");
    for (size_t i = 0; i < headers->size(); ++i) {
      const auto field = headers->getArray(static_cast<unsigned>(i));
      out.emplace_back(field->getElement<std::string>(0), field->getElement<std::string>(1));
    }
    return out;
  }

  std::string ingestHead(const Hook& hook, const std::string& fields) {
    return "POST /h/" + hook.id + " HTTP/1.1\r\nHost: x\r\n" + fields + "\r\n";
  }

  std::string dir_;
  std::unique_ptr<EdgeServer> server_;
  uint16_t port_ = 0;
};

// --- 1. One edge per port and per data directory --------------------------------------------

TEST_F(FramingTest, SecondEdgeOnTheSamePortFailsWithAddressInUse) {
  startServer();
  EdgeConfig second = baseConfig(dir_ + "/other");
  second.listenPort = port_;
  EdgeServer other(second);
  try {
    other.start();
    FAIL() << "a second edge started on port " << port_;
  } catch (const edge::StartError& e) {
    EXPECT_EQ(e.exitCode(), 69);
    EXPECT_NE(std::string(e.what()).find("already in use"), std::string::npos) << e.what();
  }
  EXPECT_EQ(request(port_, "GET", "/healthz").body, "ok");
}

TEST_F(FramingTest, SecondEdgeOnTheSameDataDirIsRefusedNamingDirAndPid) {
  startServer();
  EdgeServer other(baseConfig(dir_ + "/data"));
  try {
    other.start();
    FAIL() << "a second edge started on the same data directory";
  } catch (const edge::StartError& e) {
    const std::string message = e.what();
    EXPECT_EQ(e.exitCode(), 75);
    EXPECT_NE(message.find(dir_ + "/data"), std::string::npos) << message;
    EXPECT_NE(message.find("pid " + std::to_string(getpid())), std::string::npos) << message;
  }

  // The lock goes with the edge that held it.
  server_->stop();
  EdgeServer after(baseConfig(dir_ + "/data"));
  EXPECT_NO_THROW(after.start());
}

// --- The binary as a process: exit codes and shutdown output ---------------------------------

class EdgeProcess {
 public:
  EdgeProcess(const std::string& dir, std::vector<std::string> args) {
    static int serial = 0;
    err_ = dir + "/err" + std::to_string(++serial) + ".log";
    args.insert(args.begin(), ANM_EDGE_BIN);
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(fd, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }

  ~EdgeProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  // Exit code after at most 20 s, -1 if it is still running.
  int wait() {
    int status = 0;
    for (int i = 0; i < 2000; ++i) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }

  void terminate() { kill(pid_, SIGTERM); }

  std::string err() const {
    std::ifstream in(err_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  std::string err_;
  pid_t pid_ = -1;
};

TEST_F(FramingTest, SecondEdgeProcessExits69OnTakenPortAnd75OnLockedDataDir) {
  EdgeProcess first(dir_, {"--listen", "127.0.0.1:0", "--data-dir", dir_ + "/d1", "--port-file",
                           dir_ + "/port", "--plugin-dir", ANM_TEST_PLUGIN_DIR});
  const uint16_t port = waitForPortFile(dir_ + "/port");
  ASSERT_GT(port, 0);

  EdgeProcess samePort(dir_, {"--listen", "127.0.0.1:" + std::to_string(port), "--data-dir",
                              dir_ + "/d2", "--plugin-dir", ANM_TEST_PLUGIN_DIR});
  EXPECT_EQ(samePort.wait(), 69) << samePort.err();
  EXPECT_NE(samePort.err().find("Address already in use"), std::string::npos) << samePort.err();

  EdgeProcess sameDir(dir_, {"--listen", "127.0.0.1:0", "--data-dir", dir_ + "/d1", "--plugin-dir",
                             ANM_TEST_PLUGIN_DIR});
  EXPECT_EQ(sameDir.wait(), 75) << sameDir.err();
  EXPECT_NE(sameDir.err().find("data_dir " + dir_ + "/d1 is in use by another edge (pid "),
            std::string::npos)
      << sameDir.err();
  EXPECT_EQ(request(port, "GET", "/healthz").body, "ok");
}

// Two data directories naming one SQLite file would hand out the same event ids twice; the
// second edge is refused on the file itself and the first goes on serving.
TEST_F(FramingTest, SecondEdgeOnTheSameSqliteFileExits75) {
  const std::string config = dir_ + "/shared.properties";
  std::ofstream(config) << "store = sqlite:" << dir_ << "/shared.db\n";
  EdgeProcess first(dir_, {"--config", config, "--listen", "127.0.0.1:0", "--data-dir",
                           dir_ + "/d1", "--port-file", dir_ + "/port", "--plugin-dir",
                           ANM_TEST_PLUGIN_DIR});
  const uint16_t port = waitForPortFile(dir_ + "/port");
  ASSERT_GT(port, 0) << first.err();

  EdgeProcess second(dir_, {"--config", config, "--listen", "127.0.0.1:0", "--data-dir",
                            dir_ + "/d2", "--plugin-dir", ANM_TEST_PLUGIN_DIR});
  EXPECT_EQ(second.wait(), 75) << second.err();
  EXPECT_NE(second.err().find("store " + dir_ + "/shared.db is in use by another edge"),
            std::string::npos)
      << second.err();
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/d2")) << "the refused edge made its data_dir";
  EXPECT_EQ(request(port, "GET", "/healthz").body, "ok");
}

TEST_F(FramingTest, ShutdownPrintsOnlyTheEdgesOwnLogLines) {
  EdgeProcess edge(
      dir_, {"--listen", "127.0.0.1:0", "--data-dir", dir_ + "/d", "--port-file", dir_ + "/port",
             "--plugin-dir", ANM_TEST_PLUGIN_DIR, "--log-level", "debug"});
  const uint16_t port = waitForPortFile(dir_ + "/port");
  ASSERT_GT(port, 0);
  EXPECT_EQ(request(port, "GET", "/healthz").body, "ok");
  edge.terminate();
  ASSERT_EQ(edge.wait(), 0) << edge.err();

  const std::string err = edge.err();
  EXPECT_NE(err.find("edge stopped"), std::string::npos) << err;
  const std::regex ours(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} [A-Za-z]+ anm\.[a-z_.]+: .*$)");
  std::istringstream lines(err);
  std::string line;
  while (std::getline(lines, line)) {
    EXPECT_TRUE(std::regex_match(line, ours)) << "foreign line: " << line;
  }
}

// --- 2. Idle keep-alive connections give their thread up ------------------------------------

TEST_F(FramingTest, IdleKeepAliveConnectionsYieldTheirThreadsToAWaitingRequest) {
  EdgeConfig config = baseConfig(dir_ + "/data");
  config.maxThreads = 2;
  startServer(config);

  // Two kept-alive connections, each idle after one answered request, hold both threads.
  std::vector<std::unique_ptr<Poco::Net::StreamSocket>> idle;
  for (int i = 0; i < 2; ++i) {
    idle.push_back(
        std::make_unique<Poco::Net::StreamSocket>(Poco::Net::SocketAddress("127.0.0.1", port_)));
    const std::string get = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    idle.back()->sendBytes(get.data(), static_cast<int>(get.size()));
    const auto r = readResponse(*idle.back());
    ASSERT_EQ(r.status, 200);
    ASSERT_NE(r.header("Connection"), "close");
  }

  // The keep-alive timeout is 15 s; the waiting request must not wait for it.
  const auto start = std::chrono::steady_clock::now();
  const auto third = request(port_, "GET", "/healthz");
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(third.body, "ok");
  EXPECT_LT(elapsed, std::chrono::seconds(2));

  // At least one idle connection was closed to make room, with nothing lost on it.
  int closed = 0;
  for (auto& socket : idle) {
    socket->setReceiveTimeout(Poco::Timespan(0, 200000));
    try {
      char byte = 0;
      if (socket->receiveBytes(&byte, 1) == 0) ++closed;
    } catch (const Poco::TimeoutException&) {
      // Still open: the other connection made the room.
    }
  }
  EXPECT_GE(closed, 1);
}

// --- 3. Stalled uploads time out --------------------------------------------------------------

TEST_F(FramingTest, StalledUploadsAre408WithinTheTimeoutWhileOthersAreServed) {
  EdgeConfig config = baseConfig(dir_ + "/data");
  config.maxThreads = 2;
  config.httpTimeout = std::chrono::milliseconds(500);
  startServer(config);
  const Hook hook = createHook();

  // As many stalled uploads as there are threads: two body bytes of a hundred.
  std::vector<std::unique_ptr<Poco::Net::StreamSocket>> stalled;
  for (int i = 0; i < 2; ++i) {
    stalled.push_back(
        std::make_unique<Poco::Net::StreamSocket>(Poco::Net::SocketAddress("127.0.0.1", port_)));
    const std::string bytes = ingestHead(hook, "Content-Length: 100\r\n") + "ab";
    stalled.back()->sendBytes(bytes.data(), static_cast<int>(bytes.size()));
  }

  // Another client is served once the stalled ones are timed out (POCO waited 60 s).
  const auto start = std::chrono::steady_clock::now();
  const auto other = request(port_, "POST", "/h/" + hook.id, "fine");
  EXPECT_EQ(other.status, 200) << other.body;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));

  for (auto& socket : stalled) {
    const std::string answer = readAll(*socket);
    EXPECT_EQ(statusOf(answer), 408) << answer;
  }
  EXPECT_EQ(storedEvents(hook), 1u);
}

TEST_F(FramingTest, StalledHeadIs408) {
  EdgeConfig config = baseConfig(dir_ + "/data");
  config.httpTimeout = std::chrono::milliseconds(300);
  startServer(config);
  Poco::Net::StreamSocket socket(Poco::Net::SocketAddress("127.0.0.1", port_));
  const std::string part = "POST /h/x HTTP/1.1\r\nHost: x\r\nX-Half";
  socket.sendBytes(part.data(), static_cast<int>(part.size()));
  EXPECT_EQ(statusOf(readAll(socket)), 408);
}

TEST_F(FramingTest, TimeoutSettingHasDocumentedBounds) {
  EXPECT_EQ(edge::parseConfig({}, "/x").httpTimeout, std::chrono::milliseconds(10000));
  EXPECT_EQ(edge::parseConfig({{"http.timeout_ms", "100"}}, "/x").httpTimeout,
            std::chrono::milliseconds(edge::kMinHttpTimeoutMs));
  EXPECT_EQ(edge::parseConfig({{"http.timeout_ms", "600000"}}, "/x").httpTimeout,
            std::chrono::milliseconds(edge::kMaxHttpTimeoutMs));
  EXPECT_THROW(edge::parseConfig({{"http.timeout_ms", "99"}}, "/x"), edge::ConfigError);
  EXPECT_THROW(edge::parseConfig({{"http.timeout_ms", "600001"}}, "/x"), edge::ConfigError);
  EXPECT_TRUE(edge::isKnownConfigKey("http.timeout_ms"));
}

// --- 4. Content-Length and Transfer-Encoding --------------------------------------------------

TEST_F(FramingTest, DifferingContentLengthsAre400AndStoreNothing) {
  startServer();
  const Hook hook = createHook();
  const std::string answer =
      exchangeAll(port_, ingestHead(hook, "Content-Length: 2\r\nContent-Length: 5\r\n") + "hello");
  EXPECT_EQ(statusOf(answer), 400) << answer;
  EXPECT_NE(answer.find("different values"), std::string::npos) << answer;
  EXPECT_EQ(storedEvents(hook), 0u);
}

TEST_F(FramingTest, IdenticalRepeatedContentLengthsAreAccepted) {
  startServer();
  const Hook hook = createHook();
  const auto r = rawExchange(
      port_, ingestHead(hook, "Content-Length: 5\r\nContent-Length: 5\r\nConnection: close\r\n") +
                 "hello");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(storedBody(hook, jsonField(r.body, "id")), "hello");
}

TEST_F(FramingTest, ContentLengthThatIsNotOneToEighteenDigitsIs400) {
  startServer();
  const Hook hook = createHook();
  for (const std::string value : {"+2", "-2", "2 2", "1,2", "0x2", "abc", "2.0",
                                  "0000000000000000002", "99999999999999999999"}) {
    const std::string answer =
        exchangeAll(port_, ingestHead(hook, "Content-Length: " + value + "\r\n") + "hi");
    EXPECT_EQ(statusOf(answer), 400) << value << ": " << answer;
    EXPECT_NE(answer.find("content-length must be 1 to 18 digits"), std::string::npos)
        << value << ": " << answer;
  }

  // Eighteen digits are a number like any other (and over the body limit here).
  EXPECT_EQ(statusOf(exchangeAll(
                port_, ingestHead(hook, "Content-Length: 000000000000000002\r\n") + "hi")),
            200);
  EXPECT_EQ(statusOf(exchangeAll(
                port_, ingestHead(hook, "Content-Length: 100000000000000000\r\n") + "hi")),
            413);
  EXPECT_EQ(storedEvents(hook), 1u);
}

TEST_F(FramingTest, TransferEncodingWithContentLengthIs400OnEveryRoute) {
  startServer();
  const Hook hook = createHook();
  const std::string framing = "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n";
  for (const std::string& target :
       std::vector<std::string>{"/h/" + hook.id, "/nowhere", "/api/v1/hooks"}) {
    const std::string answer = exchangeAll(port_, "POST " + target + " HTTP/1.1\r\nHost: x\r\n" +
                                                      framing + "\r\n5\r\nhello\r\n0\r\n\r\n");
    EXPECT_EQ(statusOf(answer), 400) << target << ": " << answer;
    EXPECT_NE(answer.find("both transfer-encoding and content-length"), std::string::npos)
        << answer;
  }
  EXPECT_EQ(storedEvents(hook), 0u);
}

TEST_F(FramingTest, TransferEncodingOtherThanOneChunkedIs501) {
  startServer();
  const Hook hook = createHook();
  const std::string body = "5\r\nhello\r\n0\r\n\r\n";
  for (const std::string fields :
       {"Transfer-Encoding: gzip, chunked\r\n", "Transfer-Encoding: chunked, chunked\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", "Transfer-Encoding: \r\n"}) {
    const std::string answer = exchangeAll(port_, ingestHead(hook, fields) + body);
    EXPECT_EQ(statusOf(answer), 501) << fields << answer;
  }
  EXPECT_EQ(storedEvents(hook), 0u);

  // The coding name is case-insensitive (RFC 9112 section 7).
  EXPECT_EQ(statusOf(exchangeAll(port_, ingestHead(hook, "Transfer-Encoding: Chunked\r\n") + body)),
            200);
}

TEST_F(FramingTest, TransferEncodingInHttp10RequestIs400) {
  startServer();
  const Hook hook = createHook();
  const std::string answer =
      exchangeAll(port_, "POST /h/" + hook.id +
                             " HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "5\r\nhello\r\n0\r\n\r\n");
  EXPECT_EQ(statusOf(answer), 400) << answer;
  EXPECT_EQ(storedEvents(hook), 0u);
}

// --- 4. Chunked bodies, decoded strictly ------------------------------------------------------

TEST_F(FramingTest, ChunkedBodyEndingBeforeItsLastChunkIs400AndStoresNothing) {
  startServer();
  const Hook hook = createHook();
  const std::string head = ingestHead(hook, "Transfer-Encoding: chunked\r\n");
  for (const std::string cut : {"5\r\nhello\r\n", "5\r\nhello", "5\r\nhel", "5\r\n", "5", "",
                                "5\r\nhello\r\n0\r\n", "5\r\nhello\r\n0\r\nX-T: 1\r\n"}) {
    const std::string answer = exchangeAll(port_, head + cut);
    EXPECT_EQ(statusOf(answer), 400) << "cut after \"" << cut << "\": " << answer;
    EXPECT_NE(answer.find("the chunked body ended before its last chunk"), std::string::npos)
        << answer;
  }
  EXPECT_EQ(storedEvents(hook), 0u);
}

TEST_F(FramingTest, MalformedChunksAre400AndStoreNothing) {
  startServer();
  const Hook hook = createHook();
  const std::string head = ingestHead(hook, "Transfer-Encoding: chunked\r\n");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"zz\r\nhello\r\n0\r\n\r\n", "chunk size is not 1 to 16 hex digits"},
      {"-5\r\nhello\r\n0\r\n\r\n", "chunk size is not 1 to 16 hex digits"},
      {"\r\nhello\r\n0\r\n\r\n", "chunk size is not 1 to 16 hex digits"},
      {"00000000000000005\r\nhello\r\n0\r\n\r\n", "chunk size is not 1 to 16 hex digits"},
      {"5 x\r\nhello\r\n0\r\n\r\n", "chunk size is not 1 to 16 hex digits"},
      {"5\nhello\r\n0\r\n\r\n", "is not ended by CRLF"},
      {"5\r\nhelloXY0\r\n\r\n", "not followed by CRLF"},
      {"5\r\nhello\n0\r\n\r\n", "not followed by CRLF"},
      {"5\r\nhello\r\n0\r\nno colon\r\n\r\n", "malformed trailer field"},
      {"5\r\nhello\r\n0\r\nX-T : 1\r\n\r\n", "malformed trailer field"},
      {"5;" + std::string(4100, 'e') + "\r\nhello\r\n0\r\n\r\n", "longer than 4096 bytes"},
  };
  for (const auto& [body, error] : cases) {
    const std::string answer = exchangeAll(port_, head + body);
    EXPECT_EQ(statusOf(answer), 400) << body.substr(0, 40) << ": " << answer;
    EXPECT_NE(answer.find(error), std::string::npos) << body.substr(0, 40) << ": " << answer;
  }
  EXPECT_EQ(storedEvents(hook), 0u);
}

TEST_F(FramingTest, ChunkExtensionsAreIgnoredAndTrailersDropped) {
  startServer();
  const Hook hook = createHook();
  const std::string binary("\xff\x00\xfe", 3);
  const std::string answer =
      exchangeAll(port_, ingestHead(hook, "Transfer-Encoding: chunked\r\nX-Before: 1\r\n") +
                             "5;name=value\r\nhello\r\n3 ; a=\"b\xff\"\r\n" + binary +
                             "\r\n0000000000000000\r\n" + "X-Trailer: t\r\nX-Other: o\r\n\r\n");
  ASSERT_EQ(statusOf(answer), 200) << answer;
  const std::string id = jsonField(answer.substr(answer.find("\r\n\r\n") + 4), "id");
  EXPECT_EQ(storedBody(hook, id), "hello" + binary);
  const Fields headers = storedHeaders(hook, id);
  EXPECT_EQ(headers, (Fields{{"Host", "x"}, {"Transfer-Encoding", "chunked"}, {"X-Before", "1"}}));
}

TEST_F(FramingTest, TrailerFieldsAreLimitedLikeHeaderFields) {
  startServer();
  const Hook hook = createHook();
  const std::string head = ingestHead(hook, "Transfer-Encoding: chunked\r\n") + "1\r\na\r\n0\r\n";
  std::string fields;
  for (int i = 0; i < 100; ++i) fields += "X-T" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(statusOf(exchangeAll(port_, head + fields + "\r\n")), 200);
  const std::string answer = exchangeAll(port_, head + fields + "X-Last: v\r\n\r\n");
  EXPECT_EQ(statusOf(answer), 400) << answer;
  EXPECT_NE(answer.find("more than 100 trailer fields"), std::string::npos) << answer;

  const size_t longest = edge::kMaxTrailerLineBytes - 2 - 5;
  EXPECT_EQ(statusOf(exchangeAll(port_, head + "X-V: " + std::string(longest, 'v') + "\r\n\r\n")),
            200);
  const std::string over =
      exchangeAll(port_, head + "X-V: " + std::string(longest + 1, 'v') + "\r\n\r\n");
  EXPECT_EQ(statusOf(over), 400) << over;
  EXPECT_NE(over.find("longer than"), std::string::npos) << over;
  EXPECT_EQ(storedEvents(hook), 2u);
}

TEST_F(FramingTest, ChunkedBodyLimitIs413AtOneByteOver) {
  startServer();
  const Hook hook = createHook();
  const std::string head = ingestHead(hook, "Transfer-Encoding: chunked\r\n");
  const std::string half(kTestMaxBody / 2, 'h');
  const std::string chunk = "800\r\n" + half + "\r\n";
  EXPECT_EQ(statusOf(exchangeAll(port_, head + chunk + chunk + "0\r\n\r\n")), 200);
  EXPECT_EQ(statusOf(exchangeAll(port_, head + chunk + chunk + "1\r\nx\r\n0\r\n\r\n")), 413);
  EXPECT_EQ(statusOf(exchangeAll(port_, head + "ffffffffffffffff\r\nx\r\n0\r\n\r\n")), 413);
  EXPECT_EQ(storedEvents(hook), 1u);
}

TEST_F(FramingTest, ContentLengthBodyCutShortIs400AndStoresNothing) {
  startServer();
  const Hook hook = createHook();
  const std::string answer =
      exchangeAll(port_, ingestHead(hook, "Content-Length: 10\r\n") + "short");
  EXPECT_EQ(statusOf(answer), 400) << answer;
  EXPECT_EQ(storedEvents(hook), 0u);
}

TEST_F(FramingTest, BodyTheHandlerDidNotReadClosesTheConnection) {
  startServer();

  // The body of the first request must not be served as a second request.
  const std::string inner = "GET /healthz HTTP/1.1\r\nHost: y\r\n\r\n";
  const std::string answer = exchangeAll(port_,
                                         "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                                             std::to_string(inner.size()) + "\r\n\r\n" + inner,
                                         false);
  EXPECT_EQ(statusOf(answer), 200) << answer;
  EXPECT_EQ(count(answer, "HTTP/1.1 "), 1u) << answer;
}

// --- 5. HTTP versions -------------------------------------------------------------------------

TEST_F(FramingTest, OtherHttpVersionsAre505InHttp11) {
  startServer();
  const Hook hook = createHook();
  for (const std::string version : {"HTTP/2.0", "HTTP/0.9", "HTTP/3.0", "HTTP/1.2"}) {
    const std::string answer = exchangeAll(
        port_, "POST /h/" + hook.id + " " + version + "\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(answer.rfind("HTTP/1.1 505 ", 0), 0u) << version << ": " << answer;
    EXPECT_NE(answer.find("not supported"), std::string::npos) << answer;
  }
  const std::string odd = exchangeAll(port_, "GET /healthz HTTX/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(odd.rfind("HTTP/1.1 400 ", 0), 0u) << odd;
  EXPECT_EQ(storedEvents(hook), 0u);
  EXPECT_EQ(exchangeAll(port_, "GET /healthz HTTP/1.0\r\n\r\n").rfind("HTTP/1.0 200 ", 0), 0u);
}

// --- 6. Raw heads of pipelined requests and loosely spaced request lines ----------------------

TEST_F(FramingTest, PipelinedRequestsKeepTheirFieldOrder) {
  startServer();
  const Hook hook = createHook();

  // Three requests in one write: POCO reads the later heads along with the first.
  const std::string bytes =
      ingestHead(hook, "X-A: 1\r\nX-B: 2\r\nX-A: 3\r\nContent-Length: 2\r\n") + "hi" +
      ingestHead(hook, "X-C: 1\r\nX-D: 2\r\nX-C: 3\r\nTransfer-Encoding: chunked\r\n") +
      "3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n" +
      ingestHead(hook, "X-E: 1\r\nX-F: 2\r\nX-E: 3\r\nConnection: close\r\n");
  const std::string answer = exchangeAll(port_, bytes, false);
  EXPECT_EQ(count(answer, "HTTP/1.1 200 OK"), 3u) << answer;

  const auto ids = eventIds(hook);
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(
      storedHeaders(hook, ids[0]),
      (Fields{{"Host", "x"}, {"X-A", "1"}, {"X-B", "2"}, {"X-A", "3"}, {"Content-Length", "2"}}));
  EXPECT_EQ(storedHeaders(hook, ids[1]), (Fields{{"Host", "x"},
                                                 {"X-C", "1"},
                                                 {"X-D", "2"},
                                                 {"X-C", "3"},
                                                 {"Transfer-Encoding", "chunked"}}));
  EXPECT_EQ(
      storedHeaders(hook, ids[2]),
      (Fields{{"Host", "x"}, {"X-E", "1"}, {"X-F", "2"}, {"X-E", "3"}, {"Connection", "close"}}));
  EXPECT_EQ(storedBody(hook, ids[0]), "hi");
  EXPECT_EQ(storedBody(hook, ids[1]), "abc");
}

TEST_F(FramingTest, RequestLineWithExtraSpacesKeepsFieldOrder) {
  startServer();
  const Hook hook = createHook();
  const std::string answer =
      exchangeAll(port_, "POST  /h/" + hook.id +
                             "   HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nX-B: 2\r\nX-A: 3\r\n\r\n");
  ASSERT_EQ(statusOf(answer), 200) << answer;
  const auto ids = eventIds(hook);
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(storedHeaders(hook, ids[0]),
            (Fields{{"Host", "x"}, {"X-A", "1"}, {"X-B", "2"}, {"X-A", "3"}}));
}

}  // namespace
}  // namespace anm::test
