#include "operator/backend/swarm_backend.h"

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
using SteadyClock = std::chrono::steady_clock;

namespace {

std::string Enc(const std::string& s) { return reservation::PercentEncode(s); }

}  // namespace

struct SwarmBackend::Impl : EngineCore, std::enable_shared_from_this<SwarmBackend::Impl> {
  struct Service {
    std::string pool;
    std::string name;
    // While being created: what to place and whom to tell.
    std::optional<InstanceSpec> spec;
    std::function<void(CreateResult)> done;
    SteadyClock::time_point created = SteadyClock::now();
    bool removing = false;
  };

  Impl(net::io_context& io, SwarmOptions o) : EngineCore(io, o.engine), opts(std::move(o)), poll_timer(io) {}

  SwarmOptions opts;
  std::map<std::string, Service> services;  // service id -> instance
  // Orphan services asked to be deleted; their tasks linger while they shut
  // down, and each orphan is removed (and logged) once, not on every poll.
  std::set<std::string> deleting;
  std::map<std::string, std::string> ids;   // instance name -> service id
  std::set<std::string> posting;            // names whose create request is in flight
  std::set<std::string> doomed;             // removed while posting
  std::map<std::string, NodeView> nodes;
  bool poll_in_flight = false;
  bool poll_again = false;
  bool polled = false;  // the poll loop runs
  net::steady_timer poll_timer;

  void AvailabilityChanged(bool up) override {
    if (up) PollSoon();
  }
  void Close() override { poll_timer.cancel(); }

  // POST /services/create, with the credentials for the image's registry
  // (workers pull with them) unless the pull policy is Never; `digest`
  // pins the image when given.
  void PostService(const InstanceSpec& spec, const std::string& digest, std::function<void(CreateResult)> done) {
    auto body = ServiceCreateBody(spec, opts.service);
    if (!digest.empty() && spec.templ.image.find('@') == std::string::npos) {
      body["TaskTemplate"].as_object()["ContainerSpec"].as_object()["Image"] = spec.templ.image + "@" + digest;
    }
    auto headers = spec.templ.imagePullPolicy == "Never" ? docker::Client::Headers{} : AuthHeaders(spec.templ.image);
    Call("POST", "/services/create", std::move(body),
         [weak = weak_from_this(), spec, done = std::move(done)](Result r) mutable {
           auto self = weak.lock();
           if (!self) return;
           self->posting.erase(spec.name);
           bool doomed = self->doomed.erase(spec.name) > 0;
           if (!r.ok()) return done("create service: " + r.message);
           std::string id = JsonString(r.body, {"ID"});
           if (id.empty()) return done(std::string("create service: engine answered without an ID"));
           Service s{spec.pool, spec.name, spec, std::move(done)};
           self->Track(id, std::move(s));
           if (doomed) {
             self->services[id].removing = true;
             self->Ended(id, -1, "removed before it ran");
           }
         },
         {}, std::move(headers));
  }

  std::string OwnedQuery() const {
    return "filters=" + Enc(json::serialize(OwnedFilter(opts.service.owner)));
  }

  void Track(const std::string& id, Service s) {
    ids[s.name] = id;
    services[id] = std::move(s);
  }

  // The instance's service is gone or its task ended: report once, remove.
  void Ended(const std::string& id, int code, std::string message, bool delete_service = true) {
    auto it = services.find(id);
    if (it == services.end()) return;
    Service s = std::move(it->second);
    services.erase(it);
    if (auto n = ids.find(s.name); n != ids.end() && n->second == id) ids.erase(n);
    if (delete_service) DeleteService(id);
    if (s.done) {
      // Removed (or failed) before it ran: the create ends here.
      if (s.removing) {
        std::exchange(s.done, nullptr)(Placement{id, "", "", 0, {}});
      } else {
        std::exchange(s.done, nullptr)(std::move(message));
        return;
      }
    }
    Exit(ExitEvent{s.pool, s.name, code, std::move(message)});
  }

  void DeleteService(const std::string& id) {
    Call("DELETE", "/services/" + Enc(id), nullptr, [id, weak = weak_from_this()](Result r) {
      if (!r.ok() && r.code != Errc::kNotFound) {
        spdlog::warn("swarm: remove service {}: {} (retried by the next poll)", id, r.message);
        if (auto self = weak.lock()) self->deleting.erase(id);
      }
    });
  }

