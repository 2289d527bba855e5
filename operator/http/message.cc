#include "operator/http/message.h"

#include <strings.h>

#include "api/reservation/client_id.h"

namespace mm::http {

const std::string* Request::Find(std::string_view name) const {
  for (const auto& h : headers) {
    if (h.name.size() == name.size() &&
        strncasecmp(h.name.data(), name.data(), name.size()) == 0) {
      return &h.value;
    }
  }
  return nullptr;
}

std::vector<std::pair<std::string, std::string>> ParseQuery(
    std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  auto decode = [](std::string_view s) {
    std::string plus(s);
    for (char& c : plus) {
      if (c == '+') c = ' ';
    }
    return reservation::PercentDecode(plus).value_or(plus);
  };
  while (!query.empty()) {
    auto amp = query.find('&');
    auto part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{}
                                          : query.substr(amp + 1);
    if (part.empty()) continue;
    auto eq = part.find('=');
    if (eq == std::string_view::npos) {
      out.emplace_back(decode(part), "");
    } else {
      out.emplace_back(decode(part.substr(0, eq)), decode(part.substr(eq + 1)));
    }
  }
  return out;
}

Response JsonError(int status, std::string_view message) {
  std::string body = "{\"message\":\"";
  for (unsigned char c : message) {
    switch (c) {
      case '"': body += "\\\""; break;
      case '\\': body += "\\\\"; break;
      case '\n': body += "\\n"; break;
      default:
        if (c < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          body += "\\u00";
          body.push_back(kHex[c >> 4]);
          body.push_back(kHex[c & 0xf]);
        } else {
          body.push_back(static_cast<char>(c));
        }
    }
  }
  body += "\"}\n";
  return Response{.status = status,
                  .content_type = "application/json",
                  .body = std::move(body)};
}

}  // namespace mm::http
