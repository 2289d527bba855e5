#include "operator/backend/process_backend.h"

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

extern char** environ;

namespace mm::backend {
namespace net = boost::asio;
namespace fs = std::filesystem;

namespace {

// Field 22 of /proc/<pid>/stat (start time in clock ticks since boot) and
// field 3 (state). nullopt when the process does not exist.
struct ProcStat {
  std::uint64_t starttime = 0;
  char state = '?';
};

std::optional<ProcStat> ReadStat(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  auto close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(close + 2));
  ProcStat st;
  rest >> st.state;
  std::string field;
  for (int i = 4; i < 22 && rest >> field; ++i) {
  }
  if (!(rest >> st.starttime)) return std::nullopt;
  return st;
}

// Alive and still the same process (pid not recycled)?
bool Alive(pid_t pid, std::uint64_t starttime) {
  auto st = ReadStat(pid);
  return st && st->starttime == starttime && st->state != 'Z' && st->state != 'X';
}

std::map<std::string, std::string> ReadEnviron(pid_t pid) {
  std::map<std::string, std::string> env;
  std::ifstream in("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
  std::string entry;
  while (std::getline(in, entry, '\0')) {
    auto eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  return env;
}

bool CanBind(int type, int port) {
  int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// A port free for TCP and UDP that the kernel chose, not already handed out.
int PickPort(const std::set<int>& in_use) {
  for (int attempt = 0; attempt < 64; ++attempt) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    socklen_t len = sizeof a;
    int port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
      port = ntohs(a.sin_port);
    }
    ::close(fd);
    if (port && !in_use.contains(port) && CanBind(SOCK_DGRAM, port)) return port;
  }
  return 0;
}

std::string ExitMessage(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "ended";
}

int ExitCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

bool Executable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

// PATH lookup as execvp would do it, so a missing command is a clear error
// at create time rather than an exit code 127 later.
std::optional<std::string> Resolve(const std::string& cmd, const std::map<std::string, std::string>& env) {
  if (cmd.find('/') != std::string::npos) return Executable(cmd) ? std::optional(cmd) : std::nullopt;
  auto it = env.find("PATH");
  std::string path = it == env.end() ? "/usr/local/bin:/usr/bin:/bin" : it->second;
  std::istringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    std::string candidate = (dir.empty() ? "." : dir) + "/" + cmd;
    if (Executable(candidate)) return candidate;
  }
  return std::nullopt;
}

}  // namespace

std::string PortEnvName(const std::string& port_name) {
  std::string out = "MM_PORT_";
  for (char c : port_name) out.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(c)));
  return out;
}

std::string ExpandVars(const std::string& s, const std::map<std::string, std::string>& env) {
  std::string out;
  std::size_t i = 0;
  while (i < s.size()) {
    auto start = s.find("${", i);
    if (start == std::string::npos) break;
    auto end = s.find('}', start + 2);
    if (end == std::string::npos) break;
    out.append(s, i, start - i);
    auto it = env.find(s.substr(start + 2, end - start - 2));
    out += it != env.end() ? it->second : s.substr(start, end - start + 1);
    i = end + 1;
  }
  out.append(s, i, std::string::npos);
  return out;
}

struct ProcessBackend::Impl : std::enable_shared_from_this<ProcessBackend::Impl> {
  struct Proc {
    std::string pool, name;
    std::uint64_t starttime = 0;
    bool child = true;  // false: adopted, not ours to waitpid
    std::set<int> ports;
    std::shared_ptr<net::steady_timer> kill_timer;
  };

  Impl(net::io_context& io, ProcessOptions o)
      : io(io), opts(std::move(o)), sigchld(io, SIGCHLD), poll_timer(io) {
    std::error_code ec;
    auto abs = fs::weakly_canonical(fs::absolute(opts.data_dir), ec);
    managed_by = "matchmakerd:" + (ec ? opts.data_dir : abs.string());
  }

