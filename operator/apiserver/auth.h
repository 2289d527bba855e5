#pragma once

// Who is asking: the Authorizer turns a request's credential into a client
// id. `header`: the Authorization value is the client id (go-matchmaker).
// `jwt`: "Authorization: Bearer <JWT>" (JWS compact), verified with
// OpenSSL against the configured key (parsed once), the algorithm pinned to
// that key (alg:none and algorithm confusion refused), exp and nbf
// enforced; the client id is `sub`. Not libjwt: Debian has no static
// libjwt, and matchmakerd links statically for its image.

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
};

class Authorizer {
 public:
  virtual ~Authorizer() = default;
  // The client id, or why the credential is rejected (-> 401).
  virtual std::variant<std::string, AuthError> Authenticate(const Request& req) const = 0;
};

std::unique_ptr<Authorizer> HeaderAuthorizer();

enum class JwtAlgorithm { kHS256, kRS256, kES256 };

// HS256 with a shared secret; RS256/ES256 with a PEM public key (the
// algorithm is read from the key type). Errors describe a bad key.
std::variant<std::unique_ptr<Authorizer>, std::string> JwtAuthorizer(JwtAlgorithm alg, std::string key);
std::variant<std::unique_ptr<Authorizer>, std::string> JwtAuthorizerFromPublicKey(std::string pem);

// base64url without padding (RFC 7515); nullopt for anything else.
std::optional<std::string> Base64UrlDecode(std::string_view in);

}  // namespace mm::apiserver
