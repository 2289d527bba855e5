#include "operator/backend/docker_backend.h"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <set>
#include <stdexcept>

#include "api/reservation/client_id.h"
#include "operator/docker/client.h"

namespace mm::backend {
namespace net = boost::asio;
namespace json = boost::json;
using docker::Errc;
using docker::Result;

namespace {

std::string Enc(const std::string& s) { return reservation::PercentEncode(s); }

}  // namespace

struct DockerBackend::Impl : EngineCore, std::enable_shared_from_this<DockerBackend::Impl> {
  struct Tracked {
    std::string pool;
    std::string name;
    std::uint64_t seq = 0;  // when it was tracked or started (see Resync)
  };

  Impl(net::io_context& io, DockerOptions o) : EngineCore(io, o.engine), opts(std::move(o)), resync_timer(io) {}

  DockerOptions opts;
  std::map<std::string, Tracked> tracked;  // container id -> instance
  std::map<std::string, std::string> ids;  // instance name -> container id
  std::set<std::string> creating;          // names with a create in flight
  std::uint64_t track_seq = 0;
  std::set<std::string> doomed;            // removed while being created
  bool adopted = false;  // Adopt() finished: resyncs may run
  net::steady_timer resync_timer;

  void AvailabilityChanged(bool up) override {
    if (up && adopted) Resync();  // what changed (or was left half-made) meanwhile
  }
  void Close() override { resync_timer.cancel(); }

  void Track(const std::string& id, std::string pool, std::string name) {
    if (!name.empty()) ids[name] = id;
    tracked[id] = Tracked{std::move(pool), std::move(name), ++track_seq};
  }

  void Untrack(const std::string& id) {
    auto it = tracked.find(id);
    if (it == tracked.end()) return;
    if (auto n = ids.find(it->second.name); n != ids.end() && n->second == id) ids.erase(n);
    tracked.erase(it);
  }

  // Reports an instance's end once, then removes its container.
  void Exited(const std::string& id, int code, std::string message) {
    auto it = tracked.find(id);
    if (it == tracked.end()) return;
    ExitEvent ev{it->second.pool, it->second.name, code, std::move(message)};
    Untrack(id);
    Exit(std::move(ev));  // nameless: an orphan we stopped, not reported
    Delete(id);
  }

  void Delete(const std::string& id) {
    Call("DELETE", "/containers/" + Enc(id) + "?force=1&v=1", nullptr, [id](Result r) {
      if (!r.ok() && r.code != Errc::kNotFound) {
        spdlog::debug("docker: remove {}: {} (the next resync retries)", id.substr(0, 12), r.message);
      }
    });
  }

  // A container of ours that no instance names: stopped gracefully when it
  // runs (its die event then removes it), removed otherwise.
  void Discard(const std::string& id, bool running) {
    if (!running) return Delete(id);
    Track(id, "", "");
    Stop(id);
  }

  // Graceful stop (the engine sends SIGTERM, SIGKILL after the grace), then
  // the die event reports the exit and removes the container.
  void Stop(const std::string& id, int attempt = 0) {
    auto secs = std::max<long long>(1, (opts.grace.count() + 999) / 1000);
    Call("POST", "/containers/" + Enc(id) + "/stop?t=" + std::to_string(secs), nullptr,
         [weak = weak_from_this(), id, attempt](Result r) {
           auto self = weak.lock();
           if (!self || !self->tracked.contains(id)) return;
           if (r.ok() || r.code == Errc::kNotModified) return;  // die event (or resync) follows
           if (r.code == Errc::kNotFound) return self->Exited(id, -1, "container is gone");
           spdlog::warn("docker: stop {}: {}; retrying", id.substr(0, 12), r.message);
           if (attempt >= 30) return;
           auto timer = std::make_shared<net::steady_timer>(self->io, std::chrono::seconds(2));
           timer->async_wait([weak, id, attempt, timer](auto ec) {
             auto self = weak.lock();
             if (ec || !self || self->closed || !self->tracked.contains(id)) return;
             self->Stop(id, attempt + 1);
           });
         },
         opts.grace + opts.engine.timeout);
  }

