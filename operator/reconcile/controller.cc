#include "operator/reconcile/controller.h"

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <deque>
#include <random>
#include <set>

#include "api/reservation/client_id.h"
#include "api/v1alpha1/codec.h"
#include "operator/backend/backend.h"
#include "operator/http/client.h"
#include "operator/log/context.h"
#include "operator/metrics/metrics.h"
#include "operator/reconcile/journal.h"
#include "operator/state/health.h"
#include "operator/state/instance_codec.h"
#include "operator/store/intent_log.h"
#include "operator/store/store.h"

namespace mm::reconcile {
namespace net = boost::asio;
namespace json = boost::json;
using state::Instance;
using state::InstanceState;

namespace {

constexpr char kProbeTarget[] = "/reservation/mm-readiness-probe";
// Resource versions are never reused: the store keeps a ceiling above every
// number given out; a start continues from it and reserves the next block.
constexpr char kResourceVersionKey[] = "meta/resource-version-ceiling";
constexpr std::uint64_t kResourceVersionBlock = 1'000'000;

std::string PoolKey(const std::string& pool) { return "pool/" + pool; }
std::string InstanceKey(const std::string& pool, const std::string& name) {
  return "instance/" + pool + "/" + name;
}
// Client ids may hold '/': the key carries them percent-encoded.
std::string ReservationKey(const std::string& pool, const std::string& name, const std::string& client) {
  return "reservation/" + pool + "/" + name + "/" + reservation::PercentEncode(client);
}
std::string IntentKey(const std::string& pool, const std::string& name, const std::string& client) {
  return "intent/" + pool + "/" + name + "/" + reservation::PercentEncode(client);
}

// "<prefix><pool>/<instance>/<rest>" -> (pool, instance); nullopt when malformed.
std::optional<std::pair<std::string, std::string>> PoolAndInstance(const std::string& key, std::size_t prefix) {
  auto a = key.find('/', prefix);
  auto b = a == std::string::npos ? a : key.find('/', a + 1);
  if (b == std::string::npos) return std::nullopt;
  return std::make_pair(key.substr(prefix, a - prefix), key.substr(a + 1, b - a - 1));
}

double Seconds(state::Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// A reservation's (or intent's) record value: the client id alone, or with
// match metadata {"client": id, "metadata": {...}}. The key names the
// client too (percent-encoded); the value's metadata is read when it is a
// JSON object that has one.
std::string ReservationValue(const std::string& client, const std::string& metadata) {
  if (metadata.empty()) return client;
  return "{\"client\":" + json::serialize(json::value(client)) + ",\"metadata\":" + metadata + "}";
}
std::string MetadataOf(const std::string& value) {
  if (value.empty() || value.front() != '{') return "";
  boost::system::error_code ec;
  auto v = json::parse(value, ec);
  const auto* o = ec ? nullptr : v.if_object();
  const auto* m = o ? o->if_contains("metadata") : nullptr;
  return m && m->is_object() ? json::serialize(*m) : "";
}
// The client id a reservation or intent key names (its last segment).
std::optional<std::string> ClientOfKey(const std::string& key) {
  auto slash = key.rfind('/');
  if (slash == std::string::npos) return std::nullopt;
  return reservation::PercentDecode(std::string_view(key).substr(slash + 1));
}

}  // namespace

struct Controller::Entry {
  std::unique_ptr<state::PoolState> state;
  // Creation token bucket (ControllerOptions::creates_per_second).
  double tokens = -1;  // < 0: full, set at the first pass
  std::chrono::steady_clock::time_point refilled{};
  bool at_global_cap = false;
  api::ServerPoolStatus status;
  state::Plan last_plan;
  std::uint64_t resource_version = 0;  // of the pool object (spec or status)
  std::unique_ptr<net::steady_timer> requeue;
  std::optional<state::TimePoint> requeue_at;
  std::deque<Event> events;
};

struct Controller::Impl {
  Impl(net::io_context& io, store::Store& store, backend::Backend& backend, metrics::Metrics* metrics,
       ControllerOptions options)
      : io(io),
        store(store),
        backend(backend),
        metrics(metrics),
        options(options),
        journal(io, store, std::chrono::milliseconds(500)),
        intents(store.dir() + "/intents"),
        probes(io, options.probe_keep_alive ? 1 : 0),
        resync(io) {}

