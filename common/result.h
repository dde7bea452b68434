// Errors on the data path are values. Result<T> is boost::system::result with
// a plain message as its error: cheap to move, and the caller decides how to
// present it (SQLSTATE, MySQL errno, log line).
#pragma once

#include <boost/system/result.hpp>
#include <string>
#include <utility>

namespace shardgate {

class Error {
 public:
  Error() = default;
  const std::string& message() const { return message_; }

 private:
  // Built only through make_error(), so that Result<std::string> can never
  // mistake a string value for an error (boost::system::result requires it).
  explicit Error(std::string m) : message_(std::move(m)) {}
  friend Error make_error(std::string message);
  std::string message_;
};

inline Error make_error(std::string message) { return Error(std::move(message)); }

template <class T>
using Result = boost::system::result<T, Error>;

}  // namespace shardgate
