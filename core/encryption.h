// Encryption at rest: every value written to the store sealed with AES-256-GCM (OpenSSL's
// EVP interface), as a decorator of `storage` (docs/ARCHITECTURE.md, "Encryption at rest").
//
// Sealed value:  0xE5 | u8 key id length | key id | 12-byte nonce | ciphertext | 16-byte tag
//
// The additional authenticated data is the value's storage key, so a value cannot be moved
// to another key unnoticed. Nonces are unique per key: 4 random bytes drawn when the cipher
// is made (each start) and a 64-bit counter. Each value names its key id, so a new key can
// become the active one (new values) while the older keys still open what they sealed.
// RocksDB keys are not encrypted (they hold names and numbers, never a message body).
//
// Threading: value_cipher and the decorated storage are thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/storage.h"

namespace wharf::core {

inline constexpr std::size_t encryption_key_bytes = 32;

struct encryption_key {
  std::string id;     // 1..64 bytes
  std::string bytes;  // encryption_key_bytes
};

class value_cipher {
 public:
  // REQUIRES: ids unique, every key encryption_key_bytes long, `active` one of the ids.
  value_cipher(const std::vector<encryption_key>& keys, std::string active);
  ~value_cipher();
  value_cipher(const value_cipher&) = delete;
  value_cipher& operator=(const value_cipher&) = delete;

  // The sealed form of `plaintext` stored under `storage_key`, with the active key (or the
  // key `id`, which the cipher has).
  [[nodiscard]] std::string seal(std::string_view storage_key, std::string_view plaintext);
  [[nodiscard]] std::string seal(std::string_view id, std::string_view storage_key, std::string_view plaintext);
  // The plaintext, or nullopt when `sealed` is not a sealed value, names a key this cipher
  // lacks, or fails authentication (another key of that id, a changed byte, another key).
  [[nodiscard]] std::optional<std::string> open(std::string_view storage_key, std::string_view sealed) const;
  // The key id a sealed value names (nullopt: not a sealed value). Reads only the header.
  [[nodiscard]] static std::optional<std::string_view> key_id_of(std::string_view sealed) noexcept;

  [[nodiscard]] const std::string& active() const noexcept { return active_; }
  [[nodiscard]] bool has_key(std::string_view id) const { return keys_.find(id) != keys_.end(); }
  [[nodiscard]] std::vector<std::string> key_ids() const;
  // The first 4 bytes of every nonce from now on: a number no earlier run used with these
  // keys (open_encrypted counts the starts in the store). Call before sealing.
  void set_start(std::uint32_t start) noexcept;

 private:
  class key_contexts;  // the key and OpenSSL contexts prepared with it (encryption.cc)
  std::map<std::string, std::unique_ptr<key_contexts>, std::less<>> keys_;
  std::string active_;
  std::array<unsigned char, 4> nonce_prefix_{};
  std::atomic<std::uint64_t> nonce_counter_{0};
};

// Why an encrypted store cannot be opened: a key missing or wrong, values written without
// encryption. Nothing was written when it is thrown.
class encryption_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Opens the store through `cipher`: checks, before writing anything, that every value is
// sealed with a key the cipher has (counted per key id in `values_by_key`), and that the
// cipher's key of each id is the one the store's check value was sealed with; then writes
// the check values of keys that lack one. Throws encryption_error otherwise. A store that
// is empty, or was always opened through a cipher, passes.
[[nodiscard]] std::unique_ptr<storage> open_encrypted(std::unique_ptr<storage> inner, std::shared_ptr<value_cipher> cipher,
                                                      std::map<std::string, std::uint64_t>* values_by_key = nullptr);

// Whether a store opened without encryption holds sealed values (it was encrypted): such a
// store must not be opened in the clear. Reads the check values only.
[[nodiscard]] bool holds_encrypted_values(storage& store);

}  // namespace wharf::core
