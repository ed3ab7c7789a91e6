// core/diagnosis/catalog.cpp: the text of every diagnosis code's page, written once.
// SPDX-License-Identifier: Apache-2.0
#include "core/diagnosis/pages.h"

namespace anm::diagnosis {
namespace {

std::vector<Page> signaturePages() {
  return {
      {code::kSignatureUnchecked,
       Severity::kWarning,
       "The request is signed, but the hook checks no signature",
       "The hook has no provider and is not a Standard Webhooks hook, so the edge stores and "
       "relays "
       "every request to it without checking anything. This request carries the signature header "
       "of a sender the edge knows how to verify, so it could have been checked.",
       {"The hook was created without `--provider` (an anonymous `anonymily relay` without "
        "`--provider` accepts everything).",
        "A hook made for quick tests was later given to a real sender."},
       {"Relay the sender through a hook that verifies it: `anonymily relay --to URL --provider "
        "stripe --secret whsec_...` (or `--standard-webhooks` for a Standard Webhooks sender), and "
        "give the sender that hook's URL.",
        "Until then, keep verifying the signature in the local handler: the edge does not."},
       {"The next event of the sender shows the verdict `valid` in `anonymily events list` "
        "instead of `unsigned`."}},

      {code::kSignatureSecretMissing,
       Severity::kError,
       "The hook has no secret to verify with",
       "The hook names a way of verifying but holds no usable secret, so no signature can be "
       "checked and every request is refused with 401 and never relayed.",
       {"A Standard Webhooks hook whose signing secret is not of the form `whsec_` followed by "
        "base64.",
        "A provider hook created without a secret by a tool that bypassed the API's checks."},
       {"For a Standard Webhooks hook, rotate the signing secret (`anonymily hooks rotate-secret "
        "HOOK`) and give the new one to the sender.",
        "For a provider hook, create the hook again with the provider's secret (`--secret` or "
        "`--secret-file`)."},
       {"The next request gets a verdict other than `secret_missing` in `anonymily events "
        "list`."}},

      {code::kSignatureHeaderMissing,
       Severity::kError,
       "The signature header is missing",
       "The request does not carry the header the hook's provider signs in, so there is nothing "
       "to verify. The edge answered 401 and did not relay it.",
       {"The request did not come from the provider: a health check, a scanner, or someone "
        "opening the URL in a browser (a `GET` without a body).",
        "The sender signs nothing because it was given no secret: a GitHub webhook without a "
        "Secret sends no `X-Hub-Signature-256`.",
        "A proxy or API gateway in front of the edge drops the header."},
       {"Give the sender a secret in its webhook settings, the same one the hook holds.",
        "If requests pass through a proxy of your own, let it forward the signature header "
        "unchanged.",
        "Ignore requests that are not from the provider: the edge refuses them as it should."},
       {"Look at the event's headers with `anonymily events show ID --hook HOOK`: a provider's "
        "own requests carry its User-Agent (`Stripe/1.0`, `GitHub-Hookshot/...`, "
        "`Slackbot ...`).",
        "Send a test event from the provider's dashboard: it should arrive with the header."}},

      {code::kSignatureWrongProvider,
       Severity::kError,
       "The request is signed by another sender than the hook expects",
       "The header the hook's provider signs in is missing, but the signature header of another "
       "known sender is there: the webhook of one service was pointed at a hook made for "
       "another.",
       {"The hook's URL was pasted into the settings of the wrong service.",
        "The hook was created with the wrong `--provider`.",
        "The sender signs the Standard Webhooks way under `svix-*` header names, which the edge "
        "does not read (it reads `webhook-id`, `webhook-timestamp` and `webhook-signature`)."},
       {"Give each service the URL of a hook made for it, e.g. `anonymily relay --to URL "
        "--provider github --secret ...` for GitHub.",
        "For a sender that uses `svix-*` headers, ask it for the `webhook-*` names, or relay it "
        "through a hook without a provider and verify in the local handler."},
       {"The finding names the header that was found and the sender it belongs to; the next "
        "event of that sender through its own hook is `valid`."}},

      {code::kSignatureHeaderMalformed,
       Severity::kError,
       "The signature header cannot be read",
       "The signature header is there but not in the provider's format: a missing prefix such "
       "as `sha256=` or `v0=`, a digest of the wrong length or encoding, an element without "
       "`=`, or a timestamp that is not whole Unix seconds. No signature could be compared.",
       {"A test script or tool that imitates the provider's header with a placeholder value.",
        "A proxy that rewrote, merged or truncated the header.",
        "A sender that signs in a newer or older format than the plugin reads."},
       {"Send test requests with the provider's own tools (`stripe trigger`, GitHub's "
        "Redeliver button, Slack's retry) or sign them with the provider's library.",
        "Compare the header with the provider's documentation; the edge's message says which "
        "part is wrong."},
       {"The finding quotes the edge's message; a request sent by the provider itself is "
        "accepted."}},

      {code::kSignatureTimestampMissing,
       Severity::kError,
       "The signed timestamp is missing",
       "The provider signs a timestamp together with the body (Stripe's `t=` in "
       "`Stripe-Signature`, Slack's `X-Slack-Request-Timestamp`, Standard Webhooks' "
       "`webhook-timestamp`) and the request does not carry it, so the signature cannot be "
       "checked.",
       {"A hand-made test request that copied only the signature header.",
        "A proxy that drops the timestamp header."},
       {"Send test requests from the provider, or copy every header of a real request.",
        "Let any proxy in front of the edge forward the timestamp header."},
       {"Look at the event's headers with `anonymily events show ID --hook HOOK`."}},

      {code::kSignatureTimestampOutside,
       Severity::kError,
       "The signed timestamp is outside the hook's window",
       "The time the request was signed differs from the time the edge received it by more "
       "than the hook's window (5 minutes unless the hook sets another). The window stops a "
       "captured request from being accepted again later. For the built-in providers the "
       "signature itself matched; only its age was refused. The finding gives the skew in "
       "seconds: positive when the signature is older than its receipt, negative when it is "
       "dated in the future.",
       {"A captured request is being sent again, e.g. a saved payload posted by a test tool.",
        "The sender's clock or the edge's clock is wrong: the same skew on every event, or any "
        "negative skew, points to a clock.",
        "The hook's window was set smaller than the provider's default."},
       {"Keep the edge's clock synchronised (NTP; `timedatectl` shows whether it is).",
        "To replay old captures on purpose, use a hook created with `--tolerance 0`, which "
        "turns the window off.",
        "Leave the window at the default (`--tolerance` not given) unless there is a reason."},
       {"Compare the skew of several events: a constant skew is a clock, a skew that grows "
        "with the age of a capture is a replay.",
        "Send a fresh test event from the provider: it should be `valid`."}},

      {code::kSignatureAlgorithmRefused,
       Severity::kError,
       "The request is signed with an algorithm the hook does not accept",
       "The request carries a signature, but only in an algorithm the hook refuses: GitHub's "
       "legacy SHA-1 `X-Hub-Signature` without the SHA-256 header, or a `webhook-signature` "
       "without a `v1` (HMAC-SHA256) entry.",
       {"An old GitHub Enterprise Server that signs with SHA-1 only.",
        "A Standard Webhooks sender that signs with asymmetric keys (`v1a`) only."},
       {"For an old GitHub Enterprise Server, upgrade it, or create the hook with `--option "
        "allow_sha1=true` (SHA-1 is weaker; accept it only for such a server).",
        "Ask a Standard Webhooks sender to sign with a symmetric `v1` secret."},
       {"The event's headers show which signature headers or versions the sender used."}},

      {code::kSignaturePreviousSecret,
       Severity::kError,
       "The sender still signs with the secret from before a rotation",
       "The signature does not match the hook's current secret but does match the one it had "
       "before its last rotation, whose grace period has ended. The body is intact: the sender "
       "has not been given the new secret.",
       {"The secret was rotated and the sender's settings were not updated.",
        "A second sender (another environment, a copy of a configuration) still holds the old "
        "secret."},
       {"Put the hook's current signing secret into the sender's settings.",
        "If the current secret is lost, rotate again (`anonymily hooks rotate-secret HOOK`) and "
        "update the sender within the 24 hours in which the secret before it still verifies."},
       {"The next event of the sender is `valid`."}},

      {code::kSignatureBodyChanged,
       Severity::kError,
       "The body changed after it was signed",
       "The signature does not match, and the request shows that its body is not the one the "
       "sender signed: it is an edited replay, it declares a `Content-Encoding` its bytes do "
       "not have (something decoded it and kept the header), or it has a form no provider "
       "sends (a byte-order mark, CRLF line ends, Stripe's indented JSON made compact). An "
       "HMAC covers every byte, so any change breaks it.",
       {"A replay whose body or headers were edited.",
        "A proxy, load balancer or API gateway in front of the edge that decompresses, "
        "re-encodes or re-serializes bodies.",
        "A test tool that reformats the JSON before sending it."},
       {"Let webhooks reach the edge unchanged: send them to the edge's URL directly, or turn "
        "off decompression and body rewriting in the proxy for the hook's path.",
        "Edited replays are meant for handlers that skip verification while testing; expect "
        "them to fail verification."},
       {"Send a fresh test event from the provider straight to the edge's URL: if it is "
        "`valid`, the path through the proxy changes bodies.",
        "Compare the event's size in `anonymily events show` with the size the provider's "
        "dashboard shows for the delivery."}},

      {code::kSignatureMismatch,
       Severity::kError,
       "The signature does not match",
       "The signature header is well-formed, but no signature in it matches the body under the "
       "hook's secret. Either the hook holds another secret than the one the sender signs with, "
       "or the body changed after it was signed; nothing in this request says which. The edge "
       "answered 401 and did not relay it.",
       {"The hook was given another secret: another endpoint's, the test mode's instead of the "
        "live mode's (Stripe gives each endpoint, and `stripe listen`, its own), Slack's "
        "Verification Token instead of its Signing Secret, Razorpay's API key secret instead of "
        "the webhook secret.",
        "The secret was copied with a space or line break at either end.",
        "A proxy in front of the edge changes bodies (see `signature.body_changed`)."},
       {"Copy the secret again from the provider's settings and relay through a hook created "
        "with it (`--secret-file` avoids stray spaces).",
        "Let webhooks reach the edge unchanged if they pass through a proxy."},
       {"If every event of the hook fails, the secret is wrong; if only some fail (large "
        "bodies, non-ASCII text, compressed ones), something changes the bodies.",
        "Compute the signature yourself over the stored body (`anonymily events show ID --hook "
        "HOOK --raw`) with the secret you believe is right: a match means the hook holds "
        "another secret.",
        "Send a fresh test event from the provider straight to the edge's URL, past any proxy: "
        "if it is `valid`, the proxy changes bodies."}},

      {code::kSignaturePluginFailed,
       Severity::kError,
       "The provider plugin could not reach a verdict",
       "The plugin that verifies the hook's provider failed while checking this request, so "
       "the edge stored it as invalid with the reason `internal`. This is not the sender's "
       "fault.",
       {"A bug in the plugin, or a plugin built for another edge version.",
        "A request the plugin did not expect (an unusual header or body)."},
       {"Read the edge's log around the event's time: the plugin's message is there and in "
        "the finding.",
        "Update or reinstall the plugin; then replay the event (`anonymily events replay ID "
        "--hook HOOK`)."},
       {"`GET /api/v1/providers` lists the plugins the edge offers with their versions."}},

      {code::kSignatureRefused,
       Severity::kError,
       "The signature was refused for a reason this edge does not name",
       "The plugin refused the request with a reason code this edge does not know, typically a "
       "plugin built against a newer SDK than the edge. The plugin's own message is quoted in "
       "the finding.",
       {"A plugin newer than the edge."},
       {"Read the plugin's message and its README; upgrade the edge to a version that knows "
        "the reason."},
       {"`GET /api/v1/providers` shows the plugin's version and ABI version."}},
  };
}

std::vector<Page> connectionPages() {
  return {
      {code::kDeliveryNotRelayed,
       Severity::kInfo,
       "No relay has reported a delivery of this event",
       "The event can be relayed, but no relay has reported delivering it to a local server "
       "yet.",
       {"No `anonymily relay` is running for the hook.",
        "The relay is still catching up: it delivers events one at a time, in order.",
        "The relay's reports did not reach the edge (they are retried for about 30 seconds, "
        "then logged as dropped)."},
       {"Start the relay: `anonymily relay --hook HOOK --to URL`. It resumes after the last "
        "event it forwarded."},
       {"`anonymily hooks list` or the hook's view (`relays`) shows how many relays are "
        "connected."}},

      {code::kDeliveryNothingListening,
       Severity::kError,
       "Nothing is listening at the local target",
       "The relay's connection to the `--to` address was refused: no process accepts "
       "connections on that host and port.",
       {"The local server is not running, or it crashed.",
        "The port in `--to` is not the one the server listens on.",
        "The server listens on another address: `localhost` may resolve to `::1` first while "
        "the server binds only `127.0.0.1`, or the server runs in a container whose port is "
        "not published."},
       {"Start the local server, or correct the port in `--to`.",
        "Use `--to http://127.0.0.1:PORT` when the server binds IPv4 only.",
        "Replay the event once the server is up: `anonymily events replay ID --hook HOOK`."},
       {"From the machine that runs the relay, `curl -i http://127.0.0.1:PORT/` must connect.",
        "`ss -ltnp` (Linux) or `lsof -iTCP -sTCP:LISTEN` (macOS) lists the listening ports."}},

      {code::kDeliveryHostNotFound,
       Severity::kError,
       "The local target's host name does not resolve",
       "The host in `--to` could not be resolved to an address, so the relay could not "
       "connect.",
       {"A typo in the host name.",
        "A name that only resolves inside a container network or a VPN the relay's machine is "
        "not on."},
       {"Use an address the relay's machine can reach, e.g. `--to http://127.0.0.1:3000`."},
       {"`getent hosts NAME` (Linux) or `dscacheutil -q host -a name NAME` (macOS) on the "
        "relay's machine."}},

      {code::kDeliveryTimeout,
       Severity::kError,
       "The local server did not answer in time",
       "The relay waited for the whole `--timeout` (30 s unless set) without a complete "
       "answer. The local server may still have processed the event.",
       {"The handler does slow work before it answers: calls to other services, large "
        "database writes.",
        "The handler is stopped in a debugger, or deadlocked.",
        "The server accepted the connection but all its workers are busy."},
       {"Answer with a 2xx at once and do the work afterwards (a queue or a background job), "
        "as providers expect: most give up after a few seconds (GitHub after 10, Slack after "
        "3).",
        "While debugging, raise the relay's `--timeout`."},
       {"The finding gives the limit and how long the delivery took; log the time the handler "
        "starts and answers."}},

      {code::kDeliveryTlsFailure,
       Severity::kError,
       "The TLS handshake with the local target failed",
       "The `--to` URL is https and the relay could not set up TLS with the local server: the "
       "server's certificate was refused, or the handshake failed.",
       {"A self-signed or development certificate (mkcert, a framework's dev certificate) that "
        "the system's trusted CAs do not cover.",
        "A certificate for another name than the one in `--to` (`localhost` against "
        "`127.0.0.1`).",
        "The server speaks plain HTTP on that port (OpenSSL then says `wrong version number`).",
        "An expired certificate."},
       {"For a server on the same machine, use `--to http://localhost:PORT`: loopback traffic "
        "needs no TLS.",
        "Otherwise add the development CA to the system's trust store and use the name the "
        "certificate is for."},
       {"`openssl s_client -connect 127.0.0.1:PORT -servername NAME` shows the certificate and "
        "why it is refused."}},

      {code::kDeliveryConnectionClosed,
       Severity::kError,
       "The local server closed the connection without an answer",
       "The connection was reset or closed before a complete HTTP answer arrived, so the relay "
       "has no status to report.",
       {"The handler crashed: the process died or its worker was killed (out of memory, an "
        "uncaught error in some frameworks).",
        "A development proxy between the relay and the server dropped the connection.",
        "The server refused the request without answering (some servers do that for bodies "
        "or headers they do not accept)."},
       {"Read the local server's log or console at the event's time.",
        "Replay the event while watching it: `anonymily events replay ID --hook HOOK`."},
       {"The finding says whether the relay was still sending or already waiting for the "
        "answer when the connection ended, when the relay reports it."}},

      {code::kDeliveryBodyTooLarge,
       Severity::kError,
       "The body is too large for the local server",
       "The local server answered 413, or cut the connection while the relay was still sending "
       "a large body: the body is above a size limit of the server or of a framework in front "
       "of the handler.",
       {"Framework defaults: Express's `express.json()` and `express.raw()` take `100kb`, "
        "Django refuses bodies above 2.5 MB (`DATA_UPLOAD_MAX_MEMORY_SIZE`), nginx above 1 MB "
        "(`client_max_body_size`)."},
       {"Raise the limit for the webhook's route only, e.g. `express.raw({type: "
        "'application/json', limit: '5mb'})` or `client_max_body_size 10m;`.",
        "Then replay the event: `anonymily events replay ID --hook HOOK`."},
       {"Compare the event's size (in the finding) with the limit; a smaller event to the same "
        "route succeeds."}},

      {code::kDeliveryInvalidResponse,
       Severity::kError,
       "The local server's answer is not HTTP/1.1",
       "What came back could not be read as an HTTP/1.x answer, so there is no status.",
       {"The server speaks TLS and `--to` says `http://` (use `https://`).",
        "The server speaks only HTTP/2 without TLS (h2c).",
        "Another kind of service listens on that port (a database, a debugger, a dev tool)."},
       {"Check the scheme and the port in `--to` against the server's own start-up message."},
       {"`curl -v --http1.1 URL` from the relay's machine shows what the server answers."}},

      {code::kDeliveryRedirect,
       Severity::kError,
       "The local server answered with a redirect",
       "The local server answered 3xx. The relay does not follow redirects (following one "
       "would send the body somewhere the server did not name for it), so the handler never "
       "ran. The finding gives the `Location`.",
       {"A trailing-slash redirect (e.g. Django's `APPEND_SLASH`, or routes defined with a "
        "slash).",
        "An http-to-https redirect.",
        "Authentication middleware sending requests without a session to a login page.",
        "A locale or version prefix added to the path."},
       {"Point `--to` at the URL in `Location` if that is where the handler lives.",
        "Exempt the webhook's route from login, https and locale redirects."},
       {"`curl -i -X POST URL` from the relay's machine shows the same `Location`."}},

      {code::kDeliveryLocalVerificationFailed,
       Severity::kError,
       "The edge verified the signature, but the local server refused the request",
       "The edge checked the signature with the hook's secret and it was valid, the relay "
       "delivered the same bytes and headers, and the local server answered 400, 401 or 403. "
       "So the local handler's own check failed: either it holds another secret than the hook, "
       "or it verifies over something other than the raw body (a framework parsed the JSON and "
       "the handler signs a re-serialized copy, or decoded text).",
       {"The handler loads another secret: test mode against live mode, another endpoint's, "
        "an old one, or an environment variable that is not set where the server runs.",
        "The body is parsed before verification: Express's `express.json()` on the route, "
        "Flask's `request.json`, a framework's body parser; the re-serialized JSON differs "
        "from the signed bytes.",
        "The handler refuses for another reason, such as payload validation (the answer's "
        "excerpt says)."},
       {"Verify over the raw bytes: `express.raw({type: 'application/json'})` on the webhook "
        "route, `request.get_data()` in Flask, `request.body` in Django, `await req.text()` "
        "with the Fetch API.",
        "Load the same secret the hook holds (the one in the provider's settings)."},
       {"Compare the first 8 characters of the secret the handler loads with the provider's "
        "secret: if they differ, it is the secret.",
        "Log the length of the body the handler verifies and compare it with the event's size "
        "in the finding: equal means the bytes are intact and points to the secret; different "
        "means the body was parsed.",
        "Replay the event (`anonymily events replay ID --hook HOOK`) to a handler that logs "
        "the raw body's length and the signature it computes next to the received header."}},

      {code::kDeliveryLocalTimestampOutside,
       Severity::kError,
       "The local server refused a signature that had grown too old",
       "The signature was valid when the edge received it, but when the relay delivered it the "
       "signed timestamp was older than the 5 minutes that provider libraries accept by "
       "default (Stripe's `constructEvent`, Slack's SDKs, the Standard Webhooks libraries). "
       "The local 400, 401 or 403 most likely comes from that age check, not from the secret.",
       {"A replay of an event older than 5 minutes.",
        "A relay catching up after being stopped or offline.",
        "The clock of the machine that runs the local server is wrong."},
       {"Trigger a fresh event from the provider instead of replaying an old one (`stripe "
        "trigger ...`, GitHub's Redeliver, which signs anew).",
        "While testing replays, pass a larger tolerance to the library's verify call, e.g. "
        "Stripe's `constructEvent(payload, header, secret, tolerance)`.",
        "Keep the local machine's clock synchronised."},
       {"The finding gives the signature's age at delivery; a fresh event succeeds."}},

      {code::kDeliveryEditedReplayRefused,
       Severity::kError,
       "The local server refused an edited replay",
       "The event is a replay whose body or headers were edited. Its signature headers are the "
       "original's and no longer match what was sent, so a handler that verifies signatures "
       "refuses it, as it should.",
       {"Editing a replay of a signed event."},
       {"Test edited payloads against a handler that skips verification in development, or "
        "replay the event unedited."},
       {"An unedited replay of the same event succeeds."}},

      {code::kDeliveryClientError,
       Severity::kError,
       "The local server answered with a client error",
       "The local server answered with a 4xx status that has no code of its own here. The "
       "finding quotes the start of its answer.",
       {"404: no route for the path. The relay sends to the `--to` path followed by the "
        "event's path suffix and query.",
        "405: the route does not take the event's method.",
        "415 or 422: the handler refused the content type or the payload.",
        "400, 401 or 403 on an event the edge did not verify (the hook checks nothing, or the "
        "signature was invalid and the event was replayed)."},
       {"Match the route and method to what the event carries, or correct `--to`.",
        "Read the answer's excerpt and the handler's log."},
       {"`curl -i -X METHOD URL` from the relay's machine reproduces a routing error."}},

      {code::kDeliveryServerError,
       Severity::kError,
       "The local server failed with a server error",
       "The local server answered 5xx: the handler threw, or something it depends on failed. "
       "502, 503 and 504 from a development proxy mean the server behind it is down or slow.",
       {"An exception in the handler.", "A database or downstream service that is down.",
        "A proxy whose upstream is not running."},
       {"Read the local server's log at the event's time, fix the handler, then replay the "
        "event (`anonymily events replay ID --hook HOOK`)."},
       {"The finding quotes the start of the answer; replaying reproduces the error."}},

      {code::kDeliveryRelayError,
       Severity::kError,
       "The relay could not forward the event",
       "The relay did not send the event: the edge could not read it (`unreadable at the "
       "edge`: its stored contents are sealed with a key the edge lacks, or damaged), or it "
       "could not be written as an HTTP request verbatim (a method, path or header field that "
       "HTTP/1.1 does not allow), or it was too large for the relay.",
       {"A key ring without the key the event was sealed with.",
        "A request that reached the edge with bytes that cannot be forwarded as they are."},
       {"For unreadable events, give the edge's key ring the key they were sealed with "
        "(docs/security.md), then replay them.",
        "Inspect the event with `anonymily events show ID --hook HOOK`."},
       {"The finding quotes the relay's error."}},

      {code::kDeliveryFailed,
       Severity::kError,
       "The delivery failed",
       "The relay reported an error that none of the other rules recognises; the finding "
       "quotes it.",
       {"A network error particular to the relay's machine."},
       {"Read the quoted error and the relay's log; replay the event once it is resolved."},
       {"The relay's log line for the event gives the same error with its context."}},
  };
}

}  // namespace

const std::vector<Page>& catalog() {
  static const std::vector<Page> pages = [] {
    std::vector<Page> all = signaturePages();
    for (auto& page : connectionPages()) all.push_back(std::move(page));
    return all;
  }();
  return pages;
}

const Page* findPage(std::string_view code) {
  for (const auto& page : catalog()) {
    if (page.code == code) return &page;
  }
  return nullptr;
}

}  // namespace anm::diagnosis
