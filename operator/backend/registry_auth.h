#pragma once

// Registry credentials for image pulls, read from a file in Docker's own
// config.json format:
//   {"auths": {"registry.example.com:5000": {"auth": "<base64 user:password>"},
//              "127.0.0.1:5000": {"username": "u", "password": "p"}}}
// Keys may be written as Docker writes them ("https://index.docker.io/v1/",
// "https://host:port"). Pure: no I/O but Load. Credentials are never logged.

#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace mm::backend {

struct Credential {
  std::string username;
  std::string password;
};

// The registry an image reference names: its first path component when it
// looks like a host (has '.' or ':', or is "localhost"), else "docker.io".
std::string RegistryHost(std::string_view image);
// A config.json key as a registry host: scheme, path and Docker Hub's
// aliases folded ("https://index.docker.io/v1/" -> "docker.io").
std::string NormalizeRegistryKey(std::string_view key);

// An image reference split for POST /images/create: name and tag (or
// digest); "latest" when the reference has neither, as the docker CLI does.
struct ImageRef {
  std::string name;
  std::string tag;
};
ImageRef SplitImage(std::string_view image);

class RegistryAuth {
 public:
  // config.json text -> credentials, or what is wrong with it (never the
  // secret itself).
  static std::variant<RegistryAuth, std::string> Parse(std::string_view text);
  // Reads and parses `path`.
  static std::variant<RegistryAuth, std::string> Load(const std::string& path);

  // The credential for `image`'s registry, or null.
  const Credential* For(std::string_view image) const;
  // The X-Registry-Auth header value for `image` (base64url of the engine's
  // AuthConfig JSON), or "" when there is no credential for its registry.
  std::string Header(std::string_view image) const;
  std::size_t size() const { return by_host_.size(); }

 private:
  std::map<std::string, Credential> by_host_;
};

// Pulls in flight, one per image: whoever asks for an image already being
// pulled waits for that pull instead of starting another.
class PullQueue {
 public:
  using Waiter = std::function<void(std::string /*error, "" when pulled*/)>;
  struct Joined {
    bool start = false;     // the caller starts the pull
    bool new_pool = false;  // the first waiter of `pool` on this pull
  };
  Joined Join(const std::string& image, const std::string& pool, Waiter waiter);
  struct Pull {
    std::set<std::string> pools;
    std::vector<Waiter> waiters;
  };
  // The pull of `image` ended: its pools and waiters, now forgotten.
  Pull Finish(const std::string& image);
  std::size_t in_flight() const { return pulls_.size(); }

 private:
  std::map<std::string, Pull> pulls_;
};

}  // namespace mm::backend
