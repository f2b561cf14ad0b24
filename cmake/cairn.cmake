# Helpers every CMakeLists.txt in the tree uses.
#
#   cairn_library(<module> SOURCES ... [DEPS ...])
#       A static library `cairn_<module>` with server/ as its include root
#       (`#include "base/file.h"`), built with Cairn's warning flags.
#   cairn_test(<name> LABEL unit|integration|e2e SOURCES ... [DEPS ...] [TIMEOUT s])
#       A GoogleTest executable; every TEST in it becomes a ctest test with that label and timeout.
#   cairn_benchmark(<name> SOURCES ... [DEPS ...])
#       A Google Benchmark executable (not a test; docs/benchmarks.md gives the commands).

set(CAIRN_WARNINGS -Wall -Wextra -Wpedantic -Wno-missing-field-initializers)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  # g++ 12 reports false -Wrestrict positives on std::string concatenation at -O3 (GCC PR 105329).
  list(APPEND CAIRN_WARNINGS -Wno-restrict)
endif()
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CAIRN_SANITIZE)
  # With -fsanitize, g++ 12 reports false -Wmaybe-uninitialized positives when it inlines the move
  # of a std::variant holding std::string members (the sanitizer checks defeat its flow analysis).
  # The release build keeps the warning.
  list(APPEND CAIRN_WARNINGS -Wno-maybe-uninitialized)
endif()
if(CAIRN_WERROR)
  list(APPEND CAIRN_WARNINGS -Werror)
endif()

# Per-label ctest timeouts, in seconds, for one test. The label budgets of the design
# (unit 5 min, integration 10 min, e2e 25 min in all) are enforced by .ci/run.
set(CAIRN_TIMEOUT_unit 120)
set(CAIRN_TIMEOUT_integration 300)
set(CAIRN_TIMEOUT_e2e 600)

function(cairn_warnings target)
  target_compile_options(${target} PRIVATE ${CAIRN_WARNINGS})
  if(CAIRN_PLANTED_BUG)
    target_compile_definitions(${target} PRIVATE CAIRN_PLANTED_BUG_${CAIRN_PLANTED_BUG}=1)
  endif()
endfunction()

function(cairn_library module)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(cairn_${module} STATIC ${ARG_SOURCES})
  target_include_directories(cairn_${module} PUBLIC ${PROJECT_SOURCE_DIR}/server)
  target_link_libraries(cairn_${module} PUBLIC ${ARG_DEPS})
  cairn_warnings(cairn_${module})
endfunction()

function(cairn_test name)
  cmake_parse_arguments(ARG "" "LABEL;TIMEOUT" "SOURCES;DEPS" ${ARGN})
  if(NOT ARG_LABEL)
    message(FATAL_ERROR "cairn_test(${name}): LABEL unit|integration|e2e is required")
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT ${CAIRN_TIMEOUT_${ARG_LABEL}})
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/server)
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  cairn_warnings(${name})
  gtest_discover_tests(${name}
    DISCOVERY_MODE PRE_TEST
    PROPERTIES LABELS ${ARG_LABEL} TIMEOUT ${ARG_TIMEOUT}
    # Two properties, one value each: CMake 3.25's gtest_discover_tests splits a list-valued
    # ENVIRONMENT into separate arguments, which loses every variable after the first.
    ENVIRONMENT "CAIRN_TEST_SOURCE_DIR=${PROJECT_SOURCE_DIR}"
    ENVIRONMENT_MODIFICATION "CAIRN_TEST_BINARY_DIR=set:${PROJECT_BINARY_DIR}")
endfunction()

function(cairn_benchmark name)
  if(NOT CAIRN_BUILD_BENCHMARKS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/server)
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} benchmark::benchmark)
  cairn_warnings(${name})
endfunction()

# cairn_fuzz_target(<name> SOURCES ... [DEPS ...] CORPUS <dir>)
#   A libFuzzer target: SOURCES define `extern "C" int LLVMFuzzerTestOneInput(const uint8_t*,
#   size_t)`. With -DCAIRN_FUZZ=ON (the `fuzz` preset, clang-14) it is a libFuzzer binary
#   `<name>` (run it with the corpus dir as argument); the custom target `fuzzers` builds them
#   all. Otherwise it is a `unit` test `<name>_replay` that feeds every file of CORPUS to the
#   entry point, so the corpus keeps passing in every build.
if(CAIRN_FUZZ AND NOT TARGET fuzzers)
  add_custom_target(fuzzers)
endif()
function(cairn_fuzz_target name)
  cmake_parse_arguments(ARG "" "CORPUS" "SOURCES;DEPS" ${ARGN})
  if(CAIRN_FUZZ)
    add_executable(${name} ${ARG_SOURCES})
    target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/server)
    target_link_libraries(${name} PRIVATE ${ARG_DEPS})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
    cairn_warnings(${name})
    add_dependencies(fuzzers ${name})
  else()
    add_executable(${name}_replay ${ARG_SOURCES} ${PROJECT_SOURCE_DIR}/server/base/fuzz_replay_main.cc)
    target_include_directories(${name}_replay PRIVATE ${PROJECT_SOURCE_DIR}/server)
    target_link_libraries(${name}_replay PRIVATE ${ARG_DEPS})
    cairn_warnings(${name}_replay)
    add_test(NAME ${name}_replay COMMAND ${name}_replay ${ARG_CORPUS})
    set_tests_properties(${name}_replay PROPERTIES LABELS unit TIMEOUT ${CAIRN_TIMEOUT_unit})
  endif()
endfunction()
