// A growable receive buffer: bytes arrive at the tail, frames are consumed at
// the head, and the unread rest is moved to the front only when space runs out.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string_view>
#include <vector>

namespace shardgate::net {

class ReadBuffer {
 public:
  ReadBuffer() = default;

  std::string_view readable() const { return {data_.data() + head_, tail_ - head_}; }
  // The unread bytes, writable: a proxy patches a field in place before relaying.
  char* unread() { return data_.data() + head_; }
  std::size_t size() const { return tail_ - head_; }
  bool empty() const { return head_ == tail_; }
  void consume(std::size_t n) {
    head_ += n;
    if (head_ == tail_) head_ = tail_ = 0;
  }

  // Space to receive into, at least `min_free` bytes (the buffer grows if needed).
  char* prepare(std::size_t min_free) {
    if (data_.size() - tail_ < min_free) {
      if (head_ > 0) {
        std::memmove(data_.data(), data_.data() + head_, tail_ - head_);
        tail_ -= head_;
        head_ = 0;
      }
      // Geometric growth: a 16 MB message read in 16 KB steps must not be
      // copied a thousand times.
      if (data_.size() - tail_ < min_free)
        data_.resize(std::max(tail_ + min_free, data_.size() + data_.size() / 2));
    }
    return data_.data() + tail_;
  }
  std::size_t writable() const { return data_.size() - tail_; }
  void commit(std::size_t n) { tail_ += n; }

  // Gives memory back after a large message passed (idle clients stay small).
  // An idle client should cost little memory: drop the storage when empty.
  void release_if_empty() {
    if (empty() && !data_.empty()) std::vector<char>().swap(data_);
  }

 private:
  std::vector<char> data_;
  std::size_t head_ = 0;
  std::size_t tail_ = 0;
};

}  // namespace shardgate::net
