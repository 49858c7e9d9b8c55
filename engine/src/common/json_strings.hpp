// Scanning JSON text a character at a time without parsing it: which
// characters belong to a string literal, so that a scan for brackets or
// numbers skips whatever strings hold (escaped quotes included).
#pragma once

namespace troupe::detail {

class JsonStringTracker {
 public:
  // True when `c`, the next character of the text, is part of a string
  // literal (its quotes included).
  bool in_string(char c) noexcept {
    if (inside_) {
      if (escaped_) {
        escaped_ = false;
      } else if (c == '\\') {
        escaped_ = true;
      } else if (c == '"') {
        inside_ = false;
      }
      return true;
    }
    inside_ = c == '"';
    return inside_;
  }

 private:
  bool inside_ = false;
  bool escaped_ = false;
};

}  // namespace troupe::detail
