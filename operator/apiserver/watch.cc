#include "operator/apiserver/watch.h"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <deque>

#include "api/v1alpha1/codec.h"
#include "operator/apiserver/errors.h"
#include "operator/apiserver/objects.h"
#include "operator/reconcile/controller.h"

namespace mm::apiserver {
namespace net = boost::asio;
namespace json = boost::json;
using Kind = WatchHub::Request::Kind;

std::optional<LabelSelector> ParseLabelSelector(std::string_view text) {
  LabelSelector out;
  while (!text.empty()) {
    auto comma = text.find(',');
    auto term = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    bool equal = true;
    std::size_t op = term.find("!=");
    std::size_t len = 2;
    if (op != std::string_view::npos) {
      equal = false;
    } else if ((op = term.find("==")) == std::string_view::npos) {
      op = term.find('=');
      len = 1;
    }
    if (op == std::string_view::npos || op == 0) return std::nullopt;
    std::string key(term.substr(0, op)), value(term.substr(op + len));
    auto bad = [](const std::string& s) { return s.find_first_of(" =!,") != std::string::npos; };
    if (bad(key) || bad(value)) return std::nullopt;
    out.emplace_back(std::move(key), std::move(value), equal);
  }
  return out;
}

bool Matches(const LabelSelector& selector, const std::map<std::string, std::string>& labels) {
  for (const auto& [key, value, equal] : selector) {
    auto it = labels.find(key);
    bool same = it != labels.end() && it->second == value;
    if (same != equal) return false;
  }
  return true;
}

struct WatchHub::Impl : std::enable_shared_from_this<WatchHub::Impl> {
  struct Watcher {
    Request request;
    std::shared_ptr<http::Stream> stream;  // null until its header is out
    std::deque<std::string> pending;       // lines before that
    std::size_t pending_bytes = 0;
    std::chrono::steady_clock::time_point since = std::chrono::steady_clock::now();
  };
  struct Recorded {
    std::uint64_t rv;
    Kind kind;
    std::string pool;
    std::map<std::string, std::string> labels;  // a pool's
    std::string line;
  };

  Impl(net::io_context& io, reconcile::Controller& controller, WatchOptions o)
      : io(io), controller(controller), opts(o), bookmark_timer(io), idle_timer(io) {}

  net::io_context& io;
  reconcile::Controller& controller;
  WatchOptions opts;
  std::map<std::uint64_t, Watcher> watchers;
  std::uint64_t next_id = 1;
  std::deque<Recorded> history;
  std::size_t history_bytes = 0;
  bool recording = false;
  std::uint64_t history_from = 0;  // every change numbered above it is in `history`
  net::steady_timer bookmark_timer, idle_timer;

  static bool Wants(const Request& r, Kind kind, const std::string& pool, const std::map<std::string, std::string>& labels) {
    if (r.kind != kind) return false;
    if (!r.pool.empty() && r.pool != pool) return false;
    return kind != Kind::kPools || Matches(r.selector, labels);
  }

  static std::string Line(std::string_view type, const json::value& object) {
    return json::serialize(json::object{{"type", type}, {"object", object}}) + "\n";
  }

  void StartRecording() {
    idle_timer.cancel();
    if (recording) return;
    recording = true;
    history_from = controller.resource_version();
    controller.OnChange([weak = weak_from_this()](const reconcile::Change& c) {
      if (auto self = weak.lock()) self->Record(c);
    });
    ScheduleBookmark();
  }

  void StopRecording() {
    recording = false;
    history.clear();
    history_bytes = 0;
    controller.OnChange(nullptr);
    bookmark_timer.cancel();
  }

  void Record(const reconcile::Change& c) {
    const char* type = c.type == reconcile::Change::Type::kAdded     ? "ADDED"
                       : c.type == reconcile::Change::Type::kDeleted ? "DELETED"
                                                                      : "MODIFIED";
    Recorded r{c.resource_version, c.pool_object ? Kind::kPools : Kind::kInstances, c.pool, {}, {}};
    if (c.pool_object) {
      r.labels = c.pool_object->metadata.labels;
      r.line = Line(type, api::ToJson(*c.pool_object));
    } else {
      r.line = Line(type, InstanceObject(*c.instance));
    }
    std::vector<std::uint64_t> slow;
    for (auto& [id, w] : watchers) {
      if (Wants(w.request, r.kind, r.pool, r.labels) && !Send(w, r.line)) slow.push_back(id);
    }
    for (auto id : slow) Drop(id, "it does not read its events");
    history_bytes += r.line.size();
    history.push_back(std::move(r));
    while (history.size() > opts.history || history_bytes > opts.history_bytes) {
      history_from = history.front().rv;
      history_bytes -= history.front().line.size();
      history.pop_front();
    }
  }

  bool Send(Watcher& w, const std::string& line) {
    if (w.stream) return w.stream->Write(line);
    if (w.pending_bytes + line.size() > opts.watcher_buffer) return false;
    w.pending_bytes += line.size();
    w.pending.push_back(line);
    return true;
  }

