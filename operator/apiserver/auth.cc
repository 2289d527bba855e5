#include "operator/apiserver/auth.h"

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <boost/json.hpp>
#include <cctype>
#include <cmath>
#include <ctime>
#include <memory>
#include <optional>

namespace mm::apiserver {
namespace {

class HeaderAuth : public Authorizer {
 public:
  std::variant<std::string, AuthError> Authenticate(const Request& req) const override {
    const std::string* v = req.Find("Authorization");
    if (!v || v->empty()) return AuthError{"missing Authorization header (it carries the client id)"};
    return *v;
  }
};

using PKey = std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)>;

PKey ReadPublicKey(const std::string& pem) {
  std::unique_ptr<BIO, int (*)(BIO*)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  return PKey(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr, EVP_PKEY_free);
}

const char* AlgName(JwtAlgorithm a) {
  switch (a) {
    case JwtAlgorithm::kHS256: return "HS256";
    case JwtAlgorithm::kRS256: return "RS256";
    case JwtAlgorithm::kES256: return "ES256";
  }
  return "";
}

bool VerifyWithKey(EVP_PKEY* key, std::string_view input, const std::string& sig) {
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1) return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                          reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
}

// JWS ES256 signatures are r||s, 32 bytes each; OpenSSL verifies DER.
std::optional<std::string> EcdsaRawToDer(const std::string& raw) {
  if (raw.size() != 64) return std::nullopt;
  std::unique_ptr<ECDSA_SIG, void (*)(ECDSA_SIG*)> sig(ECDSA_SIG_new(), ECDSA_SIG_free);
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return std::nullopt;
  }
  unsigned char* der = nullptr;
  int n = i2d_ECDSA_SIG(sig.get(), &der);
  if (n <= 0) return std::nullopt;
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(n));
  OPENSSL_free(der);
  return out;
}

// A NumericDate claim (seconds, integer or not).
std::optional<double> NumericClaim(const boost::json::object& claims, const char* name) {
  const auto* v = claims.if_contains(name);
  if (!v) return std::nullopt;
  if (v->is_int64()) return static_cast<double>(v->get_int64());
  if (v->is_uint64()) return static_cast<double>(v->get_uint64());
  if (v->is_double() && std::isfinite(v->get_double())) return v->get_double();
  return std::nullopt;
}

std::optional<boost::json::object> JsonObject(const std::string& text) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.get_object());
}

// RFC 6750 3: the challenge of a 401.
AuthError Refuse(std::string message, bool had_token = true) {
  std::string challenge = "Bearer realm=\"matchmaker\"";
  if (had_token) {
    std::string desc;
    for (char c : message) desc.push_back(c == '"' || c == '\\' ? '\'' : c);
    challenge += ", error=\"invalid_token\", error_description=\"" + desc + "\"";
  }
  return AuthError{std::move(message), std::move(challenge)};
}

// "Bearer <token>": the scheme in any case (RFC 7235 2.1), one or more spaces.
std::optional<std::string_view> BearerToken(std::string_view v) {
  constexpr std::string_view kScheme = "bearer";
  if (v.size() <= kScheme.size() || v[kScheme.size()] != ' ') return std::nullopt;
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(v[i])) != kScheme[i]) return std::nullopt;
  }
  v.remove_prefix(kScheme.size());
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  if (v.empty()) return std::nullopt;
  return v;
}

class Jwt : public Authorizer {
 public:
  Jwt(JwtAlgorithm alg, std::string secret, PKey key, JwtOptions options)
      : alg_(alg), secret_(std::move(secret)), key_(std::move(key)), options_(std::move(options)) {}

  std::variant<std::string, AuthError> Authenticate(const Request& req) const override {
    const std::string* v = req.Find("Authorization");
    auto bearer = v ? BearerToken(*v) : std::nullopt;
    if (!bearer) return Refuse("missing bearer token", false);
    std::string_view token = *bearer;
    if (token.size() > 8192) return Refuse("token too large");
    auto claims = VerifiedClaims(token);
    if (auto* e = std::get_if<AuthError>(&claims)) return Refuse(e->message);
    const auto& c = std::get<boost::json::object>(claims);
    double now = static_cast<double>(std::time(nullptr));
    double leeway = static_cast<double>(options_.leeway.count());
    auto exp = NumericClaim(c, "exp");
    if (!exp) return Refuse("token has no exp");
    if (*exp <= now - leeway) return Refuse("token expired");
    if (*exp > now + static_cast<double>(options_.max_lifetime.count()) + leeway) {
      return Refuse("token exp is more than " + std::to_string(options_.max_lifetime.count()) + " s away");
    }
    if (c.contains("nbf")) {
      auto nbf = NumericClaim(c, "nbf");
      if (!nbf) return Refuse("invalid token");
      if (*nbf > now + leeway) return Refuse("token not valid yet");
    }
    if (!options_.issuer.empty()) {
      const auto* iss = c.if_contains("iss");
      if (!iss || !iss->is_string() || iss->get_string() != options_.issuer) return Refuse("token issuer not accepted");
    }
    if (!options_.audience.empty()) {
      const auto* aud = c.if_contains("aud");
      bool ok = aud && aud->is_string() && aud->get_string() == options_.audience;
      if (aud && aud->is_array()) {
        for (const auto& a : aud->get_array()) ok = ok || (a.is_string() && a.get_string() == options_.audience);
      }
      if (!ok) return Refuse("token audience not accepted");
    }
    const auto* sub = c.if_contains("sub");
    if (!sub || !sub->is_string() || sub->get_string().empty()) return Refuse("token has no sub");
    return std::string(sub->get_string());
  }

