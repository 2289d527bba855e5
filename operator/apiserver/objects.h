#pragma once

// The admin API's objects as JSON: an instance as listings and watches show
// it, lists with their resourceVersion. Shared by admin_api.cc and watch.cc.

#include <boost/json/value.hpp>
#include <cstdint>
#include <string_view>

#include "operator/state/instance.h"

namespace mm::apiserver {

// state::ToJson plus kind, apiVersion and resourceVersion.
boost::json::value InstanceObject(const state::Instance& instance);
// {"apiVersion","kind","metadata":{"resourceVersion"},"items"}
boost::json::value ListObject(std::string_view kind, boost::json::array items, std::uint64_t resource_version);

}  // namespace mm::apiserver
