#include "tests/support/jwt_sign.h"

#include <jwt.h>

#include <cstdlib>
#include <ctime>

namespace mm::testing {

std::string SignJwt(const std::string& alg_name, const std::string& key, const JwtClaims& c) {
  jwt_alg_t alg = alg_name == "none"    ? JWT_ALG_NONE
                  : alg_name == "ES256" ? JWT_ALG_ES256
                  : alg_name == "RS256" ? JWT_ALG_RS256
                                        : JWT_ALG_HS256;
  jwt_t* jwt = nullptr;
  jwt_new(&jwt);
  long now = static_cast<long>(std::time(nullptr));
  if (!c.sub.empty()) jwt_add_grant(jwt, "sub", c.sub.c_str());
  if (c.exp) jwt_add_grant_int(jwt, "exp", now + c.exp_in);
  if (c.nbf_in) jwt_add_grant_int(jwt, "nbf", now + c.nbf_in);
  if (!c.iss.empty()) jwt_add_grant(jwt, "iss", c.iss.c_str());
  if (!c.aud.empty()) jwt_add_grant(jwt, "aud", c.aud.c_str());
  if (!c.aud_json.empty()) jwt_add_grants_json(jwt, ("{\"aud\":" + c.aud_json + "}").c_str());
  jwt_set_alg(jwt, alg, alg == JWT_ALG_NONE ? nullptr : reinterpret_cast<const unsigned char*>(key.data()),
              alg == JWT_ALG_NONE ? 0 : static_cast<int>(key.size()));
  char* s = jwt_encode_str(jwt);
  std::string out = s ? s : "";
  std::free(s);
  jwt_free(jwt);
  return out;
}

}  // namespace mm::testing