  void Arm() {
    sigchld.async_wait([weak = weak_from_this()](auto ec, int) {
      auto self = weak.lock();
      if (!self || ec) return;
      self->Reap();
      self->Arm();
    });
  }

  void Reap() {
    int status = 0;
    pid_t pid;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
      Exited(pid, ExitCode(status), ExitMessage(status));
    }
  }

  void Exited(pid_t pid, int code, std::string message) {
    auto it = procs.find(pid);
    if (it == procs.end()) return;
    Proc p = std::move(it->second);
    procs.erase(it);
    if (p.kill_timer) p.kill_timer->cancel();
    for (int port : p.ports) ports_in_use.erase(port);
    if (on_exit) on_exit(ExitEvent{p.pool, p.name, code, std::move(message)});
  }

  void SchedulePoll() {
    bool any_adopted = false;
    for (const auto& [pid, p] : procs) any_adopted = any_adopted || !p.child;
    if (!any_adopted || polling) return;
    polling = true;
    poll_timer.expires_after(opts.poll);
    poll_timer.async_wait([weak = weak_from_this()](auto ec) {
      auto self = weak.lock();
      if (!self || ec) return;
      self->polling = false;
      std::vector<pid_t> gone;
      for (const auto& [pid, p] : self->procs) {
        if (!p.child && !Alive(pid, p.starttime)) gone.push_back(pid);
      }
      for (pid_t pid : gone) self->Exited(pid, -1, "exited (not a child of this matchmakerd)");
      self->SchedulePoll();
    });
  }

  void Stop(pid_t pid) {
    auto it = procs.find(pid);
    if (it == procs.end()) return;
    if (!Alive(pid, it->second.starttime)) return;  // reaping or polling will report it
    ::kill(-pid, SIGTERM);
    auto timer = std::make_shared<net::steady_timer>(io, opts.grace);
    it->second.kill_timer = timer;
    std::uint64_t starttime = it->second.starttime;
    timer->async_wait([pid, starttime](auto ec) {
      if (!ec && Alive(pid, starttime)) ::kill(-pid, SIGKILL);
    });
  }

  net::io_context& io;
  ProcessOptions opts;
  std::string managed_by;
  net::signal_set sigchld;
  net::steady_timer poll_timer;
  bool polling = false;
  std::map<pid_t, Proc> procs;
  std::set<int> ports_in_use;
  std::function<void(ExitEvent)> on_exit;
};

ProcessBackend::ProcessBackend(net::io_context& io, ProcessOptions options)
    : impl_(std::make_shared<Impl>(io, std::move(options))) {
  impl_->Arm();
}

ProcessBackend::~ProcessBackend() {
  boost::system::error_code ec;
  impl_->sigchld.cancel(ec);
  impl_->poll_timer.cancel();
}

const std::string& ProcessBackend::managed_by() const { return impl_->managed_by; }

void ProcessBackend::OnExit(std::function<void(ExitEvent)> handler) { impl_->on_exit = std::move(handler); }

// A finished instance's log goes with it; a failed one's stays, the newest
// `failed_logs_kept` of its pool (by modification time).
void ProcessBackend::Forget(const state::Instance& instance) {
  std::error_code ec;
  fs::path dir = fs::path(impl_->opts.data_dir) / "logs" / instance.pool;
  fs::path log = dir / (instance.name + ".log");
  if (!instance.failed) {
    fs::remove(log, ec);
    return;
  }
  // What is left in the directory besides running instances' logs is
  // failed ones (finished ones went when forgotten): keep the newest.
  std::set<std::string> live;
  for (const auto& [pid, p] : impl_->procs) {
    if (p.pool == instance.pool) live.insert(p.name + ".log");
  }
  std::vector<std::pair<fs::file_time_type, fs::path>> failed;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    auto name = e.path().filename().string();
    if (e.path().extension() == ".log" && !live.contains(name)) failed.emplace_back(e.last_write_time(ec), e.path());
  }
  if (failed.size() <= impl_->opts.failed_logs_kept) return;
  std::sort(failed.begin(), failed.end());
  for (std::size_t i = 0; i + impl_->opts.failed_logs_kept < failed.size(); ++i) fs::remove(failed[i].second, ec);
}

