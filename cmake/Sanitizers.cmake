# MM_SANITIZE="address;undefined" instruments every target.
foreach(san IN LISTS MM_SANITIZE)
  if(NOT san MATCHES "^(address|undefined|thread|leak)$")
    message(FATAL_ERROR "MM_SANITIZE: unknown sanitizer '${san}'")
  endif()
  add_compile_options(-fsanitize=${san} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${san})
endforeach()
if("undefined" IN_LIST MM_SANITIZE)
  add_compile_options(-fno-sanitize-recover=undefined)
endif()

# MM_FUZZ: every library carries libFuzzer's coverage instrumentation; the
# fuzz targets link its runtime (fuzz/CMakeLists.txt).
if(MM_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "MM_FUZZ needs clang (CXX=clang++): libFuzzer is clang's")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
