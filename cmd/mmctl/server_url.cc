#include "cmd/mmctl/server_url.h"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <string>

namespace mm::mmctl {

std::variant<ServerAddress, std::string> ParseServerUrl(const std::string& url) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return url + ": not a URL (want http://HOST:PORT)";
  const auto& u = *parsed;
  if (u.scheme_id() == boost::urls::scheme::https) {
    return url + ": https is not supported yet; use http:// (terminate TLS in front of matchmakerd)";
  }
  if (u.scheme_id() != boost::urls::scheme::http) return url + ": the scheme must be http";
  if (u.host().empty()) return url + ": no host";
  if (u.has_userinfo()) return url + ": credentials in the URL are not supported (use --token-file)";
  ServerAddress a;
  a.host = u.host_type() == boost::urls::host_type::ipv6 ? u.host_ipv6_address().to_string() : std::string(u.host());
  if (u.has_port()) {
    std::string digits(u.port());
    unsigned long n = digits.empty() || digits.size() > 5 ? 0 : std::stoul(digits);
    if (n == 0 || n > 65535) return url + ": the port must be 1-65535";
    a.port = static_cast<std::uint16_t>(n);
  }
  return a;
}

}  // namespace mm::mmctl