void ProcessBackend::Create(const InstanceSpec& spec, std::function<void(CreateResult)> done) {
  auto& impl = *impl_;
  const auto& t = spec.templ;
  if (t.command.empty()) return done(std::string("template.command is required by the process backend"));

  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& var : t.env) env[var.name] = var.value;
  Placement placement;
  placement.host = impl.opts.public_address;
  placement.control_host = "127.0.0.1";
  std::set<int> ports;
  auto pick = [&]() {
    int p = PickPort(impl.ports_in_use);
    if (p) {
      impl.ports_in_use.insert(p);
      ports.insert(p);
    }
    return p;
  };
  placement.control_port = pick();
  env["MM_CONTROL_PORT"] = std::to_string(placement.control_port);
  for (const auto& port : t.ports) {
    int p = pick();
    placement.ports[port.name] = p;
    env[PortEnvName(port.name)] = std::to_string(p);
  }
  auto release = [&] {
    for (int p : ports) impl.ports_in_use.erase(p);
  };
  if (ports.size() != t.ports.size() + 1) {
    release();
    return done(std::string("no free ports"));
  }
  env["MM_POOL"] = spec.pool;
  env["MM_INSTANCE"] = spec.name;
  env["MM_MANAGED_BY"] = impl.managed_by;

  auto exe = Resolve(t.command[0], env);
  if (!exe) {
    release();
    return done("command not found or not executable: " + t.command[0]);
  }
  std::vector<std::string> args = {*exe};
  for (std::size_t i = 1; i < t.command.size(); ++i) args.push_back(ExpandVars(t.command[i], env));
  for (const auto& a : t.args) args.push_back(ExpandVars(a, env));

  fs::path log_dir = fs::path(impl.opts.data_dir) / "logs" / spec.pool;
  std::error_code ec;
  fs::create_directories(log_dir, ec);
  std::string log_path = (log_dir / (spec.name + ".log")).string();
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (log_fd < 0 || null_fd < 0) {
    if (log_fd >= 0) ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    release();
    return done("cannot open " + log_path);
  }

  // Everything the child needs is built before fork: after it, only
  // async-signal-safe calls until exec.
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  // Asio's sockets are not close-on-exec: without this, instances would
  // inherit (and keep open) our listening sockets.
  const int max_fd = static_cast<int>(std::min<long>(::sysconf(_SC_OPEN_MAX), 1 << 16));
  // Signals stay blocked across fork until the child has dropped our
  // handlers: Asio's handler writes to a pipe the child shares with us, so a
  // SIGTERM sent to a child that has not exec'd yet would otherwise reach
  // *our* signal_set and stop matchmakerd.
  sigset_t all, saved;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &saved);
  pid_t pid = ::fork();
  if (pid == 0) {
    for (int sig = 1; sig < NSIG; ++sig) {
      if (sig != SIGKILL && sig != SIGSTOP) ::signal(sig, SIG_DFL);
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::setsid();  // own session and process group: survives us, stops as a group
    ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    if (::syscall(SYS_close_range, 3U, ~0U, 0U) != 0) {
      for (int fd = 3; fd < max_fd; ++fd) ::close(fd);
    }
    ::execve(argv[0], argv.data(), envp.data());
    static const char kMsg[] = "matchmakerd: exec failed\n";
    (void)!::write(2, kMsg, sizeof kMsg - 1);
    ::_exit(127);
  }
  ::pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  ::close(log_fd);
  ::close(null_fd);
  if (pid < 0) {
    release();
    return done(std::string("fork failed"));
  }
  auto st = ReadStat(pid);
  Impl::Proc proc{spec.pool, spec.name, st ? st->starttime : 0, true, ports, nullptr};
  impl.procs.emplace(pid, std::move(proc));
  placement.backend_id = std::to_string(pid) + ":" + std::to_string(st ? st->starttime : 0);
  done(std::move(placement));
}

