#pragma once

// --server and --client-server: "http://HOST[:PORT][/...]" (Boost.URL).
// IPv6 hosts in brackets; https is refused clearly until it is supported.

#include <cstdint>
#include <string>
#include <variant>

namespace mm::mmctl {

struct ServerAddress {
  std::string host;  // a name, an IPv4 address, or an IPv6 address without brackets
  std::uint16_t port = 80;
};

// The address, or why the URL cannot be used (starting with the URL).
std::variant<ServerAddress, std::string> ParseServerUrl(const std::string& url);

}  // namespace mm::mmctl
