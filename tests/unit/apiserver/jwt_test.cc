// JWT verification (OpenSSL, operator/apiserver/auth.cc) against tokens signed
// by another implementation (libjwt), with keys made in memory.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <ctime>
#include <memory>

#include "operator/apiserver/auth.h"
#include "tests/support/jwt_sign.h"

namespace mm::apiserver {
namespace {
using mm::testing::JwtClaims;
using mm::testing::SignJwt;

struct KeyPair {
  std::string private_pem, public_pem;
};

KeyPair MakeKey(const char* type, const char* param) {
  EVP_PKEY* k = std::string(type) == "RSA" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048})
                                           : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", param);
  std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> key(k, EVP_PKEY_free);
  auto pem = [&](bool priv) {
    std::unique_ptr<BIO, int (*)(BIO*)> bio(BIO_new(BIO_s_mem()), BIO_free);
    if (priv) PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    else PEM_write_bio_PUBKEY(bio.get(), key.get());
    char* data = nullptr;
    long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
  };
  return {pem(true), pem(false)};
}

std::unique_ptr<Authorizer> Make(std::variant<std::unique_ptr<Authorizer>, std::string> r) {
  if (auto* e = std::get_if<std::string>(&r)) ADD_FAILURE() << *e;
  auto* a = std::get_if<std::unique_ptr<Authorizer>>(&r);
  return a ? std::move(*a) : nullptr;
}

// The client id, or "error: <why>".
std::string Auth(const Authorizer& a, const std::string& authorization) {
  Request req;
  req.headers.push_back({"Authorization", authorization});
  auto r = a.Authenticate(req);
  if (auto* id = std::get_if<std::string>(&r)) return *id;
  return "error: " + std::get<AuthError>(r).message;
}

const std::string kSecret = "0123456789abcdef0123456789abcdef";

std::string B64Url(const std::string& in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  unsigned acc = 0;
  int bits = 0;
  for (unsigned char ch : in) {
    acc = (acc << 8) | ch;
    bits += 8;
    while (bits >= 6) out += kAlphabet[(acc >> (bits -= 6)) & 63];
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 63];
  return out;
}

TEST(Base64Url, DecodesUnpaddedAndRefusesEverythingElse) {
  EXPECT_EQ(Base64UrlDecode(""), "");
  EXPECT_EQ(Base64UrlDecode("YQ"), "a");
  EXPECT_EQ(Base64UrlDecode("YWI"), "ab");
  EXPECT_EQ(Base64UrlDecode("YWJj"), "abc");
  EXPECT_EQ(Base64UrlDecode("-_8"), "\xfb\xff");
  EXPECT_EQ(Base64UrlDecode("YQ=="), std::nullopt);  // padding
  EXPECT_EQ(Base64UrlDecode("a+b/"), std::nullopt);  // base64, not base64url
  EXPECT_EQ(Base64UrlDecode("YWJjZ"), std::nullopt); // 1 char past a group
  EXPECT_EQ(Base64UrlDecode("YR"), std::nullopt);    // non-zero leftover bits
  for (std::string s : {"", "a", "ab", "abc", "\xff\x00\x10 binary"}) EXPECT_EQ(Base64UrlDecode(B64Url(s)), s);
}

TEST(Jwt, Hs256AcceptsAValidTokenAndReadsSub) {
  auto a = Make(JwtAuthorizer(JwtAlgorithm::kHS256, kSecret));
  ASSERT_TRUE(a);
  EXPECT_EQ(Auth(*a, "Bearer " + SignJwt("HS256", kSecret)), "alice");
}

