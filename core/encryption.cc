#include "core/encryption.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <limits>
#include <mutex>
#include <utility>

#include <fmt/format.h>

namespace wharf::core {
namespace {

constexpr unsigned char sealed_magic = 0xE5;
constexpr std::size_t nonce_bytes = 12;
constexpr std::size_t tag_bytes = 16;

// The store's own records, beside the sealed values (never sealed, hidden from scans):
//   !enc/key/<id>  a constant sealed with key <id>: proves a configured key is the right one
//   !enc/start     be32: how many times the store was opened encrypted (the nonce prefix)
constexpr std::string_view own_prefix = "!enc/";
constexpr std::string_view check_prefix = "!enc/key/";
constexpr std::string_view start_key = "!enc/start";
constexpr std::string_view check_plaintext = "wharf encryption key check";

bool is_own(std::string_view key) noexcept { return key.starts_with(own_prefix); }

const unsigned char* bytes_of(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }
unsigned char* bytes_of(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }

int length_of(std::size_t n) {
  if (n > static_cast<std::size_t>(std::numeric_limits<int>::max())) throw std::length_error("value too large to seal");
  return static_cast<int>(n);
}

struct sealed_parts {
  std::string_view id;
  std::string_view nonce;
  std::string_view ciphertext;
  std::string_view tag;
};

std::optional<sealed_parts> split(std::string_view sealed) noexcept {
  if (sealed.size() < 2 || static_cast<unsigned char>(sealed[0]) != sealed_magic) return std::nullopt;
  const std::size_t id_size = static_cast<unsigned char>(sealed[1]);
  if (sealed.size() < 2 + id_size + nonce_bytes + tag_bytes) return std::nullopt;
  sealed_parts p;
  p.id = sealed.substr(2, id_size);
  p.nonce = sealed.substr(2 + id_size, nonce_bytes);
  p.ciphertext = sealed.substr(2 + id_size + nonce_bytes, sealed.size() - 2 - id_size - nonce_bytes - tag_bytes);
  p.tag = sealed.substr(sealed.size() - tag_bytes);
  return p;
}

}  // namespace

// OpenSSL contexts with the key already set up (its AES key schedule made once), kept for
// reuse: a context per call cost more than sealing a small value itself. A context serves
// one call at a time; the pool hands one out per call.
class value_cipher::key_contexts {
 public:
  explicit key_contexts(std::string key) : key_(std::move(key)) {}
  ~key_contexts() {
    for (auto* pool : {&encrypting_, &decrypting_})
      for (EVP_CIPHER_CTX* ctx : *pool) EVP_CIPHER_CTX_free(ctx);
  }
  key_contexts(const key_contexts&) = delete;
  key_contexts& operator=(const key_contexts&) = delete;

  // Runs `use(ctx)` with a context prepared for `encrypt`ing (or decrypting) with this key;
  // the caller sets the nonce.
  template <class Use>
  bool with_context(bool encrypt, Use use) {
    EVP_CIPHER_CTX* ctx = take(encrypt);
    if (!ctx) return false;
    const bool ok = use(ctx);
    give_back(encrypt, ctx);
    return ok;
  }

 private:
  EVP_CIPHER_CTX* take(bool encrypt) {
    {
      const std::lock_guard lock(mu_);
      auto& pool = encrypt ? encrypting_ : decrypting_;
      if (!pool.empty()) {
        EVP_CIPHER_CTX* ctx = pool.back();
        pool.pop_back();
        return ctx;
      }
    }
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    const auto* key = reinterpret_cast<const unsigned char*>(key_.data());
    const bool ok = ctx && EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr, encrypt ? 1 : 0) == 1 &&
                    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, nonce_bytes, nullptr) == 1 &&
                    EVP_CipherInit_ex(ctx, nullptr, nullptr, key, nullptr, encrypt ? 1 : 0) == 1;
    if (!ok) {
      EVP_CIPHER_CTX_free(ctx);
      return nullptr;
    }
    return ctx;
  }
  void give_back(bool encrypt, EVP_CIPHER_CTX* ctx) {
    const std::lock_guard lock(mu_);
    (encrypt ? encrypting_ : decrypting_).push_back(ctx);
  }

  const std::string key_;
  std::mutex mu_;
  std::vector<EVP_CIPHER_CTX*> encrypting_;  // GUARDED_BY(mu_)
  std::vector<EVP_CIPHER_CTX*> decrypting_;  // GUARDED_BY(mu_)
};

