#pragma once

// Instance <-> JSON, for the store and the admin API.

#include <boost/json/value.hpp>
#include <cstddef>
#include <optional>

#include "operator/state/instance.h"

namespace mm::state {

// `with_reservations` false: the store keeps reservations as keys of their
// own. True: "clients" (how many hold a slot) and "reservations", the first
// `max_reservations` client ids in order with their match metadata.
boost::json::value ToJson(const Instance& i, bool with_reservations = true,
                          std::size_t max_reservations = static_cast<std::size_t>(-1));
// nullopt when `v` is not an instance record.
std::optional<Instance> InstanceFromJson(const boost::json::value& v);

}  // namespace mm::state