  net::io_context& io;
  store::Store& store;
  backend::Backend& backend;
  metrics::Metrics* metrics;
  ControllerOptions options;
  Journal journal;
  store::IntentLog intents;
  std::vector<Controller::Intended> intended;  // waiting for the staged intents' write
  // Liveness probes after Ready: one keep-alive connection per instance,
  // one probe chain per instance ("pool/name" while it runs).
  http::KeepAliveClient probes;
  std::set<std::string> probing;
  std::set<std::string> auditing;  // Full instances whose clients are being asked about
  std::map<std::string, Entry> pools;
  std::deque<std::string> queue;
  std::set<std::string> queued;
  bool drain_scheduled = false;
  int creates_in_flight = 0;
  net::steady_timer resync;
  std::mt19937_64 rng{std::random_device{}()};
  bool stopped = false;
  std::function<void(const std::string&)> on_ready;
  std::function<int(const std::string&)> demand;
  std::function<void(const Change&)> on_change;
  std::uint64_t resource_version = 0;  // the newest number given out
  std::uint64_t rv_ceiling = 0;        // durable: no number above it was given out
  bool rv_ceiling_pending = false;
  // Guards callbacks that outlive the Controller (store, backend, probes).
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
};

Controller::Controller(net::io_context& io, store::Store& store, backend::Backend& backend,
                       metrics::Metrics* metrics, ControllerOptions options)
    : impl_(new Impl(io, store, backend, metrics, options)) {
  impl_->journal.OnHealth([this](bool up) {
    if (impl_->metrics) impl_->metrics->SetJournalUp(up);
    for (auto& [name, e] : impl_->pools) {
      Record(e, up ? "Normal" : "Warning", up ? "JournalWritable" : "JournalUnavailable",
             up ? std::string("the journal writes again") : "the journal cannot write: " + impl_->journal.error().value_or("") +
                                                               "; no instance is created, clients get 503");
      if (up) Enqueue(name);
    }
  });
}

Controller::~Controller() {
  *impl_->alive = false;
  Stop();
}

void Controller::Stop() {
  impl_->stopped = true;
  impl_->resync.cancel();
  for (auto& [name, e] : impl_->pools) {
    if (e.requeue) e.requeue->cancel();
  }
}


void Controller::Start() {
  auto& impl = *impl_;
  // Resource versions continue above the recorded ceiling; the next block
  // is reserved durably before any number is given out.
  if (auto it = impl.store.recovered().find(kResourceVersionKey); it != impl.store.recovered().end()) {
    impl.resource_version = std::strtoull(it->second.c_str(), nullptr, 10);
  }
  ReserveResourceVersions();
  impl.store.Flush();
  // Pools first, then their instances.
  std::vector<std::string> stale;
  for (auto rec = impl.store.recovered().lower_bound("pool/");
       rec != impl.store.recovered().end() && rec->first.starts_with("pool/"); ++rec) {
    const auto& [key, value] = *rec;
    boost::system::error_code ec;
    auto doc = json::parse(value, ec);
    if (ec || !doc.is_object() || !doc.get_object().contains("pool")) {
      spdlog::error("store: unreadable record {}; skipped", key);
      continue;
    }
    api::ServerPool pool = api::FromJson(doc.at("pool"));
    Entry entry;
    entry.state = std::make_unique<state::PoolState>(pool);
    entry.resource_version = NextResourceVersion();
    if (auto* d = doc.get_object().if_contains("deleting"); d && d->is_bool()) entry.state->deleting = d->get_bool();
    if (auto* f = doc.get_object().if_contains("force"); f && f->is_bool()) entry.state->force_delete = f->get_bool();
    Observe(impl.pools.emplace(pool.metadata.name, std::move(entry)).first->second);
  }
  std::vector<const Instance*> known;
  for (auto rec = impl.store.recovered().lower_bound("instance/");
       rec != impl.store.recovered().end() && rec->first.starts_with("instance/"); ++rec) {
    const auto& [key, value] = *rec;
    boost::system::error_code ec;
    auto doc = json::parse(value, ec);
    auto inst = ec ? std::nullopt : state::InstanceFromJson(doc);
    auto it = inst ? impl.pools.find(inst->pool) : impl.pools.end();
    if (it == impl.pools.end()) {
      stale.push_back(key);  // its pool is gone: the backend stops it as an orphan
      continue;
    }
    it->second.state->Upsert(*inst);
  }
  // Each pool's client index is sized first: one that grew from empty to a
  // million clients moved about two million entries on the way (13% of a
  // restart). A pool's reservations are neighbours in the recovered map.
  {
    std::string_view counting;
    std::size_t n = 0;
    auto reserve = [&] {
      if (auto it = impl.pools.find(std::string(counting)); n > 0 && it != impl.pools.end()) {
        it->second.state->ReserveClients(n);
      }
    };
    for (auto rec = impl.store.recovered().lower_bound("reservation/");
         rec != impl.store.recovered().end() && rec->first.starts_with("reservation/"); ++rec) {
      std::string_view rest = std::string_view(rec->first).substr(12);
      std::string_view pool = rest.substr(0, rest.find('/'));
      if (pool != counting) {
        reserve();
        counting = pool;
        n = 0;
      }
      ++n;
    }
    reserve();
  }
  // An instance's reservations are neighbours in the recovered map (the
  // key starts with pool and instance): each instance takes its own at once.
  std::optional<std::pair<std::string, std::string>> batch_of;
  std::vector<std::pair<std::string, std::string>> batch;  // (client, metadata)
  auto load_batch = [&] {
    if (batch_of && !batch.empty()) impl.pools.at(batch_of->first).state->AddReservations(batch_of->second, std::move(batch));
    batch.clear();
  };
  for (auto rec = impl.store.recovered().lower_bound("reservation/");
       rec != impl.store.recovered().end() && rec->first.starts_with("reservation/"); ++rec) {
    const auto& [key, value] = *rec;
    auto where = PoolAndInstance(key, 12);
    auto it = where ? impl.pools.find(where->first) : impl.pools.end();
    auto client = it == impl.pools.end() || !it->second.state->Find(where->second) ? std::nullopt : ClientOfKey(key);
    if (!client) {
      stale.push_back(key);
      continue;
    }
    if (where != batch_of) {
      load_batch();
      batch_of = where;
    }
    batch.emplace_back(std::move(*client), MetadataOf(value));
  }
  load_batch();
  impl.store.ReleaseRecovered();  // loaded: the pools hold it now
  // Handshakes that were in flight at the crash: the server may have
  // granted the slot. Each is taken as held (journaled now) until the
  // server says otherwise, so the client is not given a second server.
  std::vector<store::Op> adopted_intents;
  for (const auto& [key, value] : impl.intents.recovered()) {
    auto where = PoolAndInstance(key, 7);
    auto decoded = ClientOfKey(key);
    if (!decoded) continue;
    const std::string& client = *decoded;
    auto it = where ? impl.pools.find(where->first) : impl.pools.end();
    if (it == impl.pools.end() || !it->second.state->Find(where->second)) continue;
    const auto& [pool, name] = *where;
    if (const auto* held = it->second.state->InstanceOf(client)) {
      if (held->name != name) {
        spdlog::warn("pool {}: client {} holds a slot on {} and may hold one on {} (a handshake in flight at a crash)",
                     pool, client, held->name, name);
      }
      continue;
    }
    bool elsewhere = false;
    for (const auto& [other, e] : impl.pools) elsewhere = elsewhere || (other != pool && e.state->InstanceOf(client));
    if (elsewhere) continue;
    spdlog::info("pool {}: client {} may hold a slot on {} (a handshake in flight at the last stop): kept until the "
                 "server says otherwise",
                 pool, client, name);
    it->second.state->AddReservation(name, client, MetadataOf(value));
    adopted_intents.push_back({store::Op::kPut, ReservationKey(pool, name, client), value});
  }
  if (!impl.intents.recovered().empty()) {
    std::vector<std::string> keys;
    for (const auto& [key, v] : impl.intents.recovered()) keys.push_back(key);
    // The intents go once what they became is durable.
    impl.store.Commit(std::move(adopted_intents), [&io = impl.io, alive = std::weak_ptr<bool>(impl_->alive), this,
                                                   keys = std::move(keys)](std::optional<std::string> err) {
      net::post(io, [this, alive, keys, err] {
        if (auto a = alive.lock(); !a || !*a || err) return;
        for (const auto& k : keys) impl_->intents.Remove(k);
      });
    });
  }
  if (!stale.empty()) {
    std::vector<store::Op> ops;
    for (auto& k : stale) ops.push_back({store::Op::kDelete, k, ""});
    impl.store.Commit(std::move(ops));
  }
  for (auto& [name, e] : impl.pools) {
    for (const Instance* i : e.state->Instances()) {
      if (i->state == InstanceState::kExited) continue;
      if (i->ports.empty() && !e.state->pool().spec.templ.ports.empty()) {
        // Recorded before its create returned (a crash in between): the
        // backend finds its ports by the template's names.
        Instance copy = *i;
        for (const auto& port : e.state->pool().spec.templ.ports) copy.ports[port.name] = 0;
        e.state->Upsert(copy);
      }
    }
    for (const Instance* i : e.state->Instances()) {
      if (i->state != InstanceState::kExited) known.push_back(i);
    }
  }
  impl.backend.OnExit([this, alive = std::weak_ptr<bool>(impl_->alive)](backend::ExitEvent ev) {
    if (auto a = alive.lock(); !a || !*a) return;
    OnExit(ev.pool, ev.name, ev.exit_code, ev.message);
  });
  if (impl.metrics) impl.metrics->SetBackendUp(std::string(impl.backend.name()), impl.backend.Available());
  impl.backend.OnAvailabilityChange([this, alive = std::weak_ptr<bool>(impl_->alive)](bool up) {
    if (auto a = alive.lock(); !a || !*a) return;
    if (impl_->metrics) impl_->metrics->SetBackendUp(std::string(impl_->backend.name()), up);
    spdlog::log(up ? spdlog::level::info : spdlog::level::warn, "backend {}: {}", impl_->backend.name(),
                up ? "available again" : "unavailable: " + impl_->backend.UnavailableReason());
    for (auto& [name, e] : impl_->pools) {
      Record(e, up ? "Normal" : "Warning", up ? "BackendAvailable" : "BackendUnavailable",
             up ? std::string("the backend answers again") : impl_->backend.UnavailableReason());
      if (up) Enqueue(name);
    }
  });
  impl.backend.OnPoolEvent([this, alive = std::weak_ptr<bool>(impl_->alive)](backend::PoolEvent ev) {
    if (auto a = alive.lock(); !a || !*a) return;
    if (auto it = impl_->pools.find(ev.pool); it != impl_->pools.end()) {
      Record(it->second, ev.type, ev.reason, ev.message);
    }
  });
  backend::Backend::Templates templates;
  for (const auto& [name, e] : impl.pools) templates[name] = e.state->pool().spec.templ;
  impl.backend.Adopt(known, templates, [this, alive = std::weak_ptr<bool>(impl_->alive),
                             known_count = known.size()](backend::Backend::Adopted adopted) {
    if (auto a = alive.lock(); !a || !*a) return;
    FinishStart(std::move(adopted), known_count);
  });
}

void Controller::FinishStart(std::map<std::string, backend::Placement> adopted, std::size_t known_count) {
  auto& impl = *impl_;
  std::size_t count = 0;
  for (auto& [name, e] : impl.pools) {
    for (const Instance* i : e.state->Instances()) {
      auto a = adopted.find(i->name);
      if (a == adopted.end() || i->state == InstanceState::kExited) continue;
      // In place: a copy would copy every reservation it holds.
      e.state->Mutate(i->name, [&p = a->second](Instance& inst) {
        inst.backend_id = p.backend_id;
        inst.host = p.host;
        inst.control_host = p.control_host;
        inst.control_port = p.control_port;
        inst.ports = p.ports;
      });
      Persist(*i);
      ++count;
      if (i->state == InstanceState::kStarting) Probe(name, i->name);
      if (state::Probed(i->state)) WatchHealth(name, i->name);
    }
    Record(e, "Normal", "Recovered",
           std::to_string(e.state->size()) + " instance record(s) recovered");
  }
  spdlog::info("recovered {} pool(s); adopted {} running instance(s) of {} recorded", impl.pools.size(), count,
               known_count);
  started_ = true;
  for (auto& [name, e] : impl.pools) Enqueue(name);
  Resync();
}

void Controller::Resync() {
  auto& impl = *impl_;
  impl.resync.expires_after(impl.options.resync);
  impl.resync.async_wait([this, alive = std::weak_ptr<bool>(impl_->alive)](auto ec) {
    if (auto a = alive.lock(); !a || !*a || ec) return;
    for (auto& [name, e] : impl_->pools) Enqueue(name);
    Resync();
  });
}

void Controller::Enqueue(const std::string& name) {
  auto& impl = *impl_;
  if (impl.stopped || !impl.queued.insert(name).second) return;
  impl.queue.push_back(name);
  if (impl.drain_scheduled) return;
  impl.drain_scheduled = true;
  net::post(impl.io, [this, alive = std::weak_ptr<bool>(impl_->alive)] {
    if (auto a = alive.lock(); !a || !*a) return;
    Drain();
  });
}

void Controller::Drain() {
  auto& impl = *impl_;
  impl.drain_scheduled = false;
  // Only what is queued now; a pool requeued meanwhile runs in the next drain.
  std::deque<std::string> batch;
  batch.swap(impl.queue);
  impl.queued.clear();
  for (const auto& name : batch) Reconcile(name);
}

void Controller::Reconcile(const std::string& name) {
  log::Scope scope({.pool = name});
  auto& impl = *impl_;
  if (!started_) return;  // adoption first: every pool is queued once it is done
  auto it = impl.pools.find(name);
  if (it == impl.pools.end()) return;
  Entry& e = it->second;
  auto t0 = std::chrono::steady_clock::now();
  auto now = state::Clock::now();
  auto& ps = *e.state;

  state::PlanInput in;
  in.spec = &ps.pool().spec;
  in.template_hash = ps.template_hash();
  in.index = &ps.plan_index();  // O(log n) per instance acted on, none per unchanged one
  in.now = now;
  in.deleting = ps.deleting;
  in.force = ps.force_delete;
  in.failures = ps.failures;
  in.limits = impl.options.limits;
  if (impl.demand) in.demand = impl.demand(name);
  state::Plan plan = state::PlanReconcile(in);

  if (!plan.forget.empty() && impl.options.max_instances > 0) {
    // Room under the global cap: pools waiting on it try again.
    for (auto& [other, oe] : impl.pools) {
      if (oe.at_global_cap && other != name) Enqueue(other);
    }
  }
  for (const auto& gone : plan.forget) {
    std::vector<store::Op> ops = {{store::Op::kDelete, InstanceKey(name, gone), ""}};
    if (const Instance* i = ps.Find(gone)) {
      for (const auto& c : i->reservations) ops.push_back({store::Op::kDelete, ReservationKey(name, gone, c), ""});
      impl.backend.Forget(*i);
    }
    ps.Erase(gone);
    Commit(std::move(ops), nullptr);
  }
  for (const auto& r : plan.remove) {
    const Instance* i = ps.Find(r.name);
    if (!i) continue;
    Instance copy = *i;
    if (r.reason == state::RemovalReason::kStartTimeout) {
      StartFailure(e, "StartTimeout", "instance " + copy.name + " not Ready within " +
                                          std::to_string(ps.pool().spec.readiness.timeoutMs) + "ms");
    } else {
      Record(e, "Normal", std::string(state::ToString(r.reason)), "stopping instance " + copy.name);
    }
    copy.state = InstanceState::kTerminating;
    ps.Upsert(copy);
    Persist(copy);
    impl.backend.Remove(copy);  // counted by outcome when its end is reported (OnExit)
  }
  // An engine that does not answer gets no creations (nor counts failures
  // against the pool); its return requeues every pool.
  if (plan.create > 0 && !impl.backend.Available()) plan.create = 0;
  // Nor does a journal that cannot write: an instance is recorded before
  // the engine is asked for it, or not created at all.
  if (plan.create > 0 && impl.journal.error()) plan.create = 0;
  if (plan.create > 0) {
    int room = std::max(0, impl.options.max_creates_in_flight - impl.creates_in_flight);
    // Creates in flight requeue the pool as they finish; the rate limit
    // requeues it when its next token is due.
    Create(e, LimitCreates(e, std::min(plan.create, room), plan));
  }
  if (plan.backing_off && e.last_plan.backing_off != plan.backing_off) {
    Record(e, "Warning", "BackOff", "holding creations after " + std::to_string(ps.failures.consecutive) +
                                        " consecutive failures");
  }

  auto status = state::ComputeStatus(ps, plan, e.status, now, impl.options.limits);
  bool status_changed = !(status == e.status);
  e.status = std::move(status);
  e.last_plan = plan;
  if (status_changed && !plan.pool_gone) PoolChanged(e, Change::Type::kModified);
  if (impl.metrics) {
    int busy_unhealthy = ps.Count(InstanceState::kUnhealthy) - ps.plan_index().Size(state::PlanIndex::kUnhealthy);
    impl.metrics->SetPool(name, e.status.instances, ps.pool().spec.warm, busy_unhealthy, ps.pool().spec.maxInstances);
    impl.metrics->SetConditions(name, e.status.conditions);
  }

  if (plan.pool_gone) {
    spdlog::info("pool {} deleted", name);
    PoolChanged(e, Change::Type::kDeleted);
    impl.store.Commit({{store::Op::kDelete, PoolKey(name), ""}});
    if (impl.metrics) impl.metrics->RemovePool(name);
    if (e.requeue) e.requeue->cancel();
    impl.pools.erase(it);
  } else {
    if (plan.partial) Enqueue(name);
    if (plan.requeue_at && (!e.requeue_at || *plan.requeue_at != *e.requeue_at)) {
      if (!e.requeue) e.requeue = std::make_unique<net::steady_timer>(impl.io);
      e.requeue_at = plan.requeue_at;
      auto delay = std::max(state::Clock::duration::zero(), *plan.requeue_at - now);
      e.requeue->expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(delay) +
                               std::chrono::milliseconds(5));
      e.requeue->async_wait([this, name, alive = std::weak_ptr<bool>(impl_->alive)](auto ec) {
        if (auto a = alive.lock(); !a || !*a || ec) return;
        if (auto p = impl_->pools.find(name); p != impl_->pools.end()) p->second.requeue_at.reset();
        Enqueue(name);
      });
    }
  }
  if (impl.metrics) {
    impl.metrics->ObserveReconcile(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
}

// The global instance cap and the pool's creation rate: how many of
// `want` creations may go now; a cut plan requeues when a token is due.
int Controller::LimitCreates(Entry& e, int want, state::Plan& plan) {
  auto& impl = *impl_;
  const auto& o = impl.options;
  if (o.max_instances > 0) {
    int live = 0;
    for (const auto& [n, other] : impl.pools) {
      live += static_cast<int>(other.state->size()) - other.state->Count(InstanceState::kExited);
    }
    int room = std::max(0, o.max_instances - live);
    if (room < want && !e.at_global_cap) {
      Record(e, "Warning", "AtGlobalMaxInstances",
             std::to_string(live) + " instances across all pools: --max-instances " + std::to_string(o.max_instances) +
                 " reached; creations wait");
      spdlog::warn("pool {}: --max-instances {} reached ({} live); creations wait", e.state->name(),
                   o.max_instances, live);
    }
    e.at_global_cap = room < want;
    want = std::min(want, room);
  }
  if (o.creates_per_second > 0 && want > 0) {
    auto now = std::chrono::steady_clock::now();
    double burst = std::max(1, o.create_burst);
    if (e.tokens < 0) {
      e.tokens = burst;
    } else {
      e.tokens = std::min(burst, e.tokens + std::chrono::duration<double>(now - e.refilled).count() *
                                                o.creates_per_second);
    }
    e.refilled = now;
    int allowed = static_cast<int>(e.tokens);
    if (allowed < want) {
      // The next token: requeue then (a steady clock delay on the system-clock plan).
      double wait_s = (1.0 - (e.tokens - allowed)) / o.creates_per_second;
      auto at = state::Clock::now() + std::chrono::duration_cast<state::Clock::duration>(
                                          std::chrono::duration<double>(wait_s));
      if (!plan.requeue_at || at < *plan.requeue_at) plan.requeue_at = at;
      want = allowed;
    }
    e.tokens -= want;
  }
  return want;
}

// One more consecutive start failure of the pool (backoff, Degraded after a
// few), counted in matchmaker_instance_failures_total{reason} and told as
// a Warning event.
void Controller::StartFailure(Entry& e, const char* reason, std::string message) {
  auto& f = e.state->failures;
  f.consecutive++;
  f.last = state::Clock::now();
  f.last_message = std::move(message);
  if (impl_->metrics) impl_->metrics->InstanceFailure(e.state->name(), reason);
  Record(e, "Warning", reason, f.last_message);
}

std::string Controller::NewInstanceName(const Entry& entry) {
  static constexpr char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  while (true) {
    std::string name = entry.state->name() + "-";
    for (int i = 0; i < 5; ++i) name.push_back(kAlphabet[impl_->rng() % (sizeof kAlphabet - 1)]);
    if (!entry.state->Find(name)) return name;
  }
}

void Controller::Create(Entry& entry, int count) {
  auto& impl = *impl_;
  auto& ps = *entry.state;
  const std::string pool = ps.name();
  for (int k = 0; k < count; ++k) {
    Instance inst;
    inst.pool = pool;
    inst.name = NewInstanceName(entry);
    inst.template_hash = ps.template_hash();
    inst.state = InstanceState::kStarting;
    inst.created = state::Clock::now();
    ps.Upsert(inst);
    ++impl.creates_in_flight;
    // Durable before the engine is asked: after a crash, whatever the
    // engine made is adopted by this record's name (its labels).
    Persist(inst, [this, pool, name = inst.name](std::optional<std::string> err) {
      auto it = impl_->pools.find(pool);
      if (err) {
        --impl_->creates_in_flight;
        if (it == impl_->pools.end()) return;
        it->second.state->Erase(name);
        Commit({{store::Op::kDelete, InstanceKey(pool, name), ""}}, nullptr);  // supersedes the failed put
        Record(it->second, "Warning", "JournalUnavailable", "instance " + name + " not created: " + *err);
        return;
      }
      if (it == impl_->pools.end() || !it->second.state->Find(name)) {
        --impl_->creates_in_flight;
        return;
      }
      log::Scope scope({.instance = name});
      Record(it->second, "Normal", "Creating", "creating instance " + name);
      StartBackend(pool, name);
    });
  }
}

void Controller::StartBackend(const std::string& pool, const std::string& name) {
  auto& impl = *impl_;
  auto& ps = *impl.pools.at(pool).state;
  const Instance& inst = *ps.Find(name);
  backend::InstanceSpec spec{pool, inst.name, inst.template_hash, ps.pool().spec.templ};
  impl.backend.Create(spec, [this, pool, name, alive = std::weak_ptr<bool>(impl_->alive)](backend::CreateResult result) {
    if (auto a = alive.lock(); !a || !*a) return;
    log::Scope scope({.pool = pool, .instance = name});
    auto& impl = *impl_;
    --impl.creates_in_flight;
    auto it = impl.pools.find(pool);
    if (it == impl.pools.end()) return;
    auto& ps = *it->second.state;
    const Instance* cur = ps.Find(name);
    if (!cur) return;
    Instance inst = *cur;
    if (auto* err = std::get_if<std::string>(&result)) {
      if (impl.metrics) {
        impl.metrics->BackendRequest(std::string(impl.backend.name()), "create", "error");
        impl.metrics->InstanceFailure(pool, "CreateFailed");
      }
      bool engine_down = !impl.backend.Available();
      if (!engine_down) {
        ps.failures.consecutive++;
        ps.failures.last = state::Clock::now();
        ps.failures.last_message = *err;
      }
      inst.state = InstanceState::kExited;
      inst.failed = !engine_down;
      inst.message = *err;
      Record(it->second, "Warning", "CreateFailed", name + ": " + *err);
      if (impl.metrics) impl.metrics->ReconcileError(pool);  // an action of a pass failed
      spdlog::warn("pool {}: create {} failed: {}", pool, name, *err);
    } else {
      if (impl.metrics) impl.metrics->BackendRequest(std::string(impl.backend.name()), "create", "ok");
      const auto& p = std::get<backend::Placement>(result);
      inst.backend_id = p.backend_id;
      inst.host = p.host;
      inst.control_host = p.control_host;
      inst.control_port = p.control_port;
      inst.ports = p.ports;
    }
    ps.Upsert(inst);
    Persist(inst);
    if (inst.state == InstanceState::kStarting) Probe(pool, name);
    Enqueue(pool);
  });
}

void Controller::Probe(const std::string& pool, const std::string& name) {
  auto& impl = *impl_;
  auto it = impl.pools.find(pool);
  if (it == impl.pools.end()) return;
  const Instance* inst = it->second.state->Find(name);
  if (!inst || inst->state != InstanceState::kStarting || inst->control_port == 0) return;
  http::ClientRequest req{inst->control_host, static_cast<std::uint16_t>(inst->control_port), "GET", kProbeTarget,
                          "", impl.options.probe_timeout};
  http::AsyncCall(impl.io, req, [this, pool, name, alive = std::weak_ptr<bool>(impl_->alive)](http::ClientResponse r) {
    if (auto a = alive.lock(); !a || !*a) return;
    log::Scope scope({.pool = pool, .instance = name});
    auto& impl = *impl_;
    auto it = impl.pools.find(pool);
    if (it == impl.pools.end()) return;
    auto& ps = *it->second.state;
    const Instance* cur = ps.Find(name);
    if (!cur || cur->state != InstanceState::kStarting) return;
    if (r.status > 0) {
      // Any HTTP answer means the Reservation API is up.
      Instance inst = *cur;
      inst.state = InstanceState::kReady;
      inst.ready_at = state::Clock::now();
      ps.Upsert(inst);
      // Start failures are forgotten once an instance proves stable (it
      // outlives health.crashWindowMs or takes a reservation), so that a
      // crash loop after Ready still backs off and turns Degraded.
      auto window = std::chrono::milliseconds(ps.pool().spec.health.crashWindowMs);
      if (state::ProvedStable(inst, inst.ready_at, window)) ps.failures = {};
      Persist(inst);
      if (impl.metrics) impl.metrics->InstanceStartup(pool, Seconds(inst.ready_at - inst.created));
      Record(it->second, "Normal", "Ready", "instance " + name + " is Ready");
      WatchHealth(pool, name);
      Enqueue(pool);
      if (impl.on_ready) impl.on_ready(pool);
      return;
    }
    auto timer = std::make_shared<net::steady_timer>(
        impl.io, std::chrono::milliseconds(ps.pool().spec.readiness.periodMs));
    timer->async_wait([this, pool, name, timer, alive = std::weak_ptr<bool>(impl_->alive)](auto ec) {
      if (auto a = alive.lock(); !a || !*a || ec) return;
      Probe(pool, name);
    });
  });
}

void Controller::WatchHealth(const std::string& pool, const std::string& name) {
  if (!impl_->probing.insert(pool + "/" + name).second) return;  // its chain runs already
  HealthProbe(pool, name);
}

// One liveness probe, then the next one period later, for as long as the
// instance is Ready or after. Any HTTP answer on the control port is alive.
void Controller::HealthProbe(const std::string& pool, const std::string& name) {
  auto& impl = *impl_;
  auto it = impl.pools.find(pool);
  const Instance* inst = it == impl.pools.end() ? nullptr : it->second.state->Find(name);
  if (impl.stopped || !inst || !state::Probed(inst->state) || inst->control_port == 0) {
    impl.probing.erase(pool + "/" + name);
    return;
  }
  const auto& policy = it->second.state->pool().spec.health;
  http::ClientRequest req{inst->control_host, static_cast<std::uint16_t>(inst->control_port), "GET", kProbeTarget,
                          "", std::chrono::milliseconds(policy.timeoutMs)};
  impl.probes.Call(std::move(req), [this, pool, name, alive = std::weak_ptr<bool>(impl_->alive)](http::ClientResponse r) {
    if (auto a = alive.lock(); !a || !*a) return;
    auto& impl = *impl_;
    auto it = impl.pools.find(pool);
    const Instance* cur = it == impl.pools.end() ? nullptr : it->second.state->Find(name);
    if (impl.stopped || !cur || !state::Probed(cur->state)) {
      impl.probing.erase(pool + "/" + name);
      return;
    }
    OnHealthProbe(it->second, *cur, r.status > 0, r.status > 0 ? "" : r.error);
    const auto* again = it->second.state->Find(name);
    if (!again || !state::Probed(again->state)) {
      impl.probing.erase(pool + "/" + name);
      return;
    }
    auto timer = std::make_shared<net::steady_timer>(
        impl.io, std::chrono::milliseconds(it->second.state->pool().spec.health.periodMs));
    timer->async_wait([this, pool, name, timer, alive = std::weak_ptr<bool>(impl_->alive)](auto ec) {
      if (auto a = alive.lock(); !a || !*a) return;
      if (ec) {
        impl_->probing.erase(pool + "/" + name);
        return;
      }
      HealthProbe(pool, name);
    });
  });
}

void Controller::OnHealthProbe(Entry& e, const Instance& before, bool answered, const std::string& error) {
  log::Scope scope({.pool = e.state->name(), .instance = before.name});
  auto& impl = *impl_;
  auto& ps = *e.state;
  const std::string pool = ps.name(), name = before.name;
  if (impl.metrics) impl.metrics->HealthProbe(pool, answered);
  const auto& policy = ps.pool().spec.health;
  state::ProbeVerdict v = state::JudgeProbe(before, answered, policy.failureThreshold);
  bool reopened = before.suspect && !v.suspect;
  bool state_changed = v.state != before.state;
  bool changed = state_changed || v.failures != before.probe_failures || v.suspect != before.suspect ||
                 v.before_unhealthy != before.before_unhealthy;
  // Counting misses is bookkeeping; a new state or a new error shows.
  bool shown = state_changed || (!answered && before.message != "liveness probe: " + error);
  if (changed) ps.Mutate(name, [&](Instance& i) {
    i.probe_failures = v.failures;
    i.suspect = v.suspect;
    i.state = v.state;
    i.before_unhealthy = v.before_unhealthy;
    if (!answered) i.message = "liveness probe: " + error;
  }, shown ? state::PoolState::Visibility::kShown : state::PoolState::Visibility::kQuiet);
  const Instance& now_inst = *ps.Find(name);
  switch (v.event) {
    case state::HealthEvent::kNone: break;
    case state::HealthEvent::kUnhealthy:
      spdlog::warn("pool {}: instance {} is Unhealthy ({} liveness probes missed: {}); replacing it", pool, name,
                   v.failures, error);
      Record(e, "Warning", "Unhealthy",
             "instance " + name + " missed " + std::to_string(v.failures) + " liveness probes (" + error +
                 "): replaced");
      break;
    case state::HealthEvent::kBusyUnhealthy: {
      std::string held = std::to_string(now_inst.reservations.size()) + " client(s) holding slots";
      spdlog::warn("pool {}: instance {} is Unhealthy with {}: kept, not offered", pool, name, held);
      Record(e, "Warning", "BusyInstanceUnhealthy",
             "instance " + name + " missed " + std::to_string(v.failures) + " liveness probes (" + error + ") with " +
                 held + ": kept, not offered to clients");
      break;
    }
    case state::HealthEvent::kRecovered:
      spdlog::info("pool {}: instance {} answers again: {}", pool, name, state::ToString(v.state));
      Record(e, "Normal", "Recovered",
             "instance " + name + " answers liveness probes again: " + std::string(state::ToString(v.state)));
      break;
  }
  if (state_changed) {
    Persist(now_inst);
    Enqueue(pool);
  }
  auto window = std::chrono::milliseconds(policy.crashWindowMs);
  if (answered && ps.failures.consecutive > 0 && state::ProvedStable(now_inst, state::Clock::now(), window)) {
    ps.failures = {};
    Enqueue(pool);  // Degraded clears, backoff ends
  }
  // Offered again: queued clients may take it.
  if ((reopened || v.event == state::HealthEvent::kRecovered) && impl.on_ready) impl.on_ready(pool);
  if (answered && now_inst.state == InstanceState::kFull && !now_inst.reservations.empty()) {
    MaybeAudit(pool, name);
  }
}

// A Full instance's recorded clients, asked one by one (GET
// /reservation/{id}) at most once per 10 health periods: each 404 releases
// that slot, and an instance left holding none of ours is Ready again.
void Controller::MaybeAudit(const std::string& pool, const std::string& name) {
  auto& impl = *impl_;
  auto& e = impl.pools.at(pool);
  const Instance* inst = e.state->Find(name);
  auto now = state::Clock::now();
  auto every = std::chrono::milliseconds(10LL * e.state->pool().spec.health.periodMs);
  if (!inst || now - inst->asked_at < every) return;  // a Full instance was asked recently
  if (!impl.auditing.insert(pool + "/" + name).second) return;
  e.state->Mutate(name, [&](Instance& i) { i.asked_at = now; }, state::PoolState::Visibility::kQuiet);
  auto clients = std::make_shared<std::vector<std::string>>(inst->reservations.begin(), inst->reservations.end());
  AuditNext(pool, name, clients, 0);
}

void Controller::AuditNext(const std::string& pool, const std::string& name,
                           std::shared_ptr<std::vector<std::string>> clients, std::size_t k) {
  auto& impl = *impl_;
  auto it = impl.pools.find(pool);
  const Instance* inst = it == impl.pools.end() ? nullptr : it->second.state->Find(name);
  if (k >= clients->size() || !inst || inst->state != InstanceState::kFull) {
    impl.auditing.erase(pool + "/" + name);
    return;
  }
  const std::string& client = (*clients)[k];
  if (!inst->reservations.contains(client)) return AuditNext(pool, name, clients, k + 1);
  http::ClientRequest req{inst->control_host, static_cast<std::uint16_t>(inst->control_port), "GET",
                          "/reservation/" + reservation::PercentEncode(client), "",
                          std::chrono::milliseconds(it->second.state->pool().spec.reservation.timeoutMs)};
  impl.probes.Call(std::move(req), [this, pool, name, clients, k, alive = std::weak_ptr<bool>(impl_->alive)](
                                       http::ClientResponse r) {
    if (auto a = alive.lock(); !a || !*a) return;
    if (r.status == 404) {
      const std::string client = (*clients)[k];
      spdlog::info("pool {}: {} no longer holds a slot on Full instance {}: released", pool, client, name);
      Release(pool, name, client, [](std::optional<std::string>) {});
    }
    AuditNext(pool, name, clients, k + 1);
  });
}

void Controller::Trip(const std::string& pool, const std::string& instance) {
  auto it = impl_->pools.find(pool);
  if (it == impl_->pools.end()) return;
  it->second.state->Mutate(instance, [](Instance& i) { i.suspect = true; }, state::PoolState::Visibility::kQuiet);
}

void Controller::Asking(const std::string& pool, const std::string& instance) {
  auto it = impl_->pools.find(pool);
  if (it == impl_->pools.end()) return;
  it->second.state->Mutate(instance, [](Instance& i) { i.asked_at = state::Clock::now(); },
                           state::PoolState::Visibility::kQuiet);
}

void Controller::OnExit(const std::string& pool, const std::string& name, int exit_code,
                        const std::string& message) {
  log::Scope scope({.pool = pool, .instance = name});
  auto& impl = *impl_;
  auto it = impl.pools.find(pool);
  if (it == impl.pools.end()) return;
  auto& ps = *it->second.state;
  const Instance* cur = ps.Find(name);
  if (!cur || cur->state == InstanceState::kExited) return;
  Instance inst = *cur;
  if (inst.state == InstanceState::kTerminating && impl.metrics) {
    // A remove's outcome: stopped, or found gone already.
    bool gone = message == "not running" || message.ends_with(" is gone");
    impl.metrics->BackendRequest(std::string(impl.backend.name()), "remove", gone ? "gone" : "ok");
  }
  auto now = state::Clock::now();
  auto window = std::chrono::milliseconds(ps.pool().spec.health.crashWindowMs);
  if (state::CrashAfterReady(inst, exit_code, now, window)) {
    // A crash loop, not a finished match: backoff and Degraded as for a
    // failure before Ready.
    auto after = std::chrono::duration_cast<std::chrono::milliseconds>(now - inst.ready_at).count();
    StartFailure(it->second, "CrashedAfterReady",
                 name + " " + message + " " + std::to_string(after) + " ms after Ready, with no reservation");
    inst.failed = true;
  } else if (inst.state == InstanceState::kStarting) {
    StartFailure(it->second, "ExitedBeforeReady", name + " " + message + " before Ready");
    inst.failed = true;
  } else if (inst.busy()) {
    // Players were on it and nobody asked it to stop (a crash, a node lost
    // or drained): say so loudly.
    Record(it->second, "Warning", "BusyInstanceLost",
           "instance " + name + " " + message + " with " + std::to_string(inst.reservations.size()) +
               " client(s) holding slots");
    spdlog::warn("pool {}: instance {} {} with {} client(s) holding slots", pool, name, message,
                 inst.reservations.size());
  } else {
    Record(it->second, "Normal", "Exited", "instance " + name + " " + message);
  }
  inst.state = InstanceState::kExited;
  inst.exited_at = now;
  inst.message = message;
  // Its match is over: its reservations go with it.
  std::vector<store::Op> ops;
  for (const auto& c : inst.reservations) ops.push_back({store::Op::kDelete, ReservationKey(pool, name, c), ""});
  if (!ops.empty()) Commit(std::move(ops), nullptr);
  inst.reservations.clear();
  inst.metadata.clear();
  ps.Upsert(inst);
  Persist(inst);
  Enqueue(pool);
}

void Controller::Commit(std::vector<store::Op> ops, std::function<void(std::optional<std::string>)> done) {
  // `done` runs on the io thread, and only while the controller exists.
  impl_->journal.Write(std::move(ops), [done = std::move(done), alive = std::weak_ptr<bool>(impl_->alive)](auto err) {
    if (!done) return;
    if (auto a = alive.lock(); !a || !*a) return;
    done(err);
  });
}

void Controller::Persist(const Instance& instance, std::function<void(std::optional<std::string>)> done) {
  Commit({{store::Op::kPut, InstanceKey(instance.pool, instance.name),
           json::serialize(state::ToJson(instance, /*with_reservations=*/false))}},
         std::move(done));
}

void Controller::Intend(const std::string& pool, const std::string& instance, const std::string& client,
                        const std::string& metadata, Intended then) {
  impl_->intents.Stage(IntentKey(pool, instance, client), ReservationValue(client, metadata));
  impl_->intended.push_back(std::move(then));
  if (impl_->intended.size() > 1) return;  // the write is already posted
  net::post(impl_->io, [this, alive = std::weak_ptr<bool>(impl_->alive)] {
    if (auto a = alive.lock(); !a || !*a) return;
    auto waiting = std::move(impl_->intended);
    impl_->intended.clear();
    auto err = impl_->intents.Flush();
    // The disk is likely full: a tracked journal write marks the journal
    // failing (readyz, no creates) and is retried until the disk takes it.
    if (err) Commit({{store::Op::kPut, "health/intents", state::FormatTime(state::Clock::now())}}, nullptr);
    for (auto& then : waiting) then(err);
  });
}

void Controller::Settle(const std::string& pool, const std::string& instance, const std::string& client) {
  impl_->intents.Remove(IntentKey(pool, instance, client));
}

void Controller::Reserve(const std::string& pool, const std::string& instance, const std::string& client,
                         const std::string& metadata, Durable done) {
  auto it = impl_->pools.find(pool);
  const Instance* inst = it == impl_->pools.end() ? nullptr : it->second.state->Find(instance);
  if (!inst) {
    Settle(pool, instance, client);
    return net::post(impl_->io, [done, instance] { done("instance " + instance + " no longer exists"); });
  }
  bool was_ready = inst->state == InstanceState::kReady;
  it->second.state->AddReservation(instance, client, metadata);
  if (was_ready) Enqueue(pool);  // the warm pool shrank: refill now
  Commit({{store::Op::kPut, ReservationKey(pool, instance, client), ReservationValue(client, metadata)}},
         [this, pool, instance, client, done = std::move(done)](std::optional<std::string> err) {
           // Recorded: the intent has served (a leftover record of it recovers
           // to this same reservation, so none is written).
           if (!err) impl_->intents.Remove(IntentKey(pool, instance, client), /*record=*/false);
           done(err);
         });
}

void Controller::Release(const std::string& pool, const std::string& instance, const std::string& client,
                         Durable done) {
  auto it = impl_->pools.find(pool);
  if (it != impl_->pools.end() && it->second.state->RemoveReservation(instance, client)) {
    // The server holds none of our clients any more: idle again (offered,
    // counted as warm, and subject to scale-down).
    auto& ps = *it->second.state;
    const Instance* inst = ps.Find(instance);
    if (inst && inst->reservations.empty() &&
        (inst->state == InstanceState::kAllocated || inst->state == InstanceState::kFull)) {
      ps.SetState(instance, InstanceState::kReady);
      Persist(*ps.Find(instance));
      Record(it->second, "Normal", "Freed", "instance " + instance + " holds no reservation any more: Ready");
      Enqueue(pool);
      if (impl_->on_ready) impl_->on_ready(pool);
    }
  }
  Settle(pool, instance, client);  // no leftover intent may bring it back after a crash
  Commit({{store::Op::kDelete, ReservationKey(pool, instance, client), ""}}, std::move(done));
}

void Controller::MarkFull(const std::string& pool, const std::string& instance) {
  auto it = impl_->pools.find(pool);
  const Instance* inst = it == impl_->pools.end() ? nullptr : it->second.state->Find(instance);
  if (!inst || inst->state == InstanceState::kUnhealthy) return;
  bool was_full = inst->state == InstanceState::kFull;
  it->second.state->Mutate(instance, [](Instance& i) {
    i.state = InstanceState::kFull;
    i.asked_at = state::Clock::now();  // asked again no sooner than reservation.cooldownMs
  }, was_full ? state::PoolState::Visibility::kQuiet : state::PoolState::Visibility::kShown);
  if (was_full) return;
  Persist(*it->second.state->Find(instance));
  Enqueue(pool);
}

std::optional<Controller::Holding> Controller::Holder(const std::string& client) const {
  for (const auto& [name, e] : impl_->pools) {
    if (const Instance* i = e.state->InstanceOf(client)) {
      return Holding{name, i->name, impl_->journal.Durable(ReservationKey(name, i->name, client))};
    }
  }
  return std::nullopt;
}

void Controller::SyncReservation(const Holding& holding, const std::string& client, Durable done) {
  impl_->journal.Sync(ReservationKey(holding.pool, holding.instance, client),
                      [this, holding, client, done = std::move(done), alive = std::weak_ptr<bool>(impl_->alive)](
                          std::optional<std::string> err) {
                        if (auto a = alive.lock(); a && *a && !err) {
                          impl_->intents.Remove(IntentKey(holding.pool, holding.instance, client), /*record=*/false);
                        }
                        done(err);
                      });
}

std::optional<std::string> Controller::JournalError() const { return impl_->journal.error(); }

void Controller::PersistPool(const Entry& entry, std::function<void(std::optional<std::string>)> done) {
  api::ServerPool p = entry.state->pool();
  p.status.reset();
  p.metadata.resourceVersion.clear();  // numbered afresh at every start
  json::object rec{{"pool", api::ToJson(p)},
                   {"deleting", entry.state->deleting},
                   {"force", entry.state->force_delete}};
  Commit({{store::Op::kPut, PoolKey(p.metadata.name), json::serialize(rec)}}, std::move(done));
}

void Controller::Record(Entry& entry, std::string type, std::string reason, std::string message) {
  log::Scope scope({.pool = entry.state->name(), .event = reason});
  spdlog::debug("pool {}: {} {}", entry.state->name(), reason, message);
  entry.events.push_back({state::FormatTime(state::Clock::now()), std::move(type), std::move(reason),
                          std::move(message)});
  while (entry.events.size() > impl_->options.events_per_pool) entry.events.pop_front();
}

void Controller::Apply(api::ServerPool desired, ApplyDone done) {
  auto& impl = *impl_;
  const std::string name = desired.metadata.name;
  auto it = impl.pools.find(name);
  desired.status.reset();
  ApplyOutcome outcome = ApplyOutcome::kCreated;
  // A resourceVersion makes the write conditional: it applies only to the
  // version the caller saw (none: the last write wins, as kubectl apply).
  const std::string expected = std::exchange(desired.metadata.resourceVersion, "");
  if (!expected.empty() && (it == impl.pools.end() || expected != std::to_string(it->second.resource_version))) {
    return done(ApplyOutcome::kConflict, it == impl.pools.end() ? desired : View(it->second),
                "Operation cannot be fulfilled on serverpools \"" + name + "\": " +
                    (it == impl.pools.end() ? std::string("it does not exist (resourceVersion " + expected + ")")
                                            : std::string("the object has been modified; please apply your changes "
                                                          "to the latest version and try again")));
  }
  if (it != impl.pools.end()) {
    const auto& old = it->second.state->pool();
    if (it->second.state->deleting) {
      return done(ApplyOutcome::kConflict, View(it->second), "pool " + name + " is being deleted");
    }
    desired.metadata.uid = old.metadata.uid;
    desired.metadata.creationTimestamp = old.metadata.creationTimestamp;
    bool spec_changed = desired.spec != old.spec;
    desired.metadata.generation = old.metadata.generation + (spec_changed ? 1 : 0);
    outcome = (spec_changed || desired.metadata.labels != old.metadata.labels ||
               desired.metadata.annotations != old.metadata.annotations)
                  ? ApplyOutcome::kUpdated
                  : ApplyOutcome::kUnchanged;
    if (outcome == ApplyOutcome::kUnchanged) return done(outcome, View(it->second), "");
    // Taken now: another write naming the version just read fails from here.
    it->second.resource_version = NextResourceVersion();
  } else {
    desired.metadata.generation = 1;
    char uid[17];
    std::snprintf(uid, sizeof uid, "%016llx", static_cast<unsigned long long>(impl.rng()));
    desired.metadata.uid = uid;
    desired.metadata.creationTimestamp = state::FormatTime(state::Clock::now());
  }
  // Journal first; the in-memory pool changes once it is durable.
  Entry staged;
  staged.state = std::make_unique<state::PoolState>(desired);
  PersistPool(staged, [this, desired, outcome, done = std::move(done)](std::optional<std::string> err) {
    if (err) return done(ApplyOutcome::kError, desired, "store: " + *err);
    auto& impl = *impl_;
    const std::string& name = desired.metadata.name;
    auto it = impl.pools.find(name);
    if (it == impl.pools.end()) {
      Entry e;
      e.state = std::make_unique<state::PoolState>(desired);
      it = impl.pools.emplace(name, std::move(e)).first;
      Observe(it->second);
      Record(it->second, "Normal", "Created", "pool created (generation 1)");
      PoolChanged(it->second, Change::Type::kAdded);
    } else {
      it->second.state->SetPool(desired);
      Record(it->second, "Normal", "Updated",
             "pool updated (generation " + std::to_string(desired.metadata.generation) + ")");
      PoolChanged(it->second, Change::Type::kModified);
    }
    spdlog::info("pool {} applied (generation {})", name, desired.metadata.generation);
    Reconcile(name);
    auto after = impl.pools.find(name);
    done(outcome, after == impl.pools.end() ? desired : View(after->second), "");
  });
}

void Controller::Delete(const std::string& name, bool force, DeleteDone done) {
  auto& impl = *impl_;
  auto it = impl.pools.find(name);
  if (it == impl.pools.end()) return done(std::nullopt, "serverpools \"" + name + "\" not found");
  it->second.state->deleting = true;
  it->second.state->force_delete = it->second.state->force_delete || force;
  Record(it->second, "Normal", "Deleting", force ? "pool deleted (force)" : "pool deleted: draining");
  PoolChanged(it->second, Change::Type::kModified);
  PersistPool(it->second, [this, name, done = std::move(done)](std::optional<std::string> err) {
    if (err) return done(std::nullopt, "store: " + *err);
    auto& impl = *impl_;
    auto it = impl.pools.find(name);
    if (it == impl.pools.end()) return done(std::nullopt, "serverpools \"" + name + "\" not found");
    auto view = View(it->second);
    Reconcile(name);
    done(view, "");
  });
}

api::ServerPool Controller::View(const Entry& entry) const {
  api::ServerPool p = entry.state->pool();
  p.status = entry.status;
  p.metadata.resourceVersion = std::to_string(entry.resource_version);
  return p;
}

std::uint64_t Controller::NextResourceVersion() {
  ++impl_->resource_version;
  ReserveResourceVersions();
  return impl_->resource_version;
}

// Keeps the durable ceiling at least half a block above the numbers given
// out (one journal write per half million changes).
void Controller::ReserveResourceVersions() {
  auto& impl = *impl_;
  if (impl.rv_ceiling_pending || impl.resource_version + kResourceVersionBlock / 2 < impl.rv_ceiling) return;
  std::uint64_t next = impl.resource_version + kResourceVersionBlock;
  impl.rv_ceiling_pending = true;
  Commit({{store::Op::kPut, kResourceVersionKey, std::to_string(next)}}, [this, next](std::optional<std::string> err) {
    impl_->rv_ceiling_pending = false;
    if (err) {
      spdlog::warn("store: cannot record the resource version ceiling: {}", *err);
      return;
    }
    impl_->rv_ceiling = std::max(impl_->rv_ceiling, next);
  });
}

void Controller::Observe(Entry& entry) {
  entry.state->SetObserver(&impl_->resource_version, [this, pool = entry.state->name()](const Instance& i,
                                                                                        state::PoolState::Change c) {
    ReserveResourceVersions();
    if (!impl_->on_change) return;
    Change change;
    change.type = c == state::PoolState::Change::kAdded    ? Change::Type::kAdded
                  : c == state::PoolState::Change::kErased ? Change::Type::kDeleted
                                                           : Change::Type::kModified;
    change.resource_version = i.resource_version;
    change.pool = pool;
    change.instance = &i;
    impl_->on_change(change);
  });
}

void Controller::PoolChanged(Entry& entry, Change::Type type) {
  entry.resource_version = NextResourceVersion();
  if (!impl_->on_change) return;
  Change change;
  change.type = type;
  change.resource_version = entry.resource_version;
  change.pool = entry.state->name();
  change.pool_object = View(entry);
  impl_->on_change(change);
}

void Controller::OnChange(std::function<void(const Change&)> fn) { impl_->on_change = std::move(fn); }

std::uint64_t Controller::resource_version() const { return impl_->resource_version; }

std::vector<api::ServerPool> Controller::List() const {
  std::vector<api::ServerPool> out;
  for (const auto& [name, e] : impl_->pools) out.push_back(View(e));
  return out;
}

std::vector<const state::PoolState*> Controller::Pools() const {
  std::vector<const state::PoolState*> out;
  out.reserve(impl_->pools.size());
  for (const auto& [name, e] : impl_->pools) out.push_back(e.state.get());
  return out;
}

std::optional<api::ServerPool> Controller::Get(const std::string& name) const {
  auto it = impl_->pools.find(name);
  if (it == impl_->pools.end()) return std::nullopt;
  return View(it->second);
}

std::optional<std::vector<const Instance*>> Controller::Instances(const std::string& name) const {
  auto it = impl_->pools.find(name);
  if (it == impl_->pools.end()) return std::nullopt;
  return it->second.state->Instances();
}

std::vector<Event> Controller::Events(const std::string& name) const {
  auto it = impl_->pools.find(name);
  if (it == impl_->pools.end()) return {};
  return {it->second.events.begin(), it->second.events.end()};
}

void Controller::OnInstanceReady(std::function<void(const std::string&)> fn) { impl_->on_ready = std::move(fn); }

void Controller::SetDemand(std::function<int(const std::string&)> fn) { impl_->demand = std::move(fn); }

const state::PoolState* Controller::Find(const std::string& name) const {
  auto it = impl_->pools.find(name);
  return it == impl_->pools.end() ? nullptr : it->second.state.get();
}

}  // namespace mm::reconcile