TEST(Jwt, Hs256RefusesBadTokensWithTheReason) {
  auto a = Make(JwtAuthorizer(JwtAlgorithm::kHS256, kSecret));
  ASSERT_TRUE(a);
  std::string good = SignJwt("HS256", kSecret);
  EXPECT_EQ(Auth(*a, good), "error: missing bearer token");
  EXPECT_EQ(Auth(*a, "Bearer " + SignJwt("HS256", std::string(32, 'z'))), "error: invalid token");
  EXPECT_EQ(Auth(*a, "Bearer " + SignJwt("none", "")), "error: token algorithm not accepted");
  EXPECT_EQ(Auth(*a, "Bearer " + SignJwt("HS256", kSecret, {.exp_in = -100})), "error: token expired");
  EXPECT_EQ(Auth(*a, "Bearer " + SignJwt("HS256", kSecret, {.nbf_in = 100})), "error: token not valid yet");
  EXPECT_EQ(Auth(*a, "Bearer " + SignJwt("HS256", kSecret, {.exp = false})), "error: token has no exp");
  EXPECT_EQ(Auth(*a, "Bearer " + SignJwt("HS256", kSecret, {.sub = ""})), "error: token has no sub");
  EXPECT_EQ(Auth(*a, "Bearer " + std::string(9000, 'a')), "error: token too large");
  EXPECT_EQ(Auth(*a, "Bearer a.b"), "error: invalid token");
  EXPECT_EQ(Auth(*a, "Bearer " + good + ".x"), "error: invalid token");
  // A payload swapped under a valid signature.
  auto d1 = good.find('.'), d2 = good.rfind('.');
  std::string other = SignJwt("HS256", kSecret, {.sub = "mallory"});
  std::string spliced = good.substr(0, d1) + other.substr(other.find('.'), other.rfind('.') - other.find('.')) +
                        good.substr(d2);
  EXPECT_EQ(Auth(*a, "Bearer " + spliced), "error: invalid token");
  // A header with "crit" (RFC 7515: must be understood), validly signed.
  std::string input = B64Url(R"({"alg":"HS256","crit":["exp"],"exp":1})") + good.substr(d1, d2 - d1);
  unsigned char mac[32];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), kSecret.data(), static_cast<int>(kSecret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &mac_len);
  std::string crit = input + "." + B64Url(std::string(reinterpret_cast<char*>(mac), mac_len));
  EXPECT_EQ(Auth(*a, "Bearer " + crit), "error: token has critical header extensions");
  // One flipped signature character.
  std::string flipped = good;
  flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
  EXPECT_EQ(Auth(*a, "Bearer " + flipped), "error: invalid token");
}

TEST(Jwt, LeewayCeilingAudienceIssuerAndScheme) {
  auto a = Make(JwtAuthorizer(JwtAlgorithm::kHS256, kSecret));
  ASSERT_TRUE(a);
  // Default leeway 30 s on both ends of the validity window.
  EXPECT_EQ(Auth(*a, "Bearer " + SignJwt("HS256", kSecret, {.exp_in = -10})), "alice");
  EXPECT_EQ(Auth(*a, "Bearer " + SignJwt("HS256", kSecret, {.nbf_in = 10})), "alice");
  // exp ceiling (24 h by default): a token valid for ever is refused.
  EXPECT_EQ(Auth(*a, "Bearer " + SignJwt("HS256", kSecret, {.exp_in = 3 * 24 * 3600})),
            "error: token exp is more than 86400 s away");
  EXPECT_EQ(Auth(*a, "Bearer " + SignJwt("HS256", kSecret, {.exp_in = 23 * 3600})), "alice");
  // The scheme in any case, any number of spaces (RFC 7235).
  std::string good = SignJwt("HS256", kSecret);
  EXPECT_EQ(Auth(*a, "bearer " + good), "alice");
  EXPECT_EQ(Auth(*a, "BEARER   " + good), "alice");
  EXPECT_EQ(Auth(*a, "Bearer"), "error: missing bearer token");
  EXPECT_EQ(Auth(*a, "Bearerx " + good), "error: missing bearer token");

  auto strict = Make(JwtAuthorizer(JwtAlgorithm::kHS256, kSecret,
                                   {.audience = "matchmaker", .issuer = "https://id.example", .leeway = std::chrono::seconds(0)}));
  ASSERT_TRUE(strict);
  JwtClaims ok{.iss = "https://id.example", .aud = "matchmaker"};
  EXPECT_EQ(Auth(*strict, "Bearer " + SignJwt("HS256", kSecret, ok)), "alice");
  JwtClaims in_list{.iss = "https://id.example", .aud_json = R"(["billing", "matchmaker"])"};
  EXPECT_EQ(Auth(*strict, "Bearer " + SignJwt("HS256", kSecret, in_list)), "alice");
  JwtClaims other_aud{.iss = "https://id.example", .aud = "billing"};
  EXPECT_EQ(Auth(*strict, "Bearer " + SignJwt("HS256", kSecret, other_aud)), "error: token audience not accepted");
  JwtClaims no_aud{.iss = "https://id.example"};
  EXPECT_EQ(Auth(*strict, "Bearer " + SignJwt("HS256", kSecret, no_aud)), "error: token audience not accepted");
  JwtClaims other_iss{.iss = "https://evil.example", .aud = "matchmaker"};
  EXPECT_EQ(Auth(*strict, "Bearer " + SignJwt("HS256", kSecret, other_iss)), "error: token issuer not accepted");
  JwtClaims late{.exp_in = -5, .iss = "https://id.example", .aud = "matchmaker"};
  EXPECT_EQ(Auth(*strict, "Bearer " + SignJwt("HS256", kSecret, late)), "error: token expired") << "leeway 0";
}