  using Finish = std::function<void(CreateResult)>;
  // POST /containers/create, connect, start, inspect; a missing image is
  // pulled first when `may_pull`.
  void CreateContainer(const InstanceSpec& spec, bool may_pull, Finish finish) {
    Call("POST", "/containers/create?name=" + Enc(spec.name), ContainerCreateBody(spec, opts.container),
         [weak = weak_from_this(), spec, finish, may_pull](Result r) mutable {
           auto self = weak.lock();
           if (!self) return;
           if (!r.ok()) {
             if (r.code == Errc::kNoSuchImage && may_pull) {
               // IfNotPresent: pulled now, then created once more.
               return self->Pull(spec.templ.image, spec.pool, [weak, spec, finish](std::string error) mutable {
                 auto self = weak.lock();
                 if (!self) return;
                 if (!error.empty()) return finish("pull image " + spec.templ.image + ": " + error);
                 self->CreateContainer(spec, false, std::move(finish));
               });
             }
             if (r.code == Errc::kNoSuchImage) {
               bool never = spec.templ.imagePullPolicy == "Never";
               return finish("image \"" + spec.templ.image + "\" is not on the engine" +
                             (never ? " and imagePullPolicy is Never: build or load it there"
                                    : " even after a pull"));
             }
             return finish("create container: " + r.message);
           }
           std::string id = JsonString(r.body, {"Id"});
           if (id.empty()) return finish(std::string("create container: engine answered without an Id"));
           self->Track(id, spec.pool, spec.name);
           auto fail = [weak, id, finish](std::string why) mutable {
             if (auto self = weak.lock()) {
               self->Untrack(id);
               self->Delete(id);
             }
             finish(std::move(why));
           };
           auto inspect = [weak, id, spec, finish, fail]() mutable {
             auto self = weak.lock();
             if (!self) return;
             self->Call("GET", "/containers/" + Enc(id) + "/json", nullptr,
                        [weak, spec, finish, fail](Result r) mutable {
                          auto self = weak.lock();
                          if (!self) return;
                          if (!r.ok()) return fail("inspect container: " + r.message);
                          auto placed = PlacementFromInspect(r.body, spec, self->opts.container);
                          if (auto* err = std::get_if<std::string>(&placed)) return fail(*err);
                          finish(std::get<Placement>(placed));
                        });
           };
           auto start = [weak, id, inspect, fail]() mutable {
             auto self = weak.lock();
             if (!self) return;
             self->Call("POST", "/containers/" + Enc(id) + "/start", nullptr,
                        [inspect, fail](Result r) mutable {
                          if (!r.ok() && r.code != Errc::kNotModified) return fail("start container: " + r.message);
                          inspect();
                        });
           };
           if (auto extra = ExtraNetwork(spec, self->opts.container)) {
             return self->Call("POST", "/networks/" + Enc(*extra) + "/connect", json::object{{"Container", id}},
                               [start, fail, net = *extra](Result r) mutable {
                                 if (!r.ok()) return fail("connect to network " + net + ": " + r.message);
                                 start();
                               });
           }
           start();
         });
  }

  void Watch() {
    json::object filters = OwnedFilter(opts.container.owner);
    filters["type"] = json::array{"container"};
    filters["event"] = json::array{"die"};
    link->client().Watch(
        filters,
        [weak = weak_from_this()](const docker::Event& ev) {
          auto self = weak.lock();
          if (!self || ev.action != "die") return;
          auto code = ev.attributes.find("exitCode");
          int c = code == ev.attributes.end() ? -1 : std::atoi(code->second.c_str());
          self->Exited(ev.id, c, c >= 0 ? "exited with code " + std::to_string(c) : "exited");
        },
        [weak = weak_from_this()](bool connected) {
          auto self = weak.lock();
          if (!self) return;
          if (connected) self->Resync();  // events while we were away are not replayed
        });
  }

  // Compares the engine's containers with what we track: ends the instances
  // whose container stopped or vanished, removes leftovers and orphans.
  void Resync() {
    auto filters = reservation::PercentEncode(json::serialize(OwnedFilter(opts.container.owner)));
    // The list is a snapshot taken while the engine handles the request:
    // containers started (or tracked) after it was sent may be listed as
    // "created" or missing, and containers still being created too; the
    // next resync judges them, not this one.
    Call("GET", "/containers/json?all=1&filters=" + filters, nullptr,
         [weak = weak_from_this(), upto = track_seq](Result r) {
      auto self = weak.lock();
      if (!self || !r.ok() || !r.body.is_array()) return;
      auto settled = [&](const Tracked& t) { return t.seq <= upto && !self->creating.contains(t.name); };
      std::set<std::string> seen;
      std::vector<std::tuple<std::string, int, std::string>> ended;
      for (const auto& c : r.body.get_array()) {
        if (!Owned(JsonAt(c, {"Labels"}), self->opts.container.owner)) continue;  // never touch what is not ours
        std::string id = JsonString(c, {"Id"});
        std::string state = JsonString(c, {"State"});
        seen.insert(id);
        bool running = state == "running" || state == "paused" || state == "restarting";
        if (auto t = self->tracked.find(id); t != self->tracked.end()) {
          if (!running && settled(t->second)) {
            int code = ExitCodeFromStatus(JsonString(c, {"Status"}));
            ended.emplace_back(id, code, code >= 0 ? "exited with code " + std::to_string(code) : "container " + state);
          }
          continue;
        }
        if (self->creating.contains(JsonString(c, {"Labels", kLabelInstance}))) continue;
        spdlog::info("docker: removing container {} ({}), no instance of ours names it", id.substr(0, 12),
                     JsonString(c, {"Labels", kLabelInstance}));
        self->Discard(id, running);
      }
      for (const auto& [id, t] : self->tracked) {
        if (!seen.contains(id) && settled(t)) ended.emplace_back(id, -1, "container is gone");
      }
      for (auto& [id, code, message] : ended) self->Exited(id, code, message);
    });
  }

