#include "cmd/matchmakerd/json_log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>

#include "operator/log/context.h"

namespace mm::cmd {
namespace {

// `text` escaped for a JSON string.
void Escape(std::string_view text, spdlog::memory_buf_t& dest) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': dest.append(std::string_view("\\\"")); break;
      case '\\': dest.append(std::string_view("\\\\")); break;
      case '\n': dest.append(std::string_view("\\n")); break;
      case '\t': dest.append(std::string_view("\\t")); break;
      default:
        if (c < 0x20) {
          const char esc[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
          dest.append(esc, esc + sizeof esc);
        } else {
          dest.push_back(ch);
        }
    }
  }
}

// %* : the message, escaped for a JSON string.
class JsonMessage : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    Escape(std::string_view(msg.payload.data(), msg.payload.size()), dest);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JsonMessage>(); }
};

// %& : the line's structured fields (log::Scope), as ,"key":"value" pairs.
// Formatted on the thread that logs (the default logger is synchronous).
class JsonFields : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&, spdlog::memory_buf_t& dest) override {
    const auto& f = log::Current();
    for (const auto& [key, value] : {std::pair{std::string_view("pool"), &f.pool},
                                     std::pair{std::string_view("instance"), &f.instance},
                                     std::pair{std::string_view("client"), &f.client},
                                     std::pair{std::string_view("event"), &f.event}}) {
      if (value->empty()) continue;
      dest.append(std::string_view(",\""));
      dest.append(key);
      dest.append(std::string_view("\":\""));
      Escape(*value, dest);
      dest.push_back('"');
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JsonFields>(); }
};

}  // namespace

void UseJsonLogs() {
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  formatter->add_flag<JsonMessage>('*').add_flag<JsonFields>('&').set_pattern(
      R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","msg":"%*"%&})");
  spdlog::set_formatter(std::move(formatter));
}

}  // namespace mm::cmd
