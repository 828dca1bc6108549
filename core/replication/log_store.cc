#include "core/replication/log_store.h"

#include <stdexcept>

#include <fmt/format.h>

#include "core/binary.h"

namespace wharf::core::replication {
namespace {

using binary::reader;
using binary::writer;

constexpr std::uint8_t entry_format = 1;
constexpr std::uint8_t meta_format = 1;
constexpr char term_suffix = 't';
constexpr char snapshot_suffix = 's';

std::string with_group(std::string_view prefix, std::uint32_t group) {
  std::string key(prefix);
  append_be32(key, group);
  return key;
}

}  // namespace

std::string encode_entry(const log_entry& e) {
  writer w;
  w.u8(entry_format);
  w.varint(e.term);
  w.u8(e.type);
  w.bytes(e.data);
  return w.take();
}

std::optional<log_entry> decode_entry(std::string_view bytes) {
  reader r(bytes);
  if (r.u8() != entry_format) return std::nullopt;
  log_entry e;
  e.term = r.varint();
  e.type = r.u8();
  e.data = r.bytes();
  if (!r.done() || e.term == 0 || e.type < 1 || e.type > 3) return std::nullopt;
  return e;
}

log_store::log_store(std::uint32_t group)
    : entry_prefix_(with_group("gl/", group)), meta_prefix_(with_group("gm/", group)) {}

std::string log_store::entry_key(std::uint64_t index) const {
  std::string key = entry_prefix_;
  append_be64(key, index);
  return key;
}

void log_store::put_term_and_vote(write_batch& batch, std::uint64_t term, std::uint64_t voted_for) const {
  writer w;
  w.u8(meta_format);
  w.varint(term);
  w.varint(voted_for);
  batch.put(meta_prefix_ + term_suffix, w.take());
}

void log_store::put_entry(write_batch& batch, std::uint64_t index, const log_entry& entry) const {
  batch.put(entry_key(index), encode_entry(entry));
}

void log_store::erase_from(write_batch& batch, std::uint64_t index) const {
  // A 9-byte suffix sorts after every 8-byte index.
  batch.erase_range(entry_key(index), entry_prefix_ + std::string(9, '\xff'));
}

void log_store::erase_through(write_batch& batch, std::uint64_t index) const {
  batch.erase_range(entry_key(0), entry_key(index + 1));
}

void log_store::put_snapshot(write_batch& batch, const snapshot_meta& meta) const {
  writer w;
  w.u8(meta_format);
  w.varint(meta.index);
  w.varint(meta.term);
  w.bytes(meta.configuration);
  w.varint(meta.configuration_index);
  batch.put(meta_prefix_ + snapshot_suffix, w.take());
}

std::optional<log_entry> log_store::read(storage& store, std::uint64_t index) const {
  const auto value = store.get(entry_key(index));
  if (!value) return std::nullopt;
  return decode_entry(*value);
}

persisted_state log_store::load(storage& store) const {
  persisted_state state;
  if (const auto value = store.get(meta_prefix_ + term_suffix)) {
    reader r(*value);
    const bool format_ok = r.u8() == meta_format;
    state.term = r.varint();
    state.voted_for = r.varint();
    if (!format_ok || !r.done()) throw std::runtime_error("replication: the stored term and vote do not decode");
  }
  if (const auto value = store.get(meta_prefix_ + snapshot_suffix)) {
    reader r(*value);
    const bool format_ok = r.u8() == meta_format;
    snapshot_meta meta;
    meta.index = r.varint();
    meta.term = r.varint();
    meta.configuration = r.bytes();
    meta.configuration_index = r.varint();
    if (!format_ok || !r.done()) throw std::runtime_error("replication: the stored snapshot metadata does not decode");
    state.snapshot = std::move(meta);
  }
  std::optional<std::uint64_t> first;
  std::uint64_t expected = 0;
  store.scan_prefix(entry_prefix_, [&](std::string_view key, std::string_view value) {
    const std::uint64_t index = read_be64(key.substr(entry_prefix_.size()));
    auto entry = decode_entry(value);
    if (!entry) throw std::runtime_error(fmt::format("replication: log entry {} does not decode", index));
    if (first && index != expected)
      throw std::runtime_error(fmt::format("replication: the log jumps from entry {} to {}", expected - 1, index));
    if (!first) first = index;
    expected = index + 1;
    state.entries.push_back(std::move(*entry));
    return true;
  });
  // Without entries, the log starts after the snapshot (or at 1).
  state.start_index = first.value_or(state.snapshot ? state.snapshot->index + 1 : 1);
  return state;
}

}  // namespace wharf::core::replication
