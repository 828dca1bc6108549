// libraft's include comes first: see libraft.h.
#include "core/replication/libraft.h"

#include "core/replication/replica_internal.h"

#include <algorithm>
#include <cstring>
#include <random>
#include <stdexcept>

#include <fmt/format.h>

#include "core/log.h"

namespace wharf::core::replication {
namespace {

// A raft_malloc'd copy of `bytes` (at least one byte: raft_malloc(0) may answer NULL, which
// libraft's asserts refuse as an entry's batch).
void* raft_copy(std::string_view bytes) {
  void* p = raft_malloc(std::max<std::size_t>(bytes.size(), 1));
  if (p == nullptr) throw std::bad_alloc();
  if (!bytes.empty()) std::memcpy(p, bytes.data(), bytes.size());
  return p;
}

role role_of(int state) {
  switch (state) {
    case RAFT_FOLLOWER: return role::follower;
    case RAFT_CANDIDATE: return role::candidate;
    case RAFT_LEADER: return role::leader;
    default: return role::unavailable;
  }
}

}  // namespace

// (replica_internal.h)
raft_configuration decode_configuration(std::string_view encoded) {
  raft_configuration conf;
  raft_configuration_init(&conf);
  raft_buffer buf{const_cast<char*>(encoded.data()), encoded.size()};
  if (encoded.empty() || raft_configuration_decode(&buf, &conf) != 0)
    throw std::runtime_error("replication: a configuration entry does not decode");
  return conf;
}

std::string encode_configuration(const raft_configuration& conf) {
  raft_buffer buf{};
  if (raft_configuration_encode(&conf, &buf) != 0) throw std::bad_alloc();
  std::string out(static_cast<const char*>(buf.base), buf.len);
  raft_free(buf.base);
  return out;
}

const char* to_string(role r) noexcept {
  switch (r) {
    case role::unavailable: return "unavailable";
    case role::follower: return "follower";
    case role::candidate: return "candidate";
    case role::leader: return "leader";
  }
  return "?";
}

// A write handed to the host: what its completion must tell libraft.
struct replica::write_in_flight {
  bool term_or_vote = false;
  std::uint64_t first_index = 0;        // of the entries it holds; 0: none
  std::vector<std::uint64_t> terms;     // their terms, in order
};

replica::replica(replica_options options, storage& store, replica_host& host)
    : options_(std::move(options)), store_(store), host_(host), log_(options_.group), raft_(new ::raft{}) {
  if (options_.id == 0) throw std::invalid_argument("replication: a member's id must be above 0");
  if (raft_init(raft_.get(), nullptr, nullptr, options_.id, options_.address.c_str()) != 0)
    throw std::runtime_error("replication: raft_init failed");
  // libraft's default tracer formats every trace into static buffers, racing between
  // groups on different threads; wharf logs what matters itself.
  raft_->tracer = nullptr;
  // Step mode does not seed libraft's generator; seed before the election timeout is set
  // (setting it draws the first randomized timeout).
  raft_seed(raft_.get(), options_.seed != 0 ? options_.seed : std::random_device{}());
  raft_set_election_timeout(raft_.get(), options_.election_timeout_ms);
  raft_set_heartbeat_timeout(raft_.get(), options_.heartbeat_timeout_ms);
  raft_set_install_snapshot_timeout(raft_.get(), options_.install_snapshot_timeout_ms);
  raft_set_pre_vote(raft_.get(), true);
  raft_set_max_inflight_entries(raft_.get(), std::max<std::uint32_t>(options_.max_inflight_entries, 1));
  for (const auto& s : options_.bootstrap) addresses_[s.id] = s.address;
  addresses_[options_.id] = options_.address;
}

replica::~replica() {
  if (raft_) raft_close(raft_.get(), nullptr);
}

void replica::bootstrap_if_empty(std::uint64_t applied_index) {
  const auto stored = log_.load(store_);
  if (stored.term != 0 || !stored.entries.empty() || stored.snapshot) return;
  const bool member = std::any_of(options_.bootstrap.begin(), options_.bootstrap.end(),
                                  [&](const server& s) { return s.id == options_.id; });
  if (!member) return;  // a member to be added: it learns the group from its leader
  // Entry 1 is the initial configuration on every member: the same bytes everywhere, since
  // libraft takes it as committed without replicating it. So the voters go in id order.
  auto voters = options_.bootstrap;
  std::sort(voters.begin(), voters.end(), [](const server& a, const server& b) { return a.id < b.id; });
  raft_configuration conf;
  raft_configuration_init(&conf);
  for (const auto& s : voters) {
    if (raft_configuration_add(&conf, s.id, s.address.c_str(), RAFT_VOTER) != 0) {
      raft_configuration_close(&conf);
      throw std::runtime_error(fmt::format("replication: bootstrap member {} ({}) is not valid", s.id, s.address));
    }
  }
  std::string encoded = encode_configuration(conf);
  raft_configuration_close(&conf);
  write_batch batch;
  log_.put_term_and_vote(batch, 1, 0);
  if (applied_index == 0) {
    log_.put_entry(batch, 1, log_entry{1, static_cast<std::uint8_t>(entry_type::configuration), std::move(encoded)});
  } else {
    // The state machine's state at applied_index is the first snapshot: the log goes on
    // from there, and the configuration is that snapshot's.
    log_.put_snapshot(batch, snapshot_meta{applied_index, 1, std::move(encoded), applied_index});
  }
  if (const auto ec = store_.write_sync(std::move(batch)))
    throw std::runtime_error("replication: cannot write the bootstrap entry: " + ec.message());
}

void replica::start(std::uint64_t applied_index) {
  bootstrap_if_empty(applied_index);
  auto stored = log_.load(store_);
  raft_event event{};
  event.type = RAFT_START;
  event.start.term = stored.term;
  event.start.voted_for = stored.voted_for;
  event.start.start_index = stored.start_index;
  raft_snapshot_metadata* meta = nullptr;
  if (stored.snapshot) {
    meta = static_cast<raft_snapshot_metadata*>(raft_calloc(1, sizeof(raft_snapshot_metadata)));
    meta->index = stored.snapshot->index;
    meta->term = stored.snapshot->term;
    meta->configuration = decode_configuration(stored.snapshot->configuration);  // libraft takes it over
    meta->configuration_index = stored.snapshot->configuration_index;
  }
  event.start.metadata = meta;
  // The entries in one raft_malloc'd batch, as libraft expects of loaded entries.
  std::size_t total = 0;
  for (const auto& e : stored.entries) total += e.data.size();
  raft_entry* entries = nullptr;
  if (!stored.entries.empty()) {
    auto* batch = static_cast<char*>(raft_malloc(std::max<std::size_t>(total, 1)));
    entries = static_cast<raft_entry*>(raft_calloc(stored.entries.size(), sizeof(raft_entry)));
    std::size_t offset = 0;
    for (std::size_t i = 0; i < stored.entries.size(); ++i) {
      const auto& e = stored.entries[i];
      std::memcpy(batch + offset, e.data.data(), e.data.size());
      entries[i] = raft_entry{e.term, static_cast<raft_entry_type>(e.type), {batch + offset, e.data.size()}, batch};
      offset += e.data.size();
    }
  }
  event.start.entries = entries;
  event.start.n_entries = static_cast<unsigned>(stored.entries.size());

  mem_clear();
  for (auto& e : stored.entries) mem_push_back(std::move(e));
  mem_first_ = stored.start_index;
  applied_ = stored.snapshot ? stored.snapshot->index : 0;
  if (stored.snapshot) {
    snapshot_index_ = stored.snapshot->index;
    configurations_[stored.snapshot->configuration_index] = stored.snapshot->configuration;
    members_changed(stored.snapshot->configuration);  // the log's own configurations follow as they apply
  }
  covered_by_state_ = applied_index;
  started_ = true;

  event.time = host_.now_ms();
  raft_update update{};
  const int rv = raft_step(raft_.get(), &event, &update);
  if (meta != nullptr) raft_free(meta);  // its configuration now belongs to libraft
  if (rv != 0) {
    // libraft freed the entries on this path.
    throw std::runtime_error(fmt::format("replication: start refused: {}", raft_strerror(rv)));
  }
  if (entries != nullptr) {
    raft_free(entries[0].batch);
    raft_free(entries);
  }
  stepping_ = true;
  process(update);
  stepping_ = false;
  drain_follow_ups();
}

void replica::step(raft_event& event) {
  if (failed_) return;
  event.time = host_.now_ms();
  event.capacity = 0;
  raft_update update{};
  const int rv = raft_step(raft_.get(), &event, &update);
  if (rv != 0) {
    stop_member(fmt::format("{} ({})", raft_strerror(rv), raft_errmsg(raft_.get())), "libraft refused an event");
    return;
  }
  stepping_ = true;
  process(update);
  stepping_ = false;
}

void replica::receive(std::uint64_t from, std::string_view body) {
  if (!started_ || failed_) return;
  const auto m = decode_raft(body);
  if (!m) {
    log::queue().warn("replication: a malformed Raft message from member {} was dropped", from);
    return;
  }
  raft_message message{};
  message.type = static_cast<raft_message_type>(m->type);
  message.server_id = from;
  message.server_address = address_of(from).c_str();
  raft_entry* entries = nullptr;
  switch (m->type) {
    case RAFT_REQUEST_VOTE:
      message.request_vote = {m->version, m->term, m->candidate_id, m->last_log_index, m->last_log_term,
                              m->disrupt_leader, m->pre_vote};
      break;
    case RAFT_REQUEST_VOTE_RESULT:
      message.request_vote_result = {m->version, m->term, m->vote_granted, m->pre_vote, m->features, m->capacity};
      break;
    case RAFT_APPEND_ENTRIES: {
      // All payloads in one raft_malloc'd batch: libraft frees it, or hands it back with
      // RAFT_UPDATE_ENTRIES. The array is ours either way.
      std::size_t total = 0;
      for (const auto& e : m->entries) total += e.data.size();
      if (!m->entries.empty()) {
        auto* batch = static_cast<char*>(raft_malloc(std::max<std::size_t>(total, 1)));
        entries = static_cast<raft_entry*>(raft_calloc(m->entries.size(), sizeof(raft_entry)));
        std::size_t offset = 0;
        for (std::size_t i = 0; i < m->entries.size(); ++i) {
          const auto& e = m->entries[i];
          std::memcpy(batch + offset, e.data.data(), e.data.size());
          entries[i] = raft_entry{e.term, static_cast<raft_entry_type>(e.type), {batch + offset, e.data.size()}, batch};
          offset += e.data.size();
        }
      }
      leader_commit_ = std::max(leader_commit_, m->leader_commit);
      message.append_entries = {m->version, m->term, m->prev_log_index, m->prev_log_term, m->leader_commit, entries,
                                static_cast<unsigned>(m->entries.size())};
      break;
    }
    case RAFT_APPEND_ENTRIES_RESULT:
      message.append_entries_result = {m->version, m->term, m->rejected, m->last_log_index, m->features, m->capacity};
      break;
    case RAFT_TIMEOUT_NOW:
      message.timeout_now = {m->version, m->term, m->last_log_index, m->last_log_term};
      break;
    case RAFT_INSTALL_SNAPSHOT: {
      // The state itself came before, by the host's transfer, and is in place: libraft gets
      // the metadata, with no data of its own.
      raft_configuration conf;
      try {
        conf = decode_configuration(m->configuration);  // libraft takes it over
      } catch (const std::runtime_error&) {
        log::queue().warn("replication: a snapshot from member {} has no valid configuration; dropped", from);
        return;
      }
      message.install_snapshot = {m->version, m->term, m->snapshot_index, m->snapshot_term, conf,
                                  m->configuration_index, raft_buffer{nullptr, 0}};
      break;
    }
    default:
      log::queue().warn("replication: Raft message type {} from member {} not handled", m->type, from);
      return;
  }
  raft_event event{};
  event.type = RAFT_RECEIVE;
  event.receive.message = &message;
  step(event);
  raft_free(entries);
  drain_follow_ups();
}

void replica::timeout() {
  if (!started_ || failed_) return;
  raft_event event{};
  event.type = RAFT_TIMEOUT;
  step(event);
  drain_follow_ups();
  advance_join();
}

int replica::submit(entry_type type, const std::string& data) {
  void* buf = raft_copy(data);
  raft_entry entry{raft_current_term(raft_.get()), static_cast<raft_entry_type>(type), {buf, data.size()}, buf};
  raft_event event{};
  event.type = RAFT_SUBMIT;
  event.submit.entries = &entry;
  event.submit.n = 1;
  event.time = host_.now_ms();
  raft_update update{};
  const int rv = raft_step(raft_.get(), &event, &update);
  if (rv != 0) {
    // Refused before any change: not leader, transferring leadership, or (a configuration)
    // another change not yet committed.
    raft_free(buf);
    return rv;
  }
  stepping_ = true;
  process(update);
  stepping_ = false;
  drain_follow_ups();
  return 0;
}

std::optional<replica::proposal> replica::propose(entry_type type, std::string data) {
  if (!started_ || failed_ || raft_state(raft_.get()) != RAFT_LEADER) return std::nullopt;
  const proposal p{raft_last_index(raft_.get()) + 1, raft_current_term(raft_.get())};
  if (submit(type, data) != 0) return std::nullopt;
  return p;
}

void replica::process(raft_update& update) {
  ::raft* r = raft_.get();
  write_batch batch;
  auto w = std::make_shared<write_in_flight>();
  if (update.flags & (RAFT_UPDATE_CURRENT_TERM | RAFT_UPDATE_VOTED_FOR)) {
    log_.put_term_and_vote(batch, raft_current_term(r), raft_voted_for(r));
    w->term_or_vote = true;
  }
  if (update.flags & RAFT_UPDATE_ENTRIES) {
    persist_entries(update.entries.index, update.entries.batch, update.entries.n, batch);
    w->first_index = update.entries.index;
    for (unsigned i = 0; i < update.entries.n; ++i) w->terms.push_back(update.entries.batch[i].term);
  }
  if (!batch.empty()) {
    if (w->term_or_vote) ++term_writes_in_flight_;
    host_.write(std::move(batch), [this, w](std::error_code ec) { on_written(*w, ec); });
  }
  if (update.flags & RAFT_UPDATE_SNAPSHOT) persist_installed_snapshot(&update.snapshot);
  if (update.flags & RAFT_UPDATE_MESSAGES) {
    for (unsigned i = 0; i < update.messages.n; ++i) {
      const raft_message& m = update.messages.batch[i];
      if (m.server_address != nullptr && !addresses_.contains(m.server_id)) addresses_[m.server_id] = m.server_address;
      if (m.type == RAFT_INSTALL_SNAPSHOT) {
        offer_snapshot(&m);
      } else {
        send_or_hold(m.server_id, encode_outgoing(&m));
      }
    }
  }
  const role now = role_of(raft_state(r));
  raft_id leader_id = 0;
  const char* leader_address = nullptr;
  raft_leader(r, &leader_id, &leader_address);
  if (now != last_role_ || leader_id != last_leader_) {
    last_role_ = now;
    last_leader_ = leader_id;
    host_.role_changed(now, leader_id);
  }
  if (update.flags & RAFT_UPDATE_COMMIT_INDEX) apply_committed();
  host_.arm_timer(raft_timeout(r));
}

void replica::persist_entries(std::uint64_t first_index, const void* entries_ptr, unsigned n, write_batch& batch) {
  const auto* entries = static_cast<const raft_entry*>(entries_ptr);
  const std::uint64_t last = mem_first_ + mem_.size() - 1;
  if (first_index <= last) {
    // A conflict with the leader's log: everything from first_index on goes.
    log_.erase_from(batch, first_index);
    while (first_index >= mem_first_ && mem_.size() > first_index - mem_first_) mem_pop_back();
  }
  for (unsigned i = 0; i < n; ++i) {
    log_entry e{entries[i].term, static_cast<std::uint8_t>(entries[i].type),
                std::string(static_cast<const char*>(entries[i].buf.base), entries[i].buf.len)};
    log_.put_entry(batch, first_index + i, e);
    mem_push_back(std::move(e));
  }
  // Whatever their origin (our submission, a received message, libraft's own no-op), the
  // payloads are ours once handed over, in one batch.
  if (n > 0 && entries[0].batch != nullptr) raft_free(entries[0].batch);
}

void replica::send_or_hold(std::uint64_t to, std::string body) {
  if (term_writes_in_flight_ > 0 || !held_.empty()) {
    held_.emplace_back(to, std::move(body));
    return;
  }
  host_.send(to, address_of(to), std::move(body));
}

void replica::flush_held_messages() {
  while (!held_.empty() && term_writes_in_flight_ == 0) {
    auto [to, body] = std::move(held_.front());
    held_.pop_front();
    host_.send(to, address_of(to), std::move(body));
  }
}

void replica::on_written(const write_in_flight& w, std::error_code ec) {
  if (failed_) return;
  if (ec) {
    // libraft cannot go on without its log: this member stops; the others carry on.
    stop_member(ec.message(), "its log could not be written");
    return;
  }
  if (w.term_or_vote && --term_writes_in_flight_ == 0) flush_held_messages();
  if (w.first_index == 0) return;
  // The longest prefix of what was written that is still in the log: a truncation may have
  // replaced the rest since.
  std::uint64_t durable = 0;
  for (std::size_t i = 0; i < w.terms.size(); ++i) {
    const std::uint64_t index = w.first_index + i;
    const log_entry* e = index >= mem_first_ && index < mem_first_ + mem_.size() ? &mem_[index - mem_first_] : nullptr;
    if (e == nullptr || e->term != w.terms[i]) break;
    durable = index;
  }
  const int state = raft_state(raft_.get());
  if (durable == 0 || durable <= raft_->last_stored || (state != RAFT_LEADER && state != RAFT_FOLLOWER)) return;
  raft_event event{};
  event.type = RAFT_PERSISTED_ENTRIES;
  event.persisted_entries.index = durable;
  step(event);
  drain_follow_ups();
}

void replica::stop_member(const std::string& why, std::string_view what) {
  failed_ = true;
  log::queue().critical("replication: member {} stopped, {}: {}", options_.id, what, why);
  host_.member_failed(why);
}

void replica::apply_committed() {
  const std::uint64_t commit = raft_commit_index(raft_.get());
  while (applied_ < commit) {
    const std::uint64_t index = applied_ + 1;
    const log_entry* e = entry_at(index);
    if (e == nullptr) break;  // not here yet (libraft never commits past what it handed over)
    applied_ = index;
    if (index > covered_by_state_) host_.apply(index, *e);
    if (e->type == static_cast<std::uint8_t>(entry_type::configuration)) {
      configurations_[index] = e->data;
      members_changed(e->data);
      // libraft marks a configuration committed only when told (RAFT_CONFIGURATION).
      follow_ups_.push_back([this, index, data = e->data] {
        raft_event event{};
        event.type = RAFT_CONFIGURATION;
        event.configuration.index = index;
        event.configuration.conf = decode_configuration(data);  // libraft takes it over
        step(event);
      });
    }
  }
  trim_memory();
}

void replica::members_changed(const std::string& encoded_configuration) {
  raft_configuration conf = decode_configuration(encoded_configuration);
  std::vector<server> members;
  for (unsigned i = 0; i < conf.n; ++i) {
    members.push_back({conf.servers[i].id, conf.servers[i].address});
    addresses_[conf.servers[i].id] = conf.servers[i].address;
  }
  raft_configuration_close(&conf);
  host_.members_changed(members);
}

void replica::drain_follow_ups() {
  while (!stepping_ && !follow_ups_.empty()) {
    auto next = std::move(follow_ups_.front());
    follow_ups_.pop_front();
    next();
  }
}

void replica::trim_memory() {
  // Entries applied long ago are read back from storage if a follower needs them. Only
  // entries durable here go: a write in flight reports its entries by finding them in memory.
  while (!mem_.empty() && mem_first_ <= applied_ && mem_first_ <= raft_->last_stored &&
         (mem_first_ + options_.applied_entries_in_memory < applied_ || mem_bytes_ > options_.applied_bytes_in_memory))
    mem_pop_front();
}

void replica::mem_push_back(log_entry e) {
  mem_bytes_ += e.data.size();
  mem_.push_back(std::move(e));
}

void replica::mem_pop_front() {
  mem_bytes_ -= mem_.front().data.size();
  mem_.pop_front();
  ++mem_first_;
}

void replica::mem_pop_back() {
  mem_bytes_ -= mem_.back().data.size();
  mem_.pop_back();
}

void replica::mem_clear() {
  mem_.clear();
  mem_bytes_ = 0;
}

const log_entry* replica::entry_at(std::uint64_t index) {
  if (index >= mem_first_ && index < mem_first_ + mem_.size()) return &mem_[index - mem_first_];
  if (index >= mem_first_) return nullptr;
  auto e = log_.read(store_, index);
  if (!e) return nullptr;
  read_back_ = std::move(*e);
  return &read_back_;
}

const std::string& replica::address_of(std::uint64_t id) {
  static const std::string unknown = "?";
  const auto it = addresses_.find(id);
  return it == addresses_.end() ? unknown : it->second;
}

std::string replica::encode_outgoing(const void* message_ptr) {
  const auto& m = *static_cast<const raft_message*>(message_ptr);
  raft_frame f;
  f.type = static_cast<std::uint8_t>(m.type);
  switch (m.type) {
    case RAFT_REQUEST_VOTE: {
      const auto& a = m.request_vote;
      f.version = a.version;
      f.term = a.term;
      f.candidate_id = a.candidate_id;
      f.last_log_index = a.last_log_index;
      f.last_log_term = a.last_log_term;
      f.disrupt_leader = a.disrupt_leader;
      f.pre_vote = a.pre_vote;
      break;
    }
    case RAFT_REQUEST_VOTE_RESULT: {
      const auto& a = m.request_vote_result;
      f.version = a.version;
      f.term = a.term;
      f.vote_granted = a.vote_granted;
      f.pre_vote = a.pre_vote;
      f.features = a.features;
      f.capacity = a.capacity;
      break;
    }
    case RAFT_APPEND_ENTRIES: {
      // libraft leaves the entries to us: they come from our log.
      const auto& a = m.append_entries;
      f.version = a.version;
      f.term = a.term;
      f.prev_log_index = a.prev_log_index;
      f.prev_log_term = a.prev_log_term;
      f.leader_commit = a.leader_commit;
      for (unsigned i = 0; i < a.n_entries; ++i) {
        const log_entry* e = entry_at(a.prev_log_index + 1 + i);
        if (e == nullptr) {
          // Trimmed away: this follower needs a snapshot; send what precedes the gap.
          break;
        }
        f.entries.push_back({e->term, e->type, e->data});
      }
      break;
    }
    case RAFT_APPEND_ENTRIES_RESULT: {
      const auto& a = m.append_entries_result;
      f.version = a.version;
      f.term = a.term;
      f.rejected = a.rejected;
      f.last_log_index = a.last_log_index;
      f.features = a.features;
      f.capacity = a.capacity;
      break;
    }
    case RAFT_TIMEOUT_NOW: {
      const auto& a = m.timeout_now;
      f.version = a.version;
      f.term = a.term;
      f.last_log_index = a.last_log_index;
      f.last_log_term = a.last_log_term;
      break;
    }
    case RAFT_INSTALL_SNAPSHOT:
      break;  // never here: offer_snapshot() hands it to the host
  }
  return encode_raft(f);
}

replica_status replica::status() const {
  replica_status s;
  s.id = options_.id;
  ::raft* r = raft_.get();
  s.current = started_ && !failed_ ? role_of(raft_state(r)) : role::unavailable;
  raft_id leader = 0;
  const char* address = nullptr;
  raft_leader(r, &leader, &address);
  s.leader_id = leader;
  s.term = raft_current_term(r);
  s.commit_index = raft_commit_index(r);
  s.applied_index = applied_;
  s.last_index = started_ ? raft_last_index(r) : 0;
  const bool leading = s.current == role::leader;
  for (unsigned i = 0; i < r->configuration.n; ++i) {
    const auto& srv = r->configuration.servers[i];
    s.configuration.push_back({srv.id, srv.address});
    if (srv.role == RAFT_VOTER) s.voters.push_back(srv.id);
    raft_index match = 0;
    if (leading && srv.id != options_.id && raft_match_index(r, srv.id, &match) == 0)
      s.progress.push_back({srv.id, match});
  }
  s.leader_commit = leading ? s.commit_index : std::max(leader_commit_, s.commit_index);
  if (leading) {
    s.transferee = raft_transferee(r);
    s.joining = joining_;
  }
  return s;
}

bool replica::is_leader() const { return started_ && !failed_ && raft_state(raft_.get()) == RAFT_LEADER; }

}  // namespace wharf::core::replication