  // Swarm's constraint enforcer ends a running task whose node no longer
  // meets its service's constraints: relabelling a node would kill the game
  // servers on it, players and all. Once a task runs, its service's
  // constraints become `node.id==<its node>`; an update that changes only
  // the placement, and that the node still meets, leaves the task running
  // (seen on a real 3-node swarm, docs/swarm.md).
  void PinToNode(const std::string& id, const std::string& node_id) {
    if (node_id.empty()) return;
    Call("GET", "/services/" + Enc(id), nullptr, [weak = weak_from_this(), id, node_id](Result r) {
      auto self = weak.lock();
      if (!self || !r.ok()) return;
      const auto* version = JsonAt(r.body, {"Version", "Index"});
      const auto* spec = JsonAt(r.body, {"Spec"});
      if (!version || !version->is_int64() || !spec || !spec->is_object()) return;
      json::value body = *spec;
      auto& task = body.as_object()["TaskTemplate"];
      if (!task.is_object()) return;
      task.as_object()["Placement"] = json::object{{"Constraints", json::array{"node.id==" + node_id}}};
      self->Call("POST", "/services/" + Enc(id) + "/update?version=" + std::to_string(version->get_int64()),
                 std::move(body), [id](Result r) {
                   if (!r.ok() && r.code != Errc::kNotFound) {
                     spdlog::warn("swarm: pin service {} to its node: {} (a node label change may end it)", id,
                                  r.message);
                   }
                 });
    });
  }

  void SchedulePoll() {
    if (closed) return;
    poll_timer.expires_after(opts.poll);
    poll_timer.async_wait([weak = weak_from_this()](auto ec) {
      auto self = weak.lock();
      if (ec || !self || self->closed) return;
      self->Poll();
    });
  }

  // An event hinted that something changed: look now rather than at the
  // next tick (one look at a time; a hint during a look asks for another).
  void PollSoon() {
    if (closed) return;
    if (poll_in_flight) {
      poll_again = true;
      return;
    }
    poll_timer.cancel();
    Poll();
  }

  void PollDone() {
    poll_in_flight = false;
    if (std::exchange(poll_again, false)) return Poll();
    SchedulePoll();
  }

  // Service, node and container events where the engine has them (1.41 has
  // no task events): each one only triggers a poll.
  void Watch() {
    json::object filters{{"type", json::array{"service", "node", "container"}},
                         {"event", json::array{"die", "update", "remove"}}};
    link->client().Watch(
        filters, [weak = weak_from_this()](const docker::Event&) {
          if (auto self = weak.lock()) self->PollSoon();
        },
        [weak = weak_from_this()](bool connected) {
          if (auto self = weak.lock(); self && connected) self->PollSoon();
        });
  }

  // One look at the swarm: nodes, then our tasks.
  void Poll() {
    polled = true;
    poll_in_flight = true;
    Call("GET", "/nodes", nullptr, [weak = weak_from_this()](Result r) {
      auto self = weak.lock();
      if (!self) return;
      if (!r.ok() || !r.body.is_array()) return self->PollDone();
      std::map<std::string, NodeView> nodes;
      for (const auto& n : r.body.get_array()) {
        if (auto v = ParseNode(n)) nodes[v->id] = *v;
      }
      self->nodes = std::move(nodes);
      self->Call("GET", "/tasks?" + self->OwnedQuery(), nullptr, [weak](Result r) {
        auto self = weak.lock();
        if (!self) return;
        if (r.ok() && r.body.is_array()) self->Observe(r.body.get_array());
        self->PollDone();
      });
    });
  }

