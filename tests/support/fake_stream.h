// An in-memory net::stream for driving broker connections without sockets: bytes go in
// through feed(), everything the connection writes is kept in output(). Used by the
// connection unit tests and the connection fuzzer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "net/stream.h"

namespace wharf::test {

class fake_stream final : public net::stream {
 public:
  void write(std::vector<std::uint8_t> bytes) override { output_.insert(output_.end(), bytes.begin(), bytes.end()); }
  void write_shared(std::shared_ptr<const std::vector<std::uint8_t>> bytes) override {
    output_.insert(output_.end(), bytes->begin(), bytes->end());
  }
  void close() override { closed_ = true; }
  void set_reading(bool) override {}
  [[nodiscard]] std::size_t queued_output_bytes() const noexcept override { return 0; }
  [[nodiscard]] const net::peer_info& peer() const noexcept override { return peer_; }
  void set_handler(std::unique_ptr<net::stream_handler> handler) override { handler_ = std::move(handler); }

  // Delivers bytes as a transport would, unless the connection has closed itself.
  void feed(std::span<const std::uint8_t> bytes) {
    if (!closed_ && handler_) handler_->on_data(bytes);
  }
  // The transport's last call (peer gone, or after close()); then the handler is destroyed.
  void finish() {
    if (handler_) handler_->on_closed({});
    handler_.reset();
  }
  [[nodiscard]] bool closed() const noexcept { return closed_; }
  [[nodiscard]] std::vector<std::uint8_t>& output() noexcept { return output_; }

 private:
  net::peer_info peer_{"127.0.0.1", 1, 0, false, false, std::nullopt, {}};
  std::unique_ptr<net::stream_handler> handler_;
  std::vector<std::uint8_t> output_;
  bool closed_ = false;
};

}  // namespace wharf::test