value_cipher::value_cipher(const std::vector<encryption_key>& keys, std::string active) : active_(std::move(active)) {
  for (const auto& k : keys) {
    if (k.id.empty() || k.id.size() > 64 || k.bytes.size() != encryption_key_bytes ||
        !keys_.emplace(k.id, std::make_unique<key_contexts>(k.bytes)).second)
      throw std::invalid_argument("encryption keys: ids must be unique, 1..64 bytes, keys 32 bytes");
  }
  if (!has_key(active_)) throw std::invalid_argument("encryption: the active key is not among the keys");
}

value_cipher::~value_cipher() = default;

std::vector<std::string> value_cipher::key_ids() const {
  std::vector<std::string> ids;
  for (const auto& [id, key] : keys_) ids.push_back(id);
  return ids;
}

void value_cipher::set_start(std::uint32_t start) noexcept {
  for (std::size_t i = 0; i < nonce_prefix_.size(); ++i)
    nonce_prefix_[i] = static_cast<unsigned char>(start >> (8 * (nonce_prefix_.size() - 1 - i)));
}

std::string value_cipher::seal(std::string_view storage_key, std::string_view plaintext) {
  return seal(active_, storage_key, plaintext);
}

std::string value_cipher::seal(std::string_view id, std::string_view storage_key, std::string_view plaintext) {
  std::array<unsigned char, nonce_bytes> nonce{};
  std::memcpy(nonce.data(), nonce_prefix_.data(), nonce_prefix_.size());
  const std::uint64_t count = nonce_counter_.fetch_add(1, std::memory_order_relaxed);
  for (std::size_t i = 0; i < 8; ++i) nonce[4 + i] = static_cast<unsigned char>(count >> (8 * (7 - i)));

  std::string out;
  out.reserve(2 + id.size() + nonce_bytes + plaintext.size() + tag_bytes);
  out.push_back(static_cast<char>(sealed_magic));
  out.push_back(static_cast<char>(id.size()));
  out.append(id);
  out.append(reinterpret_cast<const char*>(nonce.data()), nonce.size());
  const std::size_t body = out.size();
  out.resize(body + plaintext.size() + tag_bytes);
  const bool ok = keys_.find(id)->second->with_context(true, [&](EVP_CIPHER_CTX* ctx) {
    int n = 0;
    return EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce.data()) == 1 &&
           EVP_EncryptUpdate(ctx, nullptr, &n, bytes_of(storage_key), length_of(storage_key.size())) == 1 &&
           EVP_EncryptUpdate(ctx, bytes_of(out) + body, &n, bytes_of(plaintext), length_of(plaintext.size())) == 1 &&
           EVP_EncryptFinal_ex(ctx, bytes_of(out) + body + n, &n) == 1 &&
           EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, tag_bytes, bytes_of(out) + body + plaintext.size()) == 1;
  });
  if (!ok) throw std::runtime_error("AES-256-GCM encryption failed (OpenSSL)");
  return out;
}

std::optional<std::string> value_cipher::open(std::string_view storage_key, std::string_view sealed) const {
  const auto p = split(sealed);
  if (!p) return std::nullopt;
  const auto key = keys_.find(p->id);
  if (key == keys_.end()) return std::nullopt;
  std::string out(p->ciphertext.size(), '\0');
  std::string tag(p->tag);
  const bool ok = key->second->with_context(false, [&](EVP_CIPHER_CTX* ctx) {
    int n = 0;
    return EVP_DecryptInit_ex(ctx, nullptr, nullptr, nullptr, bytes_of(p->nonce)) == 1 &&
           EVP_DecryptUpdate(ctx, nullptr, &n, bytes_of(storage_key), length_of(storage_key.size())) == 1 &&
           EVP_DecryptUpdate(ctx, bytes_of(out), &n, bytes_of(p->ciphertext), length_of(p->ciphertext.size())) == 1 &&
           EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, tag_bytes, bytes_of(tag)) == 1 &&
           EVP_DecryptFinal_ex(ctx, bytes_of(out) + n, &n) == 1;
  });
  if (!ok) return std::nullopt;
  return out;
}