  void Observe(const json::array& tasks) {
    std::map<std::string, TaskView> newest;  // service id -> its newest task
    std::set<std::string> services_seen;
    for (const auto& t : tasks) {
      auto v = ParseTask(t);
      if (!v) continue;
      services_seen.insert(v->service_id);
      auto& cur = newest[v->service_id];
      if (cur.id.empty() || v->version > cur.version) cur = *v;
    }
    auto now = SteadyClock::now();
    std::vector<std::tuple<std::string, int, std::string>> ended;
    for (auto& [id, s] : services) {
      auto t = newest.find(id);
      const TaskView* task = t == newest.end() ? nullptr : &t->second;
      auto n = task ? nodes.find(task->node_id) : nodes.end();
      auto age = std::chrono::duration_cast<std::chrono::milliseconds>(now - s.created);
      Verdict v = JudgeService(task, n == nodes.end() ? nullptr : &n->second, s.done != nullptr, age,
                               opts.pending_grace, s.spec ? &*s.spec : nullptr, opts.service);
      if (v.kind == Verdict::kPlaced) {
        auto done = std::exchange(s.done, nullptr);
        if (!s.spec->templ.placement.constraints.empty()) PinToNode(id, task->node_id);
        s.spec.reset();
        done(v.placement);
      } else if (v.kind == Verdict::kEnded) {
        ended.emplace_back(id, v.exit_code, v.message);
      }
    }
    for (auto& [id, code, message] : ended) Ended(id, code, message);
    // Services of ours that no instance names (left by a crash): removed,
    // once.
    std::erase_if(deleting, [&](const std::string& sid) { return !services_seen.contains(sid); });
    for (const auto& sid : services_seen) {
      if (services.contains(sid) || !deleting.insert(sid).second) continue;
      spdlog::info("swarm: removing service {}, no instance of ours names it", sid);
      DeleteService(sid);
    }
  }

};

SwarmBackend::SwarmBackend(net::io_context& io, SwarmOptions options)
    : SwarmBackend(std::make_shared<Impl>(io, std::move(options))) {}

SwarmBackend::SwarmBackend(std::shared_ptr<Impl> impl) : EngineBackend(impl), impl_(std::move(impl)) {}

SwarmBackend::~SwarmBackend() = default;

void SwarmBackend::Create(const InstanceSpec& spec, std::function<void(CreateResult)> done) {
  auto& impl = *impl_;
  impl.posting.insert(spec.name);
  if (spec.templ.imagePullPolicy != "Always") return impl.PostService(spec, "", std::move(done));
  // Always: the manager asks the registry for the image's digest now (with
  // the credentials, so a refusal reads as the registry's) and pins it, so
  // every node runs that very image.
  std::string image = spec.templ.image;
  impl.Call("GET", "/distribution/" + image + "/json", nullptr,
            [weak = std::weak_ptr(impl_), spec, done = std::move(done)](Result r) mutable {
              auto self = weak.lock();
              if (!self) return;
              std::string digest = JsonString(r.body, {"Descriptor", "digest"});
              if (!r.ok() || digest.empty()) {
                self->posting.erase(spec.name);
                self->doomed.erase(spec.name);
                std::string why = r.ok() ? "the registry named no digest" : r.message;
                self->Event(spec.pool, "Warning", "PullFailed", "resolve image " + spec.templ.image + ": " + why);
                return done("resolve image " + spec.templ.image + ": " + why);
              }
              self->PostService(spec, digest, std::move(done));
            },
            impl.opts.engine.timeout, impl.AuthHeaders(image));
}

void SwarmBackend::Remove(const state::Instance& instance) {
  auto& impl = *impl_;
  if (impl.posting.contains(instance.name)) {
    impl.doomed.insert(instance.name);
    return;
  }
  std::string id = instance.backend_id;
  if (auto it = impl.ids.find(instance.name); it != impl.ids.end()) id = it->second;
  auto it = impl.services.find(id);
  if (id.empty() || it == impl.services.end()) {
    net::post(impl.io, [weak = std::weak_ptr(impl_), pool = instance.pool, name = instance.name] {
      if (auto self = weak.lock()) self->Exit(ExitEvent{pool, name, -1, "not running"});
    });
    return;
  }
  // Deleting the service stops its task (SIGTERM, SIGKILL after the stop
  // grace period); the instance ends with its service.
  it->second.removing = true;
  impl.Call("DELETE", "/services/" + Enc(id), nullptr, [weak = std::weak_ptr(impl_), id](Result r) {
    auto self = weak.lock();
    if (!self) return;
    if (r.ok() || r.code == Errc::kNotFound) return self->Ended(id, -1, "service removed", false);
    spdlog::warn("swarm: remove service {}: {}", id, r.message);
    if (auto s = self->services.find(id); s != self->services.end()) s->second.removing = false;  // Remove again later
  });
}