 private:
  // The payload of a JWS compact token whose header names our algorithm
  // and whose signature our key verifies. Pinning the algorithm to the key
  // is what refuses alg:none and RS/HS key confusion.
  std::variant<boost::json::object, AuthError> VerifiedClaims(std::string_view token) const {
    auto dot1 = token.find('.');
    auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
      return AuthError{"invalid token"};
    }
    auto header_text = Base64UrlDecode(token.substr(0, dot1));
    auto payload_text = Base64UrlDecode(token.substr(dot1 + 1, dot2 - dot1 - 1));
    auto sig = Base64UrlDecode(token.substr(dot2 + 1));
    if (!header_text || !payload_text || !sig) return AuthError{"invalid token"};
    auto header = JsonObject(*header_text);
    if (!header) return AuthError{"invalid token"};
    const auto* alg = header->if_contains("alg");
    if (!alg || !alg->is_string() || alg->get_string() != AlgName(alg_)) {
      return AuthError{"token algorithm not accepted"};
    }
    // RFC 7515 4.1.11: extensions we do not understand must be refused.
    if (header->contains("crit")) return AuthError{"token has critical header extensions"};
    if (!Verify(token.substr(0, dot2), *sig)) return AuthError{"invalid token"};
    auto claims = JsonObject(*payload_text);
    if (!claims) return AuthError{"invalid token"};
    return std::move(*claims);
  }

  bool Verify(std::string_view input, const std::string& sig) const {
    switch (alg_) {
      case JwtAlgorithm::kHS256: {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        if (!HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
                  reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len)) {
          return false;
        }
        return sig.size() == len && CRYPTO_memcmp(mac, sig.data(), len) == 0;
      }
      case JwtAlgorithm::kRS256: return VerifyWithKey(key_.get(), input, sig);
      case JwtAlgorithm::kES256: {
        auto der = EcdsaRawToDer(sig);
        return der && VerifyWithKey(key_.get(), input, *der);
      }
    }
    return false;
  }

  JwtAlgorithm alg_;
  std::string secret_;  // HS256
  PKey key_;            // RS256, ES256: parsed once
  JwtOptions options_;
};

}  // namespace

std::unique_ptr<Authorizer> HeaderAuthorizer() { return std::make_unique<HeaderAuth>(); }

std::optional<std::string> Base64UrlDecode(std::string_view in) {
  // RFC 7515: base64url without padding; anything else is refused.
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  unsigned int acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '-') v = 62;
    else if (c == '_') v = 63;
    else return std::nullopt;
    acc = (acc << 6) | static_cast<unsigned int>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  // Leftover bits must be zero (a canonical encoding).
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

std::variant<std::unique_ptr<Authorizer>, std::string> JwtAuthorizer(JwtAlgorithm alg, std::string key,
                                                                      JwtOptions options) {
  if (key.empty()) return std::string("empty key");
  if (alg == JwtAlgorithm::kHS256) {
    if (key.size() < 32) return std::string("HS256 secret must be at least 32 bytes");
    return std::unique_ptr<Authorizer>(
        std::make_unique<Jwt>(alg, std::move(key), PKey(nullptr, EVP_PKEY_free), std::move(options)));
  }
  PKey pkey = ReadPublicKey(key);
  if (!pkey) return std::string("cannot parse the PEM public key");
  int type = EVP_PKEY_base_id(pkey.get());
  if (alg == JwtAlgorithm::kRS256 && type != EVP_PKEY_RSA) return std::string("RS256 needs an RSA public key");
  if (alg == JwtAlgorithm::kES256) {
    char curve[64] = {0};
    size_t len = 0;
    if (type != EVP_PKEY_EC ||
        EVP_PKEY_get_utf8_string_param(pkey.get(), "group", curve, sizeof curve, &len) != 1 ||
        std::string_view(curve, len) != "prime256v1") {
      return std::string("ES256 needs an EC P-256 public key");
    }
  }
  return std::unique_ptr<Authorizer>(std::make_unique<Jwt>(alg, std::string(), std::move(pkey), std::move(options)));
}

std::variant<std::unique_ptr<Authorizer>, std::string> JwtAuthorizerFromPublicKey(std::string pem,
                                                                                  JwtOptions options) {
  if (pem.find("-----BEGIN PUBLIC KEY-----") == std::string::npos) {
    return std::string("expected a PEM public key (-----BEGIN PUBLIC KEY-----)");
  }
  // The key type decides the algorithm: RSA keys RS256, EC keys ES256.
  PKey key = ReadPublicKey(pem);
  if (!key) return std::string("cannot parse the PEM public key");
  switch (EVP_PKEY_base_id(key.get())) {
    case EVP_PKEY_RSA: return JwtAuthorizer(JwtAlgorithm::kRS256, std::move(pem), std::move(options));
    case EVP_PKEY_EC: return JwtAuthorizer(JwtAlgorithm::kES256, std::move(pem), std::move(options));
    default: return std::string("the public key must be RSA (RS256) or EC P-256 (ES256)");
  }
}

}  // namespace mm::apiserver
