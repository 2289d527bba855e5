#include "api/v1alpha1/types.h"

namespace mm::api {

std::string FieldError::ToString() const {
  std::string out;
  if (!source.empty()) {
    out += source;
    if (line > 0) out.append(":").append(std::to_string(line));  // not ":" + ...: GCC 12's false -Wrestrict
    out += ": ";
  }
  if (!path.empty()) out += path + ": ";
  out += message;
  return out;
}

}  // namespace mm::api