std::optional<std::string_view> value_cipher::key_id_of(std::string_view sealed) noexcept {
  const auto p = split(sealed);
  if (!p) return std::nullopt;
  return p->id;
}

namespace {

[[noreturn]] void unreadable(std::string_view key) {
  throw encryption_error(fmt::format("storage: the value of a key of {} bytes (starting '{}') does not decrypt with the "
                                     "configured keys: it was changed on disk",
                                     key.size(), key.substr(0, std::min<std::size_t>(key.size(), 3))));
}

using visitor = std::function<bool(std::string_view key, std::string_view value)>;

// A value read under `key`, opened (absent stays absent).
std::optional<std::string> opened(const value_cipher& cipher, std::string_view key, std::optional<std::string> sealed) {
  if (!sealed) return sealed;
  auto plain = cipher.open(key, *sealed);
  if (!plain) unreadable(key);
  return plain;
}

// `visit` over opened values, the store's own records left out.
visitor opening(const value_cipher& cipher, const visitor& visit) {
  return [&cipher, &visit](std::string_view key, std::string_view value) {
    if (is_own(key)) return true;
    const auto plain = cipher.open(key, value);
    if (!plain) unreadable(key);
    return visit(key, *plain);
  };
}

class encrypted_view final : public storage_view {
 public:
  encrypted_view(std::unique_ptr<storage_view> inner, std::shared_ptr<value_cipher> cipher)
      : inner_(std::move(inner)), cipher_(std::move(cipher)) {}
  std::optional<std::string> get(std::string_view key) override { return opened(*cipher_, key, inner_->get(key)); }
  void scan_range(std::string_view begin, std::string_view end, const visitor& visit) override {
    inner_->scan_range(begin, end, opening(*cipher_, visit));
  }

 private:
  std::unique_ptr<storage_view> inner_;
  std::shared_ptr<value_cipher> cipher_;
};

class encrypted_import final : public range_import {
 public:
  encrypted_import(std::unique_ptr<range_import> inner, std::shared_ptr<value_cipher> cipher)
      : inner_(std::move(inner)), cipher_(std::move(cipher)) {}
  std::error_code add(std::string_view key, std::string_view value) override {
    return inner_->add(key, cipher_->seal(key, value));
  }
  std::error_code commit() override { return inner_->commit(); }

 private:
  std::unique_ptr<range_import> inner_;
  std::shared_ptr<value_cipher> cipher_;
};

class encrypted_storage final : public storage {
 public:
  encrypted_storage(std::unique_ptr<storage> inner, std::shared_ptr<value_cipher> cipher)
      : inner_(std::move(inner)), cipher_(std::move(cipher)) {}

  void write(write_batch batch, completion done, durability how) override {
    inner_->write(sealed(batch), std::move(done), how);
  }
  std::error_code write_sync(write_batch batch) override { return inner_->write_sync(sealed(batch)); }
  std::optional<std::string> get(std::string_view key) override { return opened(*cipher_, key, inner_->get(key)); }
  void scan_prefix(std::string_view prefix, const visitor& visit) override {
    inner_->scan_prefix(prefix, opening(*cipher_, visit));
  }
  void scan_range(std::string_view begin, std::string_view end, const visitor& visit) override {
    inner_->scan_range(begin, end, opening(*cipher_, visit));
  }
  std::unique_ptr<storage_view> view() override { return std::make_unique<encrypted_view>(inner_->view(), cipher_); }
  std::unique_ptr<range_import> import_range(std::string begin, std::string end) override {
    return std::make_unique<encrypted_import>(inner_->import_range(std::move(begin), std::move(end)), cipher_);
  }
  storage_stats stats() const override { return inner_->stats(); }
  void close() override { inner_->close(); }

