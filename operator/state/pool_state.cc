#include "operator/state/pool_state.h"

#include <algorithm>
#include <ctime>

#include "api/v1alpha1/codec.h"

namespace mm::state {

std::string_view ToString(InstanceState s) {
  switch (s) {
    case InstanceState::kStarting: return "Starting";
    case InstanceState::kReady: return "Ready";
    case InstanceState::kAllocated: return "Allocated";
    case InstanceState::kFull: return "Full";
    case InstanceState::kUnhealthy: return "Unhealthy";
    case InstanceState::kTerminating: return "Terminating";
    case InstanceState::kExited: return "Exited";
  }
  return "Unknown";
}

std::optional<InstanceState> ParseInstanceState(std::string_view s) {
  for (int i = 0; i <= static_cast<int>(InstanceState::kExited); ++i) {
    auto st = static_cast<InstanceState>(i);
    if (ToString(st) == s) return st;
  }
  return std::nullopt;
}

PoolState::PoolState(api::ServerPool pool) { SetPool(std::move(pool)); }

void PoolState::SetPool(api::ServerPool pool) {
  pool_ = std::move(pool);
  std::string hash = api::TemplateHash(pool_.spec.templ);
  if (hash != template_hash_) {
    // The outdated flag in the ready index depends on the hash.
    for (auto& [name, i] : instances_) Unindex(i);
    template_hash_ = std::move(hash);
    plan_index_ = PlanIndex(template_hash_);
    for (auto& [name, i] : instances_) Index(i);
  }
}

const Instance* PoolState::Find(const std::string& name) const {
  auto it = instances_.find(name);
  return it == instances_.end() ? nullptr : &it->second;
}

void PoolState::IndexShape(const Instance& i, int sign) {
  counts_[static_cast<int>(i.state)] += sign;
  outdated_idle_ += sign * (i.idle() && i.template_hash != template_hash_);
  if (sign > 0) {
    plan_index_.Add(i);
    if (i.suspect) return;  // circuit open: offered again once a probe answers
    if (i.state == InstanceState::kAllocated) {
      partial_.emplace(-static_cast<int>(i.reservations.size()), i.name, &i);
    } else if (i.state == InstanceState::kReady) {
      ready_.emplace(i.template_hash != template_hash_, i.ready_at, i.name, &i);
    } else if (i.state == InstanceState::kFull) {
      full_.emplace(i.asked_at, i.name, &i);
    }
  } else {
    plan_index_.Remove(i);
    partial_.erase({-static_cast<int>(i.reservations.size()), i.name, &i});
    ready_.erase({i.template_hash != template_hash_, i.ready_at, i.name, &i});
    full_.erase({i.asked_at, i.name, &i});
  }
}

void PoolState::Index(const Instance& i) {
  IndexShape(i, +1);
  for (const auto& c : i.reservations) clients_.Set(c, &i);
}

void PoolState::Unindex(const Instance& i) {
  IndexShape(i, -1);
  for (const auto& c : i.reservations) Unindex(c, i);
}

void PoolState::Unindex(const std::string& client, const Instance& i) {
  if (!clients_.Erase(client, &i)) return;
  // Held twice: the entry moves to the other holder (rare; a scan).
  for (const auto& [name, other] : instances_) {
    if (&other == &i) continue;
    if (auto held = other.reservations.find(client); held != other.reservations.end()) {
      clients_.Set(*held, &other);
      return;
    }
  }
}

void PoolState::SetObserver(std::uint64_t* clock, Observer observer) {
  clock_ = clock;
  observer_ = std::move(observer);
}

void PoolState::Changed(Instance& i, Change change) {
  if (clock_) i.resource_version = ++*clock_;
  if (observer_) observer_(i, change);
}

void PoolState::Upsert(Instance instance) {
  auto it = instances_.find(instance.name);
  Change change = Change::kModified;
  if (it != instances_.end()) {
    Unindex(it->second);
    it->second = std::move(instance);
    Index(it->second);
  } else {
    it = instances_.emplace(instance.name, std::move(instance)).first;
    Index(it->second);
    change = Change::kAdded;
  }
  Changed(it->second, change);
}

void PoolState::Erase(const std::string& name) {
  auto it = instances_.find(name);
  if (it == instances_.end()) return;
  Unindex(it->second);
  Changed(it->second, Change::kErased);
  instances_.erase(it);
}

bool PoolState::SetState(const std::string& name, InstanceState state) {
  auto it = instances_.find(name);
  if (it == instances_.end()) return false;
  IndexShape(it->second, -1);
  it->second.state = state;
  IndexShape(it->second, +1);
  Changed(it->second);
  return true;
}

// O(log n): the client index is left alone (`change` keeps reservations).
bool PoolState::Mutate(const std::string& name, const std::function<void(Instance&)>& change, Visibility visibility) {
  auto it = instances_.find(name);
  if (it == instances_.end()) return false;
  IndexShape(it->second, -1);
  change(it->second);
  IndexShape(it->second, +1);
  if (visibility == Visibility::kShown) Changed(it->second);
  return true;
}

std::vector<const Instance*> PoolState::FullToAsk(TimePoint now, std::chrono::milliseconds cooldown,
                                                  std::size_t max) const {
  std::vector<const Instance*> out;
  for (auto it = full_.begin(); it != full_.end() && out.size() < max; ++it) {
    if (std::get<0>(*it) + cooldown > now) break;  // ordered by when last asked
    out.push_back(std::get<2>(*it));
  }
  return out;
}

std::vector<const Instance*> PoolState::Candidates(std::size_t max) const {
  std::vector<const Instance*> out;
  out.reserve(std::min(max, partial_.size() + ready_.size()));
  for (auto it = partial_.begin(); it != partial_.end() && out.size() < max; ++it) {
    out.push_back(std::get<2>(*it));
  }
  for (auto it = ready_.begin(); it != ready_.end() && out.size() < max; ++it) {
    out.push_back(std::get<3>(*it));
  }
  return out;
}

// O(log n): only this client and this instance's index entries change.
bool PoolState::AddReservation(const std::string& name, const std::string& client, const std::string& metadata) {
  auto it = instances_.find(name);
  if (it == instances_.end()) return false;
  IndexShape(it->second, -1);
  Hold(it->second, client, metadata);
  IndexShape(it->second, +1);
  Changed(it->second);
  return true;
}

void PoolState::Hold(Instance& i, std::string client, std::string metadata) {
  // The journal's keys sort by the percent-encoded id, mostly the set's
  // order: the hint makes most of a restart's inserts O(1).
  std::size_t before = i.reservations.size();
  auto held = i.reservations.insert(i.reservations.end(), std::move(client));
  if (!metadata.empty()) i.metadata[*held] = std::move(metadata);
  // A new holder only: Set counts a second instance holding the client.
  if (i.reservations.size() != before) clients_.Set(*held, &i);  // the key views the id in the set
  // A Full instance that grants a slot again may take more.
  if (i.state == InstanceState::kReady || i.state == InstanceState::kFull) i.state = InstanceState::kAllocated;
}

bool PoolState::AddReservations(const std::string& name, std::vector<std::pair<std::string, std::string>> clients) {
  auto it = instances_.find(name);
  if (it == instances_.end()) return false;
  if (clients.empty()) return true;
  Instance& i = it->second;
  IndexShape(i, -1);
  for (auto& [client, metadata] : clients) Hold(i, std::move(client), std::move(metadata));
  IndexShape(i, +1);
  Changed(i);
  return true;
}

bool PoolState::RemoveReservation(const std::string& name, const std::string& client_ref) {
  const std::string client = client_ref;  // it may alias the very entry erased below
  auto it = instances_.find(name);
  if (it == instances_.end() || !it->second.reservations.contains(client)) return false;
  Unindex(client, it->second);  // before the id it views goes
  IndexShape(it->second, -1);
  it->second.reservations.erase(client);
  it->second.metadata.erase(client);
  IndexShape(it->second, +1);
  Changed(it->second);
  return true;
}

const Instance* PoolState::InstanceOf(const std::string& client) const {
  return clients_.Find(client);
}

std::vector<const Instance*> PoolState::InstancesUnordered() const {
  std::vector<const Instance*> out;
  out.reserve(instances_.size());
  for (const auto& [name, i] : instances_) out.push_back(&i);
  return out;
}

std::vector<const Instance*> PoolState::Instances() const {
  std::vector<const Instance*> out = InstancesUnordered();
  std::sort(out.begin(), out.end(),
            [](const Instance* a, const Instance* b) { return a->name < b->name; });
  return out;
}

api::InstanceCounts PoolState::Counts() const {
  api::InstanceCounts c;
  c.starting = Count(InstanceState::kStarting);
  c.ready = Count(InstanceState::kReady);
  c.allocated = Count(InstanceState::kAllocated);
  c.full = Count(InstanceState::kFull);
  c.unhealthy = Count(InstanceState::kUnhealthy);
  c.terminating = Count(InstanceState::kTerminating);
  return c;
}

std::string FormatTime(TimePoint t) {
  std::time_t tt = Clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

api::ServerPoolStatus ComputeStatus(const PoolState& pool, const Plan& plan,
                                    const api::ServerPoolStatus& previous,
                                    TimePoint now, const Limits& limits) {
  api::ServerPoolStatus s;
  s.observedGeneration = pool.pool().metadata.generation;
  s.instances = pool.Counts();
  const auto& spec = pool.pool().spec;
  const auto& c = s.instances;
  int total = c.starting + c.ready + c.allocated + c.full + c.unhealthy + c.terminating;
  int outdated = pool.OutdatedIdle();

  auto cond = [&](std::string type, bool status, std::string reason, std::string message) {
    api::Condition out{type, status ? "True" : "False", std::move(reason), std::move(message), ""};
    out.lastTransitionTime = FormatTime(now);
    for (const auto& p : previous.conditions) {
      if (p.type == out.type && p.status == out.status) out.lastTransitionTime = p.lastTransitionTime;
    }
    s.conditions.push_back(std::move(out));
  };
  std::string warm = std::to_string(c.ready) + "/" + std::to_string(spec.warm) + " warm";
  if (pool.deleting) {
    cond("Ready", false, "Deleting", "draining " + std::to_string(total) + " instance(s)");
  } else if (c.ready >= spec.warm) {
    cond("Ready", true, "WarmPoolFull", warm);
  } else if (total >= spec.maxInstances) {
    cond("Ready", true, "AtMaxInstances", warm + ", maxInstances reached");
  } else {
    cond("Ready", false, "WarmingUp", warm);
  }
  if (plan.partial || plan.create > 0 || c.starting > 0 || outdated > 0 || c.terminating > 0) {
    std::string reason = outdated > 0 ? "RollingOut" : c.terminating > 0 ? "ScalingDown" : "ScalingUp";
    cond("Progressing", true, reason,
         std::to_string(c.starting) + " starting, " + std::to_string(outdated) + " outdated");
  } else {
    cond("Progressing", false, "Stable", "");
  }
  if (pool.failures.consecutive >= limits.degraded_after_failures) {
    cond("Degraded", true, "StartFailures",
         std::to_string(pool.failures.consecutive) + " consecutive start failures; last: " +
             pool.failures.last_message);
  } else {
    cond("Degraded", false, "", "");
  }
  return s;
}

}  // namespace mm::state
