// The router's view of a node's output line: only its top-level `dest`, found without building
// a document, so that routing costs little however large a gossip message's body is.
#pragma once

#include <optional>
#include <string_view>

namespace gossip_bench {

// The raw text (escapes left as they are) of the string member `name` at the top level of the
// JSON object `line`, or nullopt when the line is not an object or has no such string member.
// Members may come in any order and nested values are skipped, whatever they hold.
std::optional<std::string_view> top_level_string(std::string_view line, std::string_view name);
// The `type` of a message's top-level `body` object, if it is a string.
std::optional<std::string_view> body_type(std::string_view line);

// The node number of an id "n<digits>" (1-based), or 0 when id is not of that form.
int node_number(std::string_view id);

}  // namespace gossip_bench