void SwarmBackend::Adopt(const std::vector<const state::Instance*>& known_ptrs, const Templates& templates,
                         std::function<void(Adopted)> done) {
  struct Job : std::enable_shared_from_this<Job> {
    std::weak_ptr<Impl> impl;
    std::map<std::string, state::Instance> known;
    Templates templates;
    std::function<void(Adopted)> done;
    Adopted adopted;
    std::vector<ExitEvent> gone;
    int waiting = 0;  // services created while we were down, not placed yet
    std::vector<std::pair<std::string, std::string>> half_made;  // id, name: no template to place them
    void Try(int n) {
      auto self = impl.lock();
      if (!self) return;
      self->Call("GET", "/services?" + self->OwnedQuery(), nullptr,
                 [job = shared_from_this(), n](Result r) { job->Listed(std::move(r), n); });
    }
    void Listed(Result r, int n) {
      auto self = impl.lock();
      if (!self) return;
      if (!r.ok() || !r.body.is_array()) {
        if (n % 30 == 0) spdlog::warn("swarm: cannot list services ({}); waiting for the manager", r.message);
        auto timer = std::make_shared<net::steady_timer>(self->io, std::chrono::seconds(1));
        timer->async_wait([job = shared_from_this(), timer, n](auto ec) {
          if (!ec) job->Try(n + 1);
        });
        return;
      }
      std::set<std::string> seen;
      for (const auto& svc : r.body.get_array()) {
        if (!Owned(JsonAt(svc, {"Spec", "Labels"}), self->opts.service.owner)) continue;  // never touch what is not ours
        std::string id = JsonString(svc, {"ID"});
        std::string name = JsonString(svc, {"Spec", "Labels", kLabelInstance});
        auto k = known.find(name);
        if (k == known.end() || seen.contains(name)) {
          spdlog::info("swarm: removing orphan service {} ({})", id, name);
          self->DeleteService(id);
          continue;
        }
        seen.insert(name);
        const auto& inst = k->second;
        if (inst.control_port > 0) {
          self->Track(id, Impl::Service{inst.pool, name, std::nullopt, nullptr});
          adopted.emplace(name, Placement{id, inst.host, inst.control_host, inst.control_port, inst.ports});
        } else if (auto t = templates.find(inst.pool); t != templates.end()) {
          // Created while matchmakerd was down (recorded, no placement yet):
          // placed from its task like a create in flight, then adopted.
          ++waiting;
          InstanceSpec spec{inst.pool, name, inst.template_hash, t->second};
          self->Track(id, Impl::Service{inst.pool, name, spec,
                                        [job = shared_from_this(), pool = inst.pool, name](CreateResult r) {
                                          if (auto* p = std::get_if<Placement>(&r)) {
                                            spdlog::info("swarm: adopted {}, created while matchmakerd stopped", name);
                                            job->adopted.emplace(name, *p);
                                          } else {
                                            job->gone.push_back({pool, name, -1, std::get<std::string>(r)});
                                          }
                                          if (--job->waiting == 0) job->Finish();
                                        }});
        } else {
          self->Track(id, Impl::Service{inst.pool, name, std::nullopt, nullptr});
          half_made.emplace_back(id, name);
        }
      }
      for (const auto& [name, inst] : known) {
        if (!seen.contains(name)) gone.push_back({inst.pool, name, -1, "service is gone"});
      }
      if (waiting == 0) return Finish();
      self->Poll();  // places the services created while we were down
    }
    void Finish() {
      auto self = impl.lock();
      if (!self) return;
      spdlog::info("swarm: engine API {} at {}; adopted {} service(s)", self->link->client().api_version(),
                   self->link->endpoint(), adopted.size());
      bool polling = self->poll_in_flight || self->polled;
      std::exchange(done, nullptr)(std::move(adopted));
      for (const auto& [id, name] : half_made) self->Ended(id, -1, "was still being created when matchmakerd stopped");
      for (const auto& g : gone) self->Exit(g);
      if (!polling) self->Poll();
      self->Watch();
      self->link->StartPing();
    }
  };
  auto job = std::make_shared<Job>();
  job->impl = impl_;
  for (const auto* i : known_ptrs) job->known.emplace(i->name, *i);
  job->templates = templates;
  job->done = std::move(done);
  job->Try(0);
}

}  // namespace mm::backend
