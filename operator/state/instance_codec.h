#pragma once

// Instance <-> JSON, for the store and the admin API.

#include <boost/json/value.hpp>
#include <optional>

#include "operator/state/instance.h"

namespace mm::state {

// `with_reservations` false: the store keeps reservations as keys of their own.
boost::json::value ToJson(const Instance& i, bool with_reservations = true);
// nullopt when `v` is not an instance record.
std::optional<Instance> InstanceFromJson(const boost::json::value& v);

}  // namespace mm::state
