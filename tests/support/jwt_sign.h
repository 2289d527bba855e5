#pragma once

// Signs JWTs with libjwt for the tests that present them to matchmakerd
// (which verifies with OpenSSL: two implementations meet).

#include <string>

namespace mm::testing {

struct JwtClaims {
  std::string sub = "alice";  // empty: no sub claim
  long exp_in = 60;           // seconds from now
  bool exp = true;            // false: no exp claim
  long nbf_in = 0;            // seconds from now; 0: no nbf claim
  std::string iss;            // empty: no iss claim
  std::string aud;            // a string aud claim; empty: none
  std::string aud_json;       // an aud claim given as JSON (an array); empty: none
};

// alg "HS256" (key = the secret), "RS256" or "ES256" (key = a private PEM),
// or "none" (key unused).
std::string SignJwt(const std::string& alg, const std::string& key, const JwtClaims& claims = {});

}  // namespace mm::testing