  void Drop(std::uint64_t id, const char* why) {
    auto it = watchers.find(id);
    if (it == watchers.end()) return;
    spdlog::warn("watch: dropping a watcher: {}", why);
    auto stream = std::move(it->second.stream);
    watchers.erase(it);
    if (stream) stream->Close();
    Idle();
  }

  void Gone(std::uint64_t id) {
    watchers.erase(id);
    Idle();
  }

  // The last watcher left: the history is kept a while for resumes.
  void Idle() {
    if (!watchers.empty()) return;
    idle_timer.expires_after(opts.keep_history);
    idle_timer.async_wait([weak = weak_from_this()](auto ec) {
      auto self = weak.lock();
      if (ec || !self || !self->watchers.empty()) return;
      self->StopRecording();
    });
  }

  void ScheduleBookmark() {
    bookmark_timer.expires_after(opts.bookmark);
    bookmark_timer.async_wait([weak = weak_from_this()](auto ec) {
      auto self = weak.lock();
      if (ec || !self || !self->recording) return;
      self->Bookmark();
      self->ScheduleBookmark();
    });
  }

  void Bookmark() {
    std::string rv = std::to_string(controller.resource_version());
    std::vector<std::uint64_t> slow, stale;
    auto now = std::chrono::steady_clock::now();
    for (auto& [id, w] : watchers) {
      if (!w.stream) {
        // Its header never went out (the peer left first).
        if (now - w.since > std::chrono::minutes(1)) stale.push_back(id);
        continue;
      }
      json::object object{{"apiVersion", w.request.kind == Kind::kPools ? api::kApiVersion : "matchmaker.dev/v1alpha1"},
                          {"kind", w.request.kind == Kind::kPools ? "ServerPool" : "Instance"},
                          {"metadata", json::object{{"resourceVersion", rv}}}};
      if (!w.stream->Write(Line("BOOKMARK", object))) slow.push_back(id);
    }
    for (auto id : slow) Drop(id, "it does not read its events");
    for (auto id : stale) Gone(id);
  }

  http::Response Watch(Request req) {
    std::vector<std::string> first;
    std::uint64_t now = controller.resource_version();
    if (watchers.size() >= opts.max_watchers) {
      return Error(Reason::kTooManyRequests, "too many watches (" + std::to_string(opts.max_watchers) +
                                                 "): the admin API keeps room for other requests");
    }
    if (req.kind == Kind::kInstances && !controller.Get(req.pool)) {
      return Error(Reason::kNotFound, "serverpools \"" + req.pool + "\" not found");
    }
    if (req.since && *req.since < now) {
      if (!recording || *req.since < history_from) {
        return Error(Reason::kExpired, "too old resource version: " + std::to_string(*req.since) + " (" +
                                           std::to_string(recording ? history_from + 1 : now) + ")");
      }
      for (const auto& r : history) {
        if (r.rv > *req.since && Wants(req, r.kind, r.pool, r.labels)) first.push_back(r.line);
      }
    } else if (!req.since) {
      if (req.kind == Kind::kPools) {
        for (const auto& p : controller.List()) {
          if (Wants(req, Kind::kPools, p.metadata.name, p.metadata.labels)) first.push_back(Line("ADDED", api::ToJson(p)));
        }
      } else {
        if (auto instances = controller.Instances(req.pool)) {
          for (const auto* i : *instances) first.push_back(Line("ADDED", InstanceObject(*i)));
        }
      }
    }
    StartRecording();
    std::uint64_t id = next_id++;
    Watcher w{std::move(req), nullptr, {}, 0};
    watchers.emplace(id, std::move(w));
    for (auto& line : first) {
      if (!Send(watchers.at(id), line)) {
        watchers.erase(id);
        Idle();
        return Error(Reason::kRequestEntityTooLarge, "the current objects exceed a watcher's buffer; list instead");
      }
    }
    http::Response res{.status = 200, .content_type = "application/json"};
    res.stream_limit = opts.watcher_buffer;
    res.stream = [weak = weak_from_this(), id](std::shared_ptr<http::Stream> stream) {
      auto self = weak.lock();
      if (!self) return stream->Close();
      auto it = self->watchers.find(id);
      if (it == self->watchers.end()) return stream->Close();
      auto& w = it->second;
      w.stream = stream;
      for (auto& line : w.pending) {
        if (!stream->Write(std::move(line))) return self->Drop(id, "it does not read its events");
      }
      w.pending.clear();
      w.pending_bytes = 0;
      stream->OnClose([weak, id] {
        if (auto self = weak.lock()) self->Gone(id);
      });
    };
    return res;
  }
};

WatchHub::WatchHub(net::io_context& io, reconcile::Controller& controller, WatchOptions options)
    : impl_(std::make_shared<Impl>(io, controller, options)) {}

WatchHub::~WatchHub() {
  impl_->bookmark_timer.cancel();
  impl_->idle_timer.cancel();
  if (impl_->recording) impl_->controller.OnChange(nullptr);
  for (auto& [id, w] : impl_->watchers) {
    if (w.stream) w.stream->Close();
  }
}

http::Response WatchHub::Watch(Request request) { return impl_->Watch(std::move(request)); }

std::size_t WatchHub::watchers() const { return impl_->watchers.size(); }

}  // namespace mm::apiserver
