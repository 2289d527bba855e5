#pragma once

// The admin API's objects as JSON: an instance as listings and watches show
// it, lists with their resourceVersion. Shared by admin_api.cc and watch.cc.

#include <boost/json/value.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "operator/state/instance.h"

namespace mm::apiserver {

// An instance's listing shows at most this many client ids ("clients" has
// the count): a watch serializes the instance at every change, and a server
// of capacity 250,000 would otherwise cost a megabyte per allocation.
inline constexpr std::size_t kListedReservations = 1000;
// state::ToJson plus kind, apiVersion and resourceVersion.
boost::json::value InstanceObject(const state::Instance& instance);
// {"apiVersion","kind","metadata":{"resourceVersion"},"items"}
boost::json::value ListObject(std::string_view kind, boost::json::array items, std::uint64_t resource_version);

}  // namespace mm::apiserver