  void ScheduleResync() {
    resync_timer.expires_after(opts.resync);
    resync_timer.async_wait([weak = weak_from_this()](auto ec) {
      auto self = weak.lock();
      if (ec || !self || self->closed) return;
      self->Resync();
      self->ScheduleResync();
    });
  }
};

DockerBackend::DockerBackend(net::io_context& io, DockerOptions options)
    : DockerBackend(std::make_shared<Impl>(io, std::move(options))) {}

DockerBackend::DockerBackend(std::shared_ptr<Impl> impl) : EngineBackend(impl), impl_(std::move(impl)) {}

DockerBackend::~DockerBackend() = default;

void DockerBackend::Create(const InstanceSpec& spec, std::function<void(CreateResult)> done) {
  auto& impl = *impl_;
  impl.creating.insert(spec.name);
  Impl::Finish finish = [weak = std::weak_ptr(impl_), spec, done = std::move(done)](CreateResult result) mutable {
    auto self = weak.lock();
    if (!self) return;
    self->creating.erase(spec.name);
    bool doomed = self->doomed.erase(spec.name) > 0;
    auto* placement = std::get_if<Placement>(&result);
    if (auto id = self->ids.find(spec.name); placement && id != self->ids.end()) {
      // Started now: only container lists asked for from here on judge it.
      self->tracked[id->second].seq = ++self->track_seq;
    }
    done(std::move(result));
    if (doomed && placement) {
      if (auto id = self->ids.find(spec.name); id != self->ids.end()) self->Stop(id->second);
    }
  };
  const auto& policy = spec.templ.imagePullPolicy;
  if (policy == "Always") {
    return impl.Pull(spec.templ.image, spec.pool,
                     [weak = std::weak_ptr(impl_), spec, finish = std::move(finish)](std::string error) mutable {
                       auto self = weak.lock();
                       if (!self) return;
                       if (!error.empty()) return finish("pull image " + spec.templ.image + ": " + error);
                       self->CreateContainer(spec, false, std::move(finish));
                     });
  }
  impl.CreateContainer(spec, policy != "Never", std::move(finish));
}

void DockerBackend::Remove(const state::Instance& instance) {
  auto& impl = *impl_;
  if (impl.creating.contains(instance.name)) {
    impl.doomed.insert(instance.name);
    return;
  }
  std::string id = instance.backend_id;
  if (auto it = impl.ids.find(instance.name); it != impl.ids.end()) id = it->second;
  if (id.empty() || !impl.tracked.contains(id)) {
    net::post(impl.io, [weak = std::weak_ptr(impl_), pool = instance.pool, name = instance.name] {
      if (auto self = weak.lock()) self->Exit(ExitEvent{pool, name, -1, "not running"});
    });
    return;
  }
  impl.Stop(id);
}

// Lists our containers (waiting for the engine if it is down), keeps the
// recorded instances that still run, reports the others, removes orphans.
struct AdoptJob : std::enable_shared_from_this<AdoptJob> {
  std::weak_ptr<DockerBackend::Impl> impl;
  std::map<std::string, state::Instance> known;
  Backend::Templates templates;
  std::function<void(Backend::Adopted)> done;
  Backend::Adopted adopted;
  std::vector<std::tuple<std::string, int, std::string>> ended;
  std::vector<ExitEvent> gone;
  int inspecting = 0;

  void Try(int n) {
    auto self = impl.lock();
    if (!self) return;
    auto filters = reservation::PercentEncode(json::serialize(OwnedFilter(self->opts.container.owner)));
    self->Call("GET", "/containers/json?all=1&filters=" + filters, nullptr,
               [job = shared_from_this(), n](Result r) { job->Listed(std::move(r), n); });
  }

