// tests/integration/tls_test.cpp: the edge binary with a certificate: TLS 1.3 on ingest, API
// and stream, older protocols refused, bad files and plain HTTP off loopback refused at start.
// SPDX-License-Identifier: Apache-2.0
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/Net/SecureStreamSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_certs.h"
#include "test_http.h"

namespace anm::test {
namespace {

using namespace std::chrono_literals;

struct HttpAnswer {
  int status = 0;
  std::string body;
};

std::string readAll(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The output of a shell command (stdout and stderr) and its exit code.
std::pair<int, std::string> runShell(const std::string& command) {
  std::string output;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {-1, ""};
  char buffer[4096];
  size_t n = 0;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

class TlsEdgeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/anm-tls-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    pki_ = std::make_unique<TestPki>(dir_);
  }

  void TearDown() override {
    stopEdge();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Starts the edge with `args` and a config file of `settings`; stderr goes to a file.
  void spawn(std::vector<std::string> args, const std::string& settings = "") {
    std::filesystem::remove(dir_ / "port");
    // Port 0 unless the case names its own address: a fixed port collides with whatever else
    // runs on the machine.
    writeText(dir_ / "edge.conf", "listen = 127.0.0.1:0\ndata_dir = " + (dir_ / "data").string() +
                                      "\nhttp.timeout_ms = " + std::to_string(timeoutMs_) + "\n" +
                                      settings);
    args.insert(args.begin(), {ANM_EDGE_BINARY, "--config", (dir_ / "edge.conf").string(),
                               "--port-file", (dir_ / "port").string()});
    pid_ = fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      const int fd = open((dir_ / "stderr.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(fd, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }

  // Waits for the port file of a started edge; false when the edge ended first.
  bool waitReady() {
    for (int i = 0; i < 2000; ++i) {
      std::ifstream in(dir_ / "port");
      if (in >> port_ && port_ > 0) return true;
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  void startTlsEdge(const std::string& settings = "") {
    spawn({"--tls-cert", pki_->cert("leaf"), "--tls-key", pki_->key("leaf")}, settings);
    ASSERT_TRUE(waitReady()) << readAll(dir_ / "stderr.log");
  }

  // Waits for the edge to exit (at most 20 s); returns its exit code.
  int waitExit() {
    for (int i = 0; i < 2000; ++i) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(10ms);
    }
    return -1;
  }

  void stopEdge() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    if (waitExit() < 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    pid_ = -1;
  }

  std::string edgeLog() { return readAll(dir_ / "stderr.log"); }

  // A TLS client trusting only the test CA; TLS 1.3 is what the edge speaks.
  Poco::Net::Context::Ptr clientContext() {
    if (client_.isNull()) {
      Poco::Net::initializeSSL();
      Poco::Net::Context::Params params;
      params.verificationMode = Poco::Net::Context::VERIFY_RELAXED;
      params.loadDefaultCAs = false;
      params.caLocation = pki_->cert("ca");
      client_ = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, params);
    }
    return client_;
  }

  HttpAnswer https(Poco::Net::HTTPSClientSession& session, const std::string& method,
                   const std::string& target, const std::string& body,
                   const std::string& token = "") {
    Poco::Net::HTTPRequest request(method, target, Poco::Net::HTTPMessage::HTTP_1_1);
    if (!token.empty()) request.set("Authorization", "Bearer " + token);
    request.setContentType("application/json");
    request.setContentLength(static_cast<std::streamsize>(body.size()));
    session.sendRequest(request) << body;
    Poco::Net::HTTPResponse response;
    std::istream& in = session.receiveResponse(response);
    HttpAnswer answer;
    answer.status = response.getStatus();
    std::stringstream text;
    text << in.rdbuf();
    answer.body = text.str();
    return answer;
  }

  // Creates an anonymous hook over TLS; returns its id and relay token.
  std::pair<std::string, std::string> createHook(Poco::Net::HTTPSClientSession& session) {
    const HttpAnswer created = https(session, "POST", "/api/v1/hooks", "{}");
    EXPECT_EQ(created.status, 201) << created.body;
    return {jsonField(created.body, "id"), jsonField(created.body, "token")};
  }

  // Opens the hook's stream over TLS and reads until `count` events arrived or 60 s passed;
  // returns the ids and the summed size of the event frames.
  std::vector<int64_t> streamEvents(const std::string& hook, const std::string& token, size_t count,
                                    size_t& frameBytes) {
    Poco::Net::SecureStreamSocket socket(clientContext());
    socket.connect(Poco::Net::SocketAddress("127.0.0.1", port_));
    const std::string head = "GET /api/v1/hooks/" + hook +
                             "/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
                             token + "\r\nAccept: text/event-stream\r\n\r\n";
    socket.sendBytes(head.data(), static_cast<int>(head.size()));
    socket.setReceiveTimeout(Poco::Timespan(5, 0));
    std::vector<int64_t> ids;
    std::string buffer;
    frameBytes = 0;
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    char chunk[65536];
    while (ids.size() < count && std::chrono::steady_clock::now() < deadline) {
      int n = 0;
      try {
        n = socket.receiveBytes(chunk, sizeof chunk);
      } catch (const Poco::TimeoutException&) {
        continue;
      }
      if (n <= 0) break;
      buffer.append(chunk, static_cast<size_t>(n));
      size_t end = 0;
      while ((end = buffer.find("\n\n")) != std::string::npos) {
        const std::string frame = buffer.substr(0, end);
        buffer.erase(0, end + 2);
        const auto idAt = frame.find("id: ");
        if (frame.find("event: webhook") == std::string::npos || idAt == std::string::npos) {
          continue;
        }
        ids.push_back(std::stoll(frame.substr(idAt + 4)));
        frameBytes += frame.size();
      }
    }
    return ids;
  }

  std::filesystem::path dir_;
  std::unique_ptr<TestPki> pki_;
  Poco::Net::Context::Ptr client_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  int timeoutMs_ = 1000;  ///< http.timeout_ms of the edges spawn() starts
};

TEST_F(TlsEdgeTest, IngestApiAndStreamWorkOverTls13) {
  ASSERT_NO_FATAL_FAILURE(startTlsEdge());
  EXPECT_NE(edgeLog().find("tls enabled protocol=TLSv1.3 cert=" + pki_->cert("leaf")),
            std::string::npos)
      << edgeLog();

  Poco::Net::HTTPSClientSession session("127.0.0.1", port_, clientContext());
  session.setKeepAlive(true);
  const auto [hook, token] = createHook(session);
  ASSERT_FALSE(hook.empty());

  // The default public URL names the TLS scheme.
  const HttpAnswer detail = https(session, "GET", "/api/v1/hooks/" + hook, "", token);
  ASSERT_EQ(detail.status, 200) << detail.body;
  EXPECT_EQ(jsonField(detail.body, "ingest_url").rfind("https://127.0.0.1:", 0), 0u) << detail.body;

  const HttpAnswer ingested = https(session, "POST", "/h/" + hook, "{\"over\":\"tls\"}");
  ASSERT_EQ(ingested.status, 200) << ingested.body;
  const HttpAnswer listed = https(session, "GET", "/api/v1/hooks/" + hook + "/events", "", token);
  ASSERT_EQ(listed.status, 200) << listed.body;
  EXPECT_NE(listed.body.find("\"id\":" + jsonField(ingested.body, "id")), std::string::npos)
      << listed.body;

  size_t bytes = 0;
  const auto ids = streamEvents(hook, token, 1, bytes);
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(std::to_string(ids[0]), jsonField(ingested.body, "id"));

  // The protocol an ordinary TLS 1.3 client negotiates, as openssl reports it.
  const auto [code, out] =
      runShell("openssl s_client -tls1_3 -connect 127.0.0.1:" + std::to_string(port_) +
               " -CAfile " + pki_->cert("ca") + " -verify_return_error </dev/null");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("TLSv1.3"), std::string::npos) << out;
}

TEST_F(TlsEdgeTest, Tls12AndOlderAreRefused) {
  ASSERT_NO_FATAL_FAILURE(startTlsEdge());
  for (const char* version : {"-tls1_2", "-tls1_1"}) {
    const auto [code, out] =
        runShell(std::string("openssl s_client ") + version +
                 " -connect 127.0.0.1:" + std::to_string(port_) + " </dev/null");
    EXPECT_NE(code, 0) << version << ": " << out;
    if (std::string(version) == "-tls1_2") {
      // The edge's answer: the protocol_version alert (70), and no cipher agreed.
      EXPECT_NE(out.find("alert protocol version"), std::string::npos) << out;
      EXPECT_NE(out.find("Cipher is (NONE)"), std::string::npos) << out;
    }
  }

  // The refusals cost the edge nothing: a TLS 1.3 client is served right after.
  Poco::Net::HTTPSClientSession session("127.0.0.1", port_, clientContext());
  EXPECT_FALSE(createHook(session).first.empty());
}

TEST_F(TlsEdgeTest, PlainHttpOnTheTlsPortIsToldToUseHttpsAndTheEdgeGoesOn) {
  ASSERT_NO_FATAL_FAILURE(startTlsEdge());
  Poco::Net::StreamSocket plain;
  plain.connect(Poco::Net::SocketAddress("127.0.0.1", port_));
  const std::string text =
      "POST /api/v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
  plain.sendBytes(text.data(), static_cast<int>(text.size()));
  plain.setReceiveTimeout(Poco::Timespan(5, 0));
  char buffer[256];
  int n = 0;
  std::string got;
  try {
    while ((n = plain.receiveBytes(buffer, sizeof buffer)) > 0) got.append(buffer, n);
  } catch (const Poco::Exception& e) {
    ADD_FAILURE() << "no whole answer before " << e.displayText() << ": " << got;
  }

  // Not a reset: an answer in the client's own protocol saying what went wrong, and nothing
  // of the request was served.
  EXPECT_EQ(got.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << got;
  EXPECT_NE(got.find("Connection: close\r\n"), std::string::npos) << got;
  EXPECT_NE(got.find("{\"error\":\"this port of the edge speaks TLS only: use https://, not "
                     "http://\"}"),
            std::string::npos)
      << got;

  Poco::Net::HTTPSClientSession session("127.0.0.1", port_, clientContext());
  EXPECT_FALSE(createHook(session).first.empty());
}

TEST_F(TlsEdgeTest, StalledHandshakeIsClosedAfterTheTimeoutAndHoldsNobodyUp) {
  // One worker thread: a handshake on the accepting thread or without a bound would starve
  // the next client.
  ASSERT_NO_FATAL_FAILURE(startTlsEdge("http.max_threads = 1\n"));
  Poco::Net::StreamSocket silent;
  silent.connect(Poco::Net::SocketAddress("127.0.0.1", port_));

  // A client sending one byte of its hello now and then must not stretch the timeout either.
  Poco::Net::StreamSocket trickle;
  trickle.connect(Poco::Net::SocketAddress("127.0.0.1", port_));
  std::atomic<bool> stop{false};
  std::thread dribble([&] {
    for (int i = 0; i < 40 && !stop; ++i) {
      try {
        trickle.sendBytes("\x16", 1);
      } catch (const Poco::Exception&) {
        return;
      }
      std::this_thread::sleep_for(200ms);
    }
  });

  // http.timeout_ms is 1000: both are closed well before 8 s.
  for (Poco::Net::StreamSocket* socket : {&silent, &trickle}) {
    socket->setReceiveTimeout(Poco::Timespan(8, 0));
    char byte = 0;
    int n = -1;
    try {
      n = socket->receiveBytes(&byte, 1);
    } catch (const Poco::TimeoutException&) {
      n = -2;
    } catch (const Poco::Exception&) {
      n = 0;  // reset: closed as well
    }
    EXPECT_GE(n, 0) << "the edge kept a stalled handshake open";
    EXPECT_LE(n, 0);
  }
  stop = true;
  dribble.join();

  Poco::Net::HTTPSClientSession session("127.0.0.1", port_, clientContext());
  EXPECT_FALSE(createHook(session).first.empty());
}

TEST_F(TlsEdgeTest, IdleConnectionsGiveTheirThreadsUpToATlsClient) {
  // Four threads, and ten times as many connections that never send a byte. Each would hold a
  // thread for the whole http.timeout_ms of 10 s if it waited there for its handshake, and the
  // client behind them for minutes; below http.max_queued, so that none is refused outright.
  timeoutMs_ = 10000;
  ASSERT_NO_FATAL_FAILURE(startTlsEdge("http.max_threads = 4\n"));
  std::vector<std::unique_ptr<Poco::Net::StreamSocket>> idle;
  for (int i = 0; i < 40; ++i) {
    idle.push_back(std::make_unique<Poco::Net::StreamSocket>());
    idle.back()->connect(Poco::Net::SocketAddress("127.0.0.1", port_));
  }

  // A real client (TLS 1.3: the edge speaks nothing else) is answered while they stay open. The
  // bound is the client's own timeout, kept well below the idle connections' 10 s.
  Poco::Net::HTTPSClientSession session("127.0.0.1", port_, clientContext());
  session.setTimeout(Poco::Timespan(8, 0));
  HttpAnswer created;
  try {
    created = https(session, "POST", "/api/v1/hooks", "{}");
  } catch (const Poco::Exception& e) {
    FAIL() << "the TLS client got no answer: " << e.displayText() << "\n" << edgeLog();
  }
  EXPECT_EQ(created.status, 201) << created.body;

  // The idle connections were closed to make room, not left to their timeout.
  size_t closed = 0;
  for (auto& socket : idle) {
    socket->setReceiveTimeout(Poco::Timespan(0, 1000));
    char byte = 0;
    try {
      if (socket->receiveBytes(&byte, 1) == 0) ++closed;
    } catch (const Poco::TimeoutException&) {
      // still open: its turn had not come
    } catch (const Poco::Exception&) {
      ++closed;  // reset
    }
  }
  EXPECT_GT(closed, 0u);
}

TEST_F(TlsEdgeTest, LargeBodyAndLongBacklogStreamWhole) {
  ASSERT_NO_FATAL_FAILURE(startTlsEdge("ingest.rate_per_hook = 0\ningest.rate_per_address = 0\n"));
  Poco::Net::HTTPSClientSession session("127.0.0.1", port_, clientContext());
  session.setKeepAlive(true);
  session.setTimeout(Poco::Timespan(30, 0));
  const auto [hook, token] = createHook(session);
  ASSERT_FALSE(hook.empty());

  // One 5 MiB body, then a backlog of 2000 small events, all stored before the stream opens.
  std::string large(5u << 20, 'x');
  for (size_t i = 0; i < large.size(); i += 997) large[i] = static_cast<char>('a' + i % 26);
  const HttpAnswer big = https(session, "POST", "/h/" + hook, large);
  ASSERT_EQ(big.status, 200) << big.body;
  for (int i = 0; i < 2000; ++i) {
    const HttpAnswer small =
        https(session, "POST", "/h/" + hook, "{\"n\":" + std::to_string(i) + "}");
    ASSERT_EQ(small.status, 200) << small.body;
  }

  // Every event, in id order, the large one whole (its base64 alone is 4/3 of 5 MiB).
  size_t bytes = 0;
  const auto ids = streamEvents(hook, token, 2001, bytes);
  ASSERT_EQ(ids.size(), 2001u);
  for (size_t i = 1; i < ids.size(); ++i) ASSERT_EQ(ids[i], ids[i - 1] + 1) << "at " << i;
  EXPECT_EQ(std::to_string(ids[0]), jsonField(big.body, "id"));
  EXPECT_GT(bytes, (5u << 20) * 4 / 3);
}

TEST_F(TlsEdgeTest, PlainHttpOffLoopbackIsRefusedUnlessBehindAProxy) {
  spawn({"--listen", "192.0.2.1:0"});
  EXPECT_EQ(waitExit(), 78);
  EXPECT_NE(edgeLog().find("not a loopback address"), std::string::npos) << edgeLog();

  // Behind a proxy the rule does not apply: the edge goes on to bind (and this address, from
  // a documentation range, is not on the machine, so the bind is what fails).
  spawn({"--listen", "192.0.2.1:0"}, "http.behind_proxy = true\n");
  EXPECT_EQ(waitExit(), 69);
  EXPECT_NE(edgeLog().find("could not listen on 192.0.2.1"), std::string::npos) << edgeLog();
}

TEST_F(TlsEdgeTest, AnExpiredOrExpiringCertificateIsLoggedAndStillServes) {
  // Made now, so that their dates are what the names say whenever the test runs.
  const TestCert soon =
      makeCert({"localhost", "DNS:localhost,IP:127.0.0.1", -3600, 3 * 86400}, &pki_->ca);
  const TestCert lasting =
      makeCert({"localhost", "DNS:localhost,IP:127.0.0.1", -3600, 90 * 86400}, &pki_->ca);
  for (const auto& [name, cert] :
       {std::pair<std::string, const TestCert*>{"soon", &soon}, {"lasting", &lasting}}) {
    writeText(dir_ / (name + ".crt"), cert->cert);
    writeText(dir_ / (name + ".key"), cert->key);
  }
  const std::regex notAfter("not_after=\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ");

  // Expired: it starts (an operator may be renewing it), and says so at error level.
  spawn({"--tls-cert", pki_->cert("expired"), "--tls-key", pki_->key("expired")});
  ASSERT_TRUE(waitReady()) << edgeLog();
  std::string log = edgeLog();
  EXPECT_NE(log.find("Error anm.tls: tls certificate expired cert=" + pki_->cert("expired") +
                     " not_after="),
            std::string::npos)
      << log;
  EXPECT_TRUE(std::regex_search(log, notAfter)) << log;
  stopEdge();

  // Three days left: a warning with the date and the days.
  spawn({"--tls-cert", (dir_ / "soon.crt").string(), "--tls-key", (dir_ / "soon.key").string()});
  ASSERT_TRUE(waitReady()) << edgeLog();
  log = edgeLog();
  EXPECT_NE(log.find("Warning anm.tls: tls certificate expires soon cert=" +
                     (dir_ / "soon.crt").string() + " not_after="),
            std::string::npos)
      << log;
  EXPECT_TRUE(std::regex_search(log, notAfter)) << log;
  EXPECT_TRUE(log.find("days_left=2") != std::string::npos ||
              log.find("days_left=3") != std::string::npos)
      << log;
  stopEdge();

  // Ninety days: nothing to say.
  spawn({"--tls-cert", (dir_ / "lasting.crt").string(), "--tls-key",
         (dir_ / "lasting.key").string()});
  ASSERT_TRUE(waitReady()) << edgeLog();
  EXPECT_EQ(edgeLog().find("tls certificate expire"), std::string::npos) << edgeLog();
}

TEST_F(TlsEdgeTest, BadCertificateOrKeyFilesExit78NamingTheFile) {
  writeText(dir_ / "garbage.crt", "not a certificate\n");
  spawn({"--tls-cert", (dir_ / "garbage.crt").string(), "--tls-key", pki_->key("leaf")});
  EXPECT_EQ(waitExit(), 78);
  EXPECT_NE(edgeLog().find("could not load tls.cert " + (dir_ / "garbage.crt").string() +
                           ": no start line"),
            std::string::npos)
      << edgeLog();

  writeText(dir_ / "garbage.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
  spawn({"--tls-cert", pki_->cert("leaf"), "--tls-key", (dir_ / "garbage.key").string()});
  EXPECT_EQ(waitExit(), 78);
  EXPECT_NE(edgeLog().find("could not load tls.key " + (dir_ / "garbage.key").string() + ": "),
            std::string::npos)
      << edgeLog();

  // A key of another certificate.
  spawn({"--tls-cert", pki_->cert("leaf"), "--tls-key", pki_->key("self")});
  EXPECT_EQ(waitExit(), 78);
  EXPECT_NE(edgeLog().find("tls.key " + pki_->key("self") + " does not belong to tls.cert " +
                           pki_->cert("leaf")),
            std::string::npos)
      << edgeLog();

  spawn({"--tls-cert", (dir_ / "missing.crt").string(), "--tls-key", pki_->key("leaf")});
  EXPECT_EQ(waitExit(), 78);
  EXPECT_NE(edgeLog().find((dir_ / "missing.crt").string()), std::string::npos) << edgeLog();
}

}  // namespace
}  // namespace anm::test
