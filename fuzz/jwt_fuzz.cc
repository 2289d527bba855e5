// The JWT authorizer (HS256 and ES256) on any Authorization header value:
// a client id or a refusal, never a crash. A token is only accepted when
// it carries our signature, which random bytes cannot.
#include <cstdint>
#include <memory>
#include <string>
#include <variant>

#include "operator/apiserver/auth.h"

namespace {
const char kEcPublicKey[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2zdA5OUZoK0memCykq6ldCxGgRF2\n"
    "cS9qkdvu6ljdAbvVx/mK7CxzNLKH2UWtFjqD7J4b6POYyFxSo1C3BakGCw==\n"
    "-----END PUBLIC KEY-----\n";

std::unique_ptr<mm::apiserver::Authorizer> Make(
    std::variant<std::unique_ptr<mm::apiserver::Authorizer>, std::string> r) {
  auto* a = std::get_if<std::unique_ptr<mm::apiserver::Authorizer>>(&r);
  if (!a) __builtin_trap();
  return std::move(*a);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static auto hs = Make(mm::apiserver::JwtAuthorizer(mm::apiserver::JwtAlgorithm::kHS256,
                                                     std::string(32, 'k'), {.audience = "mm", .issuer = "i"}));
  static auto es = Make(mm::apiserver::JwtAuthorizerFromPublicKey(kEcPublicKey));
  mm::http::Request req;
  req.headers.push_back({"Authorization", std::string(reinterpret_cast<const char*>(data), size)});
  if (std::holds_alternative<std::string>(hs->Authenticate(req))) __builtin_trap();  // unsigned bytes accepted
  if (std::holds_alternative<std::string>(es->Authenticate(req))) __builtin_trap();
  if (size > 7) {
    req.headers.back().value = "Bearer " + std::string(reinterpret_cast<const char*>(data), size);
    if (std::holds_alternative<std::string>(hs->Authenticate(req))) __builtin_trap();
  }
  return 0;
}
