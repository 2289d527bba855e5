# MM_MALLOC: the allocator of everything that links mm::store (matchmakerd,
# and with it the tests and benches). jemalloc, Debian's libjemalloc-dev:
# with it matchmakerd runs about 10% fewer instructions per allocation than
# with glibc's malloc and holds about 20% less memory per reservation
# (docs/benchmarks.md, "Throughput per core"). Builds with sanitizers,
# fuzzing or MM_STATIC keep the system allocator: the sanitizers bring
# their own.
set(MM_MALLOC "jemalloc" CACHE STRING "Allocator: jemalloc or system")
set_property(CACHE MM_MALLOC PROPERTY STRINGS jemalloc system)
add_library(mm_malloc INTERFACE)
if(NOT MM_MALLOC MATCHES "^(jemalloc|system)$")
  message(FATAL_ERROR "MM_MALLOC: '${MM_MALLOC}' is neither jemalloc nor system")
elseif(MM_MALLOC STREQUAL "jemalloc" AND (MM_SANITIZE OR MM_FUZZ OR MM_STATIC))
  message(STATUS "MM_MALLOC: the system allocator (sanitizers, fuzzing and static builds)")
elseif(MM_MALLOC STREQUAL "jemalloc")
  find_library(JEMALLOC_LIBRARY jemalloc)
  find_path(JEMALLOC_INCLUDE_DIR jemalloc/jemalloc.h)
  if(NOT JEMALLOC_LIBRARY OR NOT JEMALLOC_INCLUDE_DIR)
    message(FATAL_ERROR "MM_MALLOC=jemalloc: libjemalloc-dev is missing "
      "(hack/install-deps.sh installs it), or configure with -DMM_MALLOC=system")
  endif()
  target_include_directories(mm_malloc INTERFACE ${JEMALLOC_INCLUDE_DIR})
  target_link_libraries(mm_malloc INTERFACE ${JEMALLOC_LIBRARY})
  target_compile_definitions(mm_malloc INTERFACE MM_JEMALLOC)
endif()
