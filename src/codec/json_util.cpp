#include "codec/json_util.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace gossip_kv::json {

bool values_equal(std::string_view a, std::string_view b) {
  rapidjson::Document da;
  rapidjson::Document db;
  da.Parse(a.data(), a.size());
  db.Parse(b.data(), b.size());
  if (da.HasParseError() || db.HasParseError()) return false;
  return da == db;
}

void append_quoted(std::string_view s, std::string& out) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  out.append(buf.GetString(), buf.GetSize());
}

}  // namespace gossip_kv::json
