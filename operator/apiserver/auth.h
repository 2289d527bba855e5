#pragma once

// Who is asking: the Authorizer turns a request's credential into a client
// id. `header`: the Authorization value is the client id (go-matchmaker).
// `jwt`: "Authorization: Bearer <JWT>" (JWS compact; the scheme in any
// case), verified with OpenSSL against the configured key (parsed once),
// the algorithm pinned to that key (alg:none and algorithm confusion
// refused), exp (required, within a ceiling) and nbf enforced with a
// leeway, aud and iss checked when configured; the client id is `sub`.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "operator/http/message.h"

namespace mm::apiserver {

using http::Reply;
using http::Request;
using http::Response;

struct AuthError {
  std::string message;
  std::string challenge;  // a WWW-Authenticate value for the 401 ("" for none)
};

class Authorizer {
 public:
  virtual ~Authorizer() = default;
  // The client id, or why the credential is rejected (-> 401).
  virtual std::variant<std::string, AuthError> Authenticate(const Request& req) const = 0;
};

std::unique_ptr<Authorizer> HeaderAuthorizer();

enum class JwtAlgorithm { kHS256, kRS256, kES256 };

struct JwtOptions {
  std::string audience;  // when set, `aud` (a string or an array) must name it
  std::string issuer;    // when set, `iss` must equal it
  std::chrono::seconds leeway{30};                  // clock skew allowed on exp and nbf
  std::chrono::seconds max_lifetime{24 * 3600};     // exp further than this from now is refused
};

// HS256 with a shared secret; RS256/ES256 with a PEM public key (the
// algorithm is read from the key type). Errors describe a bad key.
std::variant<std::unique_ptr<Authorizer>, std::string> JwtAuthorizer(JwtAlgorithm alg, std::string key,
                                                                      JwtOptions options = {});
std::variant<std::unique_ptr<Authorizer>, std::string> JwtAuthorizerFromPublicKey(std::string pem,
                                                                                  JwtOptions options = {});

// base64url without padding (RFC 7515); nullopt for anything else.
std::optional<std::string> Base64UrlDecode(std::string_view in);

}  // namespace mm::apiserver
