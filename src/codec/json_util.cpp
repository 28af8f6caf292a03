#include "codec/json_util.h"

#include <rapidjson/document.h>

namespace gossip_kv::json {

bool values_equal(std::string_view a, std::string_view b) {
  rapidjson::Document da;
  rapidjson::Document db;
  da.Parse(a.data(), a.size());
  db.Parse(b.data(), b.size());
  if (da.HasParseError() || db.HasParseError()) return false;
  return da == db;
}

}  // namespace gossip_kv::json