TEST(Jwt, RefusalsCarryABearerChallenge) {
  auto a = Make(JwtAuthorizer(JwtAlgorithm::kHS256, kSecret));
  ASSERT_TRUE(a);
  auto challenge = [&](const std::string& authorization) {
    Request req;
    if (!authorization.empty()) req.headers.push_back({"Authorization", authorization});
    auto r = a->Authenticate(req);
    auto* e = std::get_if<AuthError>(&r);
    return e ? e->challenge : std::string("<accepted>");
  };
  EXPECT_EQ(challenge(""), "Bearer realm=\"matchmaker\"");
  EXPECT_EQ(challenge("Bearer " + SignJwt("HS256", kSecret, {.exp_in = -100})),
            "Bearer realm=\"matchmaker\", error=\"invalid_token\", error_description=\"token expired\"");
}

TEST(Jwt, Rs256PinsTheAlgorithmToTheRsaKey) {
  KeyPair k = MakeKey("RSA", nullptr);
  auto a = Make(JwtAuthorizerFromPublicKey(k.public_pem));
  ASSERT_TRUE(a);
  EXPECT_EQ(Auth(*a, "Bearer " + SignJwt("RS256", k.private_pem, {.sub = "dave"})), "dave");
  // Key confusion: HS256 keyed with the public PEM.
  EXPECT_EQ(Auth(*a, "Bearer " + SignJwt("HS256", k.public_pem)), "error: token algorithm not accepted");
  KeyPair other = MakeKey("RSA", nullptr);
  EXPECT_EQ(Auth(*a, "Bearer " + SignJwt("RS256", other.private_pem)), "error: invalid token");
}

TEST(Jwt, Es256VerifiesRawSignaturesWithTheP256Key) {
  KeyPair k = MakeKey("EC", "P-256");
  auto a = Make(JwtAuthorizerFromPublicKey(k.public_pem));
  ASSERT_TRUE(a);
  std::string good = SignJwt("ES256", k.private_pem, {.sub = "carol"});
  EXPECT_EQ(Auth(*a, "Bearer " + good), "carol");
  KeyPair other = MakeKey("EC", "P-256");
  EXPECT_EQ(Auth(*a, "Bearer " + SignJwt("ES256", other.private_pem)), "error: invalid token");
  EXPECT_EQ(Auth(*a, "Bearer " + good.substr(0, good.size() - 4)), "error: invalid token");  // short signature
  EXPECT_EQ(Auth(*a, "Bearer " + SignJwt("HS256", k.public_pem)), "error: token algorithm not accepted");
}

TEST(Jwt, KeysThatDoNotFitTheAlgorithmAreRefusedAtStart) {
  auto err = [](std::variant<std::unique_ptr<Authorizer>, std::string> r) {
    auto* e = std::get_if<std::string>(&r);
    return e ? *e : std::string("accepted");
  };
  EXPECT_EQ(err(JwtAuthorizer(JwtAlgorithm::kHS256, "short")), "HS256 secret must be at least 32 bytes");
  EXPECT_EQ(err(JwtAuthorizer(JwtAlgorithm::kHS256, "")), "empty key");
  EXPECT_EQ(err(JwtAuthorizerFromPublicKey("not a key")),
            "expected a PEM public key (-----BEGIN PUBLIC KEY-----)");
  KeyPair rsa = MakeKey("RSA", nullptr), p384 = MakeKey("EC", "P-384");
  EXPECT_EQ(err(JwtAuthorizer(JwtAlgorithm::kES256, rsa.public_pem)), "ES256 needs an EC P-256 public key");
  EXPECT_EQ(err(JwtAuthorizer(JwtAlgorithm::kRS256, p384.public_pem)), "RS256 needs an RSA public key");
  EXPECT_EQ(err(JwtAuthorizerFromPublicKey(p384.public_pem)), "ES256 needs an EC P-256 public key");
}

}  // namespace
}  // namespace mm::apiserver