  void Listed(Result r, int n) {
    auto self = impl.lock();
    if (!self) return;
    if (!r.ok() || !r.body.is_array()) {
      if (n % 30 == 0) spdlog::warn("docker: cannot list containers ({}); waiting for the engine", r.message);
      auto timer = std::make_shared<net::steady_timer>(self->io, std::chrono::seconds(1));
      timer->async_wait([job = shared_from_this(), timer, n](auto ec) {
        if (!ec) job->Try(n + 1);
      });
      return;
    }
    std::set<std::string> seen;
    // Running containers whose create was in flight at a crash: recorded,
    // no placement yet. Their placement is read back from the engine.
    struct Unplaced {
      std::string id;
      InstanceSpec spec;
      bool start;  // created, never started
    };
    std::vector<Unplaced> to_inspect;
    for (const auto& c : r.body.get_array()) {
      if (!Owned(JsonAt(c, {"Labels"}), self->opts.container.owner)) continue;  // never touch what is not ours
      std::string id = JsonString(c, {"Id"}), state = JsonString(c, {"State"});
      std::string name = JsonString(c, {"Labels", kLabelInstance});
      bool running = state == "running" || state == "paused" || state == "restarting";
      auto k = known.find(name);
      if (k != known.end() && !seen.contains(name)) {
        seen.insert(name);
        self->Track(id, k->second.pool, name);
        auto t = templates.find(k->second.pool);
        if (running && k->second.control_port > 0) {
          // A running container keeps its published ports and address.
          adopted.emplace(name, Placement{id, k->second.host, k->second.control_host, k->second.control_port,
                                          k->second.ports});
        } else if ((running || state == "created") && t != templates.end()) {
          // Created, maybe started: the create is finished here (start if
          // need be, then read its placement back).
          to_inspect.push_back({id, InstanceSpec{k->second.pool, name, k->second.template_hash, t->second},
                                state == "created"});
        } else if (running) {
          ended.emplace_back(id, -1, "was still being created when matchmakerd stopped");
        } else {
          int code = ExitCodeFromStatus(JsonString(c, {"Status"}));
          ended.emplace_back(id, code, code >= 0 ? "exited with code " + std::to_string(code) : "container " + state);
        }
        continue;
      }
      spdlog::info("docker: removing orphan container {} ({})", id.substr(0, 12), name);
      self->Discard(id, running);
    }
    for (const auto& [name, inst] : known) {
      if (!seen.contains(name)) gone.push_back({inst.pool, name, -1, "container is gone"});
    }
    inspecting = static_cast<int>(to_inspect.size());
    if (inspecting == 0) return Finish();
    for (auto& u : to_inspect) Place(u.id, u.spec, u.start);
  }

  void Place(const std::string& id, const InstanceSpec& spec, bool start) {
    auto self = impl.lock();
    if (!self) return;
    if (start) {
      return self->Call("POST", "/containers/" + Enc(id) + "/start", nullptr,
                        [job = shared_from_this(), id, spec](Result r) {
                          if (!r.ok() && r.code != Errc::kNotModified) return job->Unplaceable(id, "start: " + r.message);
                          job->Place(id, spec, false);
                        });
    }
    self->Call("GET", "/containers/" + Enc(id) + "/json", nullptr, [job = shared_from_this(), id, spec](Result r) {
      auto self = job->impl.lock();
      if (!self) return;
      if (!r.ok()) return job->Unplaceable(id, r.message);
      auto placed = PlacementFromInspect(r.body, spec, self->opts.container);
      if (auto* err = std::get_if<std::string>(&placed)) return job->Unplaceable(id, *err);
      spdlog::info("docker: adopted {} ({}), created while matchmakerd stopped", spec.name, id.substr(0, 12));
      job->adopted.emplace(spec.name, std::get<Placement>(placed));
      if (--job->inspecting == 0) job->Finish();
    });
  }

  void Unplaceable(const std::string& id, const std::string& why) {
    ended.emplace_back(id, -1, "created while matchmakerd stopped, not placeable: " + why);
    if (--inspecting == 0) Finish();
  }

  void Finish() {
    auto self = impl.lock();
    if (!self) return;
    spdlog::info("docker: engine API {} at {}; adopted {} running container(s)", self->link->client().api_version(),
                 self->link->endpoint(), adopted.size());
    std::exchange(done, nullptr)(std::move(adopted));
    // What ended while we were away is reported once the rest is adopted.
    for (auto& [id, code, message] : ended) self->Exited(id, code, message);
    for (const auto& g : gone) self->Exit(g);
    self->adopted = true;
    self->Watch();
    self->link->StartPing();
    self->ScheduleResync();
  }
};

void DockerBackend::Adopt(const std::vector<const state::Instance*>& known, const Templates& templates,
             std::function<void(Adopted)> done) {
  auto job = std::make_shared<AdoptJob>();
  job->impl = impl_;
  for (const auto* i : known) job->known.emplace(i->name, *i);
  job->templates = templates;
  job->done = std::move(done);
  job->Try(0);
}

}  // namespace mm::backend
