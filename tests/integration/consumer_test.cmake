# Drives Packaging.OutOfTreePluginBuildsLoadsAndRuns (see CMakeLists.txt).
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

function(expect_contains text needle)
  string(FIND "${text}" "${needle}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "expected output to contain '${needle}', got:\n${text}")
  endif()
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
run(${CMAKE_COMMAND} --install ${TROUPE_BUILD_DIR} --prefix ${prefix})
run(${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR} -B ${WORK_DIR}/build -G ${GENERATOR}
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release)
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
message(STATUS "out-of-tree plugin built against the installed package, inspected and called")