 private:
  // The batch with every value sealed under its key; erases as they are.
  write_batch sealed(const write_batch& batch) {
    write_batch out;
    for (const auto& op : batch.ops()) {
      switch (op.what) {
        case write_batch::op::kind::put: out.put(op.key, cipher_->seal(op.key, op.value)); break;
        case write_batch::op::kind::erase: out.erase(op.key); break;
        case write_batch::op::kind::erase_range: out.erase_range(op.key, op.value); break;
      }
    }
    return out;
  }

  std::unique_ptr<storage> inner_;
  std::shared_ptr<value_cipher> cipher_;
};

}  // namespace

std::unique_ptr<storage> open_encrypted(std::unique_ptr<storage> inner, std::shared_ptr<value_cipher> cipher,
                                        std::map<std::string, std::uint64_t>* values_by_key) {
  // Every value: sealed, with a key the cipher has. One read of the store, headers only.
  std::map<std::string, std::uint64_t, std::less<>> counts;
  std::uint64_t plain = 0;
  inner->scan_prefix("", [&](std::string_view key, std::string_view value) {
    if (is_own(key)) return true;
    if (const auto id = value_cipher::key_id_of(value)) {
      auto it = counts.find(*id);
      if (it == counts.end()) it = counts.emplace(std::string(*id), 0).first;
      ++it->second;
    } else {
      ++plain;
    }
    return true;
  });
  if (plain > 0) {
    throw encryption_error(fmt::format(
        "encryption: the data directory holds {} values written without encryption; wharf does not encrypt a "
        "store in place (start it without the encryption section, or with an empty data_dir)", plain));
  }
  for (const auto& [id, n] : counts) {
    if (!cipher->has_key(id)) {
      throw encryption_error(fmt::format("encryption: {} values are encrypted with key '{}', which encryption.keys "
                                         "does not name (a key is retired only once no value uses it)", n, id));
    }
  }
  // Each configured key that sealed a check value must open it.
  write_batch own;
  std::vector<std::string> checked;
  inner->scan_prefix(check_prefix, [&](std::string_view key, std::string_view value) {
    const std::string id(key.substr(check_prefix.size()));
    if (!cipher->has_key(id)) {
      if (!counts.contains(id)) own.erase(key);  // a retired key: no value uses it any more
      return true;
    }
    if (cipher->open(key, value) != check_plaintext) {
      throw encryption_error(fmt::format("encryption: key '{}' is not the key this data directory was encrypted "
                                         "with (its check value does not decrypt)", id));
    }
    checked.push_back(id);
    return true;
  });
  for (const auto& [id, n] : counts) {
    if (std::find(checked.begin(), checked.end(), id) == checked.end()) {
      throw encryption_error(fmt::format("encryption: {} values use key '{}' but its check value is missing", n, id));
    }
  }
  // Accepted. This start's number makes the nonces of this run differ from every other's.
  std::uint32_t start = 1;
  if (const auto v = inner->get(start_key); v && v->size() == 4) {
    start = 0;
    for (const char c : *v) start = (start << 8) | static_cast<unsigned char>(c);
    ++start;
  }
  std::string start_value;
  append_be32(start_value, start);
  own.put(start_key, start_value);
  cipher->set_start(start);
  for (const auto& id : cipher->key_ids()) {
    if (std::find(checked.begin(), checked.end(), id) == checked.end()) {
      const std::string key = std::string(check_prefix) + id;
      own.put(key, cipher->seal(id, key, check_plaintext));
    }
  }
  if (const auto ec = inner->write_sync(std::move(own))) {
    throw encryption_error(fmt::format("encryption: cannot write the store's key records: {}", ec.message()));
  }
  if (values_by_key) values_by_key->insert(counts.begin(), counts.end());
  return std::make_unique<encrypted_storage>(std::move(inner), std::move(cipher));
}

bool holds_encrypted_values(storage& store) {
  bool found = false;
  store.scan_prefix(own_prefix, [&found](std::string_view, std::string_view) {
    found = true;
    return false;
  });
  return found;
}

}  // namespace wharf::core
