#include "operator/apiserver/objects.h"

#include <boost/json.hpp>
#include <string>

#include "api/v1alpha1/types.h"
#include "operator/state/instance_codec.h"

namespace mm::apiserver {
namespace json = boost::json;

json::value InstanceObject(const state::Instance& instance) {
  json::value v = state::ToJson(instance, /*with_reservations=*/true, kListedReservations);
  auto& o = v.as_object();
  o["apiVersion"] = api::kApiVersion;
  o["kind"] = "Instance";
  o["resourceVersion"] = std::to_string(instance.resource_version);
  return v;
}

json::value ListObject(std::string_view kind, json::array items, std::uint64_t resource_version) {
  return json::object{{"apiVersion", api::kApiVersion},
                      {"kind", kind},
                      {"metadata", json::object{{"resourceVersion", std::to_string(resource_version)}}},
                      {"items", std::move(items)}};
}

}  // namespace mm::apiserver