void ProcessBackend::Remove(const state::Instance& instance) {
  auto colon = instance.backend_id.find(':');
  pid_t pid = colon == std::string::npos ? 0 : static_cast<pid_t>(std::atol(instance.backend_id.c_str()));
  if (pid > 0 && impl_->procs.contains(pid) && impl_->procs.at(pid).name == instance.name) {
    impl_->Stop(pid);
    return;
  }
  // Nothing of ours runs under that record (never started, or already gone).
  net::post(impl_->io, [weak = std::weak_ptr(impl_), pool = instance.pool, name = instance.name] {
    if (auto self = weak.lock(); self && self->on_exit) {
      self->on_exit(ExitEvent{pool, name, -1, "not running"});
    }
  });
}

// `templates` is not needed: a child's placement is in its environment.
void ProcessBackend::Adopt(const std::vector<const state::Instance*>& known, const Templates& /*templates*/,
             std::function<void(Adopted)> done) {
  auto& impl = *impl_;
  std::map<std::string, const state::Instance*> by_key;
  for (const auto* i : known) by_key[i->pool + "/" + i->name] = i;
  std::map<std::string, Placement> adopted;
  std::vector<pid_t> orphans;

  DIR* proc = ::opendir("/proc");
  while (proc) {
    dirent* e = ::readdir(proc);
    if (!e) break;
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0 || pid == ::getpid()) continue;
    auto env = ReadEnviron(static_cast<pid_t>(pid));
    auto mb = env.find("MM_MANAGED_BY");
    if (mb == env.end() || mb->second != impl.managed_by) continue;
    auto st = ReadStat(static_cast<pid_t>(pid));
    if (!st || st->state == 'Z') continue;
    // A process of ours: the session leader carries the instance; its own
    // children (same env) are stopped with its group.
    if (::getsid(static_cast<pid_t>(pid)) != pid) continue;
    std::string key = env["MM_POOL"] + "/" + env["MM_INSTANCE"];
    std::set<int> ports;
    Placement p;
    p.host = impl.opts.public_address;
    p.control_host = "127.0.0.1";
    p.control_port = std::atoi(env["MM_CONTROL_PORT"].c_str());
    ports.insert(p.control_port);
    p.backend_id = std::to_string(pid) + ":" + std::to_string(st->starttime);
    auto it = by_key.find(key);
    if (it != by_key.end()) {
      for (const auto& [name, port] : it->second->ports) {
        int v = std::atoi(env[PortEnvName(name)].c_str());
        p.ports[name] = v ? v : port;
        ports.insert(p.ports[name]);
      }
    }
    Impl::Proc rec{env["MM_POOL"], env["MM_INSTANCE"], st->starttime, false, ports, nullptr};
    impl.procs.emplace(static_cast<pid_t>(pid), rec);
    for (int port : ports) impl.ports_in_use.insert(port);
    if (it != by_key.end() && !adopted.contains(key)) {
      adopted[it->second->name] = p;
      by_key.erase(it);
    } else {
      orphans.push_back(static_cast<pid_t>(pid));
    }
  }
  if (proc) ::closedir(proc);
  for (pid_t pid : orphans) impl.Stop(pid);
  // Recorded instances with no process: they ended while we were away.
  std::vector<ExitEvent> gone;
  for (const auto& [key, inst] : by_key) gone.push_back({inst->pool, inst->name, -1, "not running after restart"});
  net::post(impl.io, [weak = std::weak_ptr(impl_), gone = std::move(gone)] {
    auto self = weak.lock();
    if (!self || !self->on_exit) return;
    for (const auto& g : gone) self->on_exit(g);
  });
  impl.SchedulePoll();
  done(std::move(adopted));
}

}  // namespace mm::backend
