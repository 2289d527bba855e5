#include "operator/http/auth.h"

#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cerrno>
#include <ctime>
#include <memory>

namespace mm::http {
namespace {

class HeaderAuth : public Authorizer {
 public:
  std::variant<std::string, AuthError> Authenticate(const Request& req) const override {
    const std::string* v = req.Find("Authorization");
    if (!v || v->empty()) return AuthError{"missing Authorization header (it carries the client id)"};
    return *v;
  }
};

jwt_alg_t ToLibjwt(JwtAlgorithm a) {
  switch (a) {
    case JwtAlgorithm::kHS256: return JWT_ALG_HS256;
    case JwtAlgorithm::kRS256: return JWT_ALG_RS256;
    case JwtAlgorithm::kES256: return JWT_ALG_ES256;
  }
  return JWT_ALG_INVAL;
}

class Jwt : public Authorizer {
 public:
  Jwt(JwtAlgorithm alg, std::string key) : alg_(ToLibjwt(alg)), key_(std::move(key)) {}

  std::variant<std::string, AuthError> Authenticate(const Request& req) const override {
    const std::string* v = req.Find("Authorization");
    if (!v || !v->starts_with("Bearer ")) return AuthError{"missing bearer token"};
    std::string token = v->substr(7);
    if (token.size() > 8192) return AuthError{"token too large"};
    jwt_t* jwt = nullptr;
    // libjwt verifies the signature with our key using the header's alg;
    // pinning that alg below is what stops alg:none and key confusion.
    int rc = jwt_decode(&jwt, token.c_str(), reinterpret_cast<const unsigned char*>(key_.data()),
                        static_cast<int>(key_.size()));
    std::unique_ptr<jwt_t, void (*)(jwt_t*)> guard(jwt, jwt_free);
    if (rc != 0 || !jwt) return AuthError{"invalid token"};
    if (jwt_get_alg(jwt) != alg_) return AuthError{"token algorithm not accepted"};
    std::time_t now = std::time(nullptr);
    errno = 0;
    long exp = jwt_get_grant_int(jwt, "exp");
    if (errno == ENOENT) return AuthError{"token has no exp"};
    if (exp <= now) return AuthError{"token expired"};
    errno = 0;
    long nbf = jwt_get_grant_int(jwt, "nbf");
    if (errno != ENOENT && nbf > now) return AuthError{"token not valid yet"};
    const char* sub = jwt_get_grant(jwt, "sub");
    if (!sub || !*sub) return AuthError{"token has no sub"};
    return std::string(sub);
  }

 private:
  jwt_alg_t alg_;
  std::string key_;
};

}  // namespace

std::unique_ptr<Authorizer> HeaderAuthorizer() { return std::make_unique<HeaderAuth>(); }

std::variant<std::unique_ptr<Authorizer>, std::string> JwtAuthorizer(JwtAlgorithm alg, std::string key) {
  if (key.empty()) return std::string("empty key");
  if (alg == JwtAlgorithm::kHS256 && key.size() < 32) {
    return std::string("HS256 secret must be at least 32 bytes");
  }
  return std::unique_ptr<Authorizer>(std::make_unique<Jwt>(alg, std::move(key)));
}

std::variant<std::unique_ptr<Authorizer>, std::string> JwtAuthorizerFromPublicKey(std::string pem) {
  if (pem.find("-----BEGIN PUBLIC KEY-----") == std::string::npos) {
    return std::string("expected a PEM public key (-----BEGIN PUBLIC KEY-----)");
  }
  // The key type decides the algorithm: RSA keys RS256, EC keys ES256.
  std::unique_ptr<BIO, int (*)(BIO*)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> key(
      bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr, EVP_PKEY_free);
  if (!key) return std::string("cannot parse the PEM public key");
  switch (EVP_PKEY_base_id(key.get())) {
    case EVP_PKEY_RSA: return JwtAuthorizer(JwtAlgorithm::kRS256, std::move(pem));
    case EVP_PKEY_EC: return JwtAuthorizer(JwtAlgorithm::kES256, std::move(pem));
    default: return std::string("the public key must be RSA (RS256) or EC P-256 (ES256)");
  }
}

}  // namespace mm::http
