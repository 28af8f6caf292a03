#include "envelope.h"

#include <charconv>

namespace gossip_bench {
namespace {

class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}

  bool at_end() const { return i_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[i_]; }
  void skip_ws() {
    while (!at_end() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r' || s_[i_] == '\n')) ++i_;
  }
  bool eat(char c) {
    skip_ws();
    if (peek() != c) return false;
    ++i_;
    return true;
  }
  // At an opening quote: the string's raw contents, the scanner past its closing quote.
  std::optional<std::string_view> string() {
    if (peek() != '"') return std::nullopt;
    std::size_t start = ++i_;
    while (!at_end() && s_[i_] != '"') i_ += s_[i_] == '\\' ? 2 : 1;
    if (at_end()) return std::nullopt;
    return s_.substr(start, i_++ - start);
  }
  // Skips one value of any kind (not validated beyond its nesting and strings).
  bool skip_value() {
    skip_ws();
    int depth = 0;
    do {
      if (at_end()) return false;
      char c = s_[i_];
      if (c == '"') {
        if (!string()) return false;
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') {
        if (depth == 0) return true;  // the end of the enclosing object
        --depth;
      }
      if (c == ',' && depth == 0) return true;
      ++i_;
    } while (depth > 0 || (peek() != ',' && peek() != '}'));
    return true;
  }

 private:
  std::string_view s_;
  std::size_t i_ = 0;
};

}  // namespace

namespace {

// The string member `name` of the object starting at the scanner, or nullopt. With `inner`,
// the string member `inner` of the object member `name` instead.
std::optional<std::string_view> object_string(Scanner& sc, std::string_view name,
                                              std::string_view inner = {}) {
  if (!sc.eat('{')) return std::nullopt;
  if (sc.eat('}')) return std::nullopt;
  do {
    sc.skip_ws();
    auto key = sc.string();
    if (!key || !sc.eat(':')) return std::nullopt;
    sc.skip_ws();
    if (*key == name) {
      if (!inner.empty()) return object_string(sc, inner);
      return sc.peek() == '"' ? sc.string() : std::nullopt;
    }
    if (!sc.skip_value()) return std::nullopt;
  } while (sc.eat(','));
  return std::nullopt;
}

}  // namespace

std::optional<std::string_view> top_level_string(std::string_view line, std::string_view name) {
  Scanner sc(line);
  return object_string(sc, name);
}

std::optional<std::string_view> body_type(std::string_view line) {
  Scanner sc(line);
  return object_string(sc, "body", "type");
}

int node_number(std::string_view id) {
  if (id.size() < 2 || id[0] != 'n') return 0;
  int n = 0;
  auto [end, ec] = std::from_chars(id.data() + 1, id.data() + id.size(), n);
  if (ec != std::errc() || end != id.data() + id.size() || n < 1) return 0;
  return n;
}

}  // namespace gossip_bench
