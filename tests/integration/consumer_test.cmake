# Drives the Packaging tests (see CMakeLists.txt): installs the build into a
# scratch prefix, then MODE=plugin builds, inspects and calls a third-party
# plugin, and MODE=host builds and runs a host application.
include(${CMAKE_CURRENT_LIST_DIR}/script_helpers.cmake)

# Configures a project that must fail to configure; keeps its output.
function(configure_expecting_failure source build)
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${source} -B ${build} -G ${GENERATOR} ${ARGN}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(rc EQUAL 0)
    message(FATAL_ERROR "configuring ${source} succeeded where it must fail: ${ARGN}\n${out}")
  endif()
  set(last_output "${out}${err}" PARENT_SCOPE)
endfunction()

# A plugin author needs the SDK alone: the plugin project configures and
# builds with TBB hidden from find_package.
function(check_plugin prefix)
  run(${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR} -B ${WORK_DIR}/build -G ${GENERATOR}
      -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release -DCMAKE_DISABLE_FIND_PACKAGE_TBB=ON)
  run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)

  set(plugin ${WORK_DIR}/build/libgeometry.so)
  if(NOT EXISTS ${plugin})
    message(FATAL_ERROR "troupe_add_plugin(geometry) did not produce ${plugin}")
  endif()
  set(troupe ${prefix}/bin/troupe)

  run(${troupe} inspect ${plugin})
  expect_contains("${last_output}" "plugin geometry 2.1.0")
  expect_contains("${last_output}" "geometry.distance(a: geometry::Point, b: geometry::Point) -> float")

  run(${troupe} call ${plugin} distance "{\"x\":0,\"y\":0}" "{\"x\":3,\"y\":4}")
  expect_contains("${last_output}" "5.0")

  run(${troupe} call ${plugin} geometry.midpoint "{\"x\":0,\"y\":0}" --kw "b={\"x\":2,\"y\":4}")
  expect_contains("${last_output}" "{\"x\":1.0,\"y\":2.0}")

  # COMPONENTS sdk never looks for TBB nor defines the engine; an unknown
  # optional component is just not found.
  set(probe ${WORK_DIR}/sdk-only)
  file(WRITE ${probe}/CMakeLists.txt [=[
cmake_minimum_required(VERSION 3.25)
project(sdk_only LANGUAGES CXX)
find_package(troupe 0.1 REQUIRED COMPONENTS sdk OPTIONAL_COMPONENTS gpu)
if(DEFINED TBB_FOUND OR TARGET troupe::engine OR NOT TARGET troupe::sdk OR troupe_gpu_FOUND)
  message(FATAL_ERROR "COMPONENTS sdk: TBB_FOUND='${TBB_FOUND}', troupe_gpu_FOUND='${troupe_gpu_FOUND}'")
endif()
]=])
  run(${CMAKE_COMMAND} -S ${probe} -B ${probe}/build -G ${GENERATOR} -DCMAKE_PREFIX_PATH=${prefix})
  message(STATUS "out-of-tree plugin built against the installed SDK alone, inspected and called")
endfunction()

# A host application: the embedding example built out of tree against
# troupe::engine (with this build's compiler and sanitizer flags, since
# libtroupe has them). Asking for the engine without oneTBB, or for a
# component that does not exist, fails at configure time with the reason.
function(check_host prefix)
  set(host_args -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release -DEMBED_SOURCE=${EMBED_SOURCE}
                -DCMAKE_CXX_COMPILER=${CXX_COMPILER} "-DCMAKE_CXX_FLAGS=${HOST_CXX_FLAGS}")
  run(${CMAKE_COMMAND} -S ${HOST_SOURCE_DIR} -B ${WORK_DIR}/host -G ${GENERATOR} ${host_args})
  run(${CMAKE_COMMAND} --build ${WORK_DIR}/host)
  run(${WORK_DIR}/host/embed_host ${prefix}/lib/troupe/plugins/libtroupe_text.so ${DOCS})
  expect_contains("${last_output}" "{\"key\":\"d2\",\"ok\":true,\"value\":3}")

  configure_expecting_failure(${HOST_SOURCE_DIR} ${WORK_DIR}/host-no-tbb ${host_args}
                              -DCMAKE_DISABLE_FIND_PACKAGE_TBB=ON)
  expect_contains("${last_output}" "troupe::engine needs oneTBB (Debian: libtbb-dev)")
  configure_expecting_failure(${HOST_SOURCE_DIR} ${WORK_DIR}/host-bad-component ${host_args} -DTROUPE_COMPONENTS=gpu)
  expect_contains("${last_output}" "troupe has no component 'gpu' (it has: sdk, engine, config, mpi)")
  message(STATUS "host application built against troupe::engine and run; missing TBB and unknown components refused")
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
run(${CMAKE_COMMAND} --install ${TROUPE_BUILD_DIR} --prefix ${prefix})
if(MODE STREQUAL "plugin")
  check_plugin(${prefix})
elseif(MODE STREQUAL "host")
  check_host(${prefix})
else()
  message(FATAL_ERROR "MODE must be plugin or host, not '${MODE}'")
endif()
