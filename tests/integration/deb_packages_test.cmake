# Drives the Packaging.Deb* tests (see CMakeLists.txt).
#   STEP=build    cpack -G DEB from this build, lintian (no errors), dpkg-deb -x
#                 of the three packages into ROOT
#   STEP=cmake    the installed examples (a host and a plugin) built with CMake
#                 against ROOT alone, and run, with ROOT's troupe command
#   STEP=pkgconfig the same sources built with pkg-config and a compiler alone
include(${CMAKE_CURRENT_LIST_DIR}/script_helpers.cmake)

set(usr ${ROOT}/usr)
set(packages libtroupe0 libtroupe-dev troupe)

# What a user of the packages runs: the host on the bundled text plugin, and
# the troupe command on the plugin just built, in-process and in a worker
# process (troupe-worker from the package).
function(check_built host plugin)
  run(${host} ${usr}/lib/troupe/plugins/libtroupe_text.so ${usr}/share/troupe/examples/data/docs.jsonl)
  expect_contains("${last_output}" "{\"key\":\"d2\",\"ok\":true,\"value\":3}")
  run(${usr}/bin/troupe inspect ${plugin})
  expect_contains("${last_output}" "plugin wordstats 1.0.0")
  run(${usr}/bin/troupe call ${plugin} words "{\"id\":\"d\",\"text\":\"to be or not to be\"}")
  expect_contains("${last_output}" "6")
  run(${usr}/bin/troupe call --isolated ${plugin} wordstats.top "{\"id\":\"d\",\"text\":\"to be or not to be\"}"
      --kw n=1)
  expect_contains("${last_output}" "[[\"be\",2]]")
endfunction()

if(STEP STREQUAL "build")
  file(REMOVE_RECURSE ${WORK_DIR})
  run(${CPACK_COMMAND} -G DEB --config ${TROUPE_BUILD_DIR}/CPackConfig.cmake -B ${WORK_DIR}/out)
  foreach(package IN LISTS packages)
    file(GLOB deb ${WORK_DIR}/out/${package}_*.deb)
    if(NOT deb)
      message(FATAL_ERROR "cpack made no ${package} package in ${WORK_DIR}/out")
    endif()
    run(dpkg-deb -x ${deb} ${ROOT})
    list(APPEND debs ${deb})
  endforeach()
  find_program(LINTIAN lintian)
  if(LINTIAN)
    execute_process(COMMAND ${LINTIAN} --fail-on error ${debs} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                    ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "lintian reports errors:\n${out}\n${err}")
    endif()
  else()
    message(STATUS "lintian is not installed: packages not linted")
  endif()
  run(dpkg-deb -f ${WORK_DIR}/out/troupe_${VERSION}_amd64.deb Depends)
  expect_contains("${last_output}" "libtroupe0 (= ${VERSION})")
elseif(STEP STREQUAL "cmake")
  file(REMOVE_RECURSE ${WORK_DIR}/cmake)
  run(${CMAKE_COMMAND} -S ${usr}/share/troupe/examples -B ${WORK_DIR}/cmake -G ${GENERATOR}
      -DCMAKE_PREFIX_PATH=${usr} -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
      "-DCMAKE_CXX_FLAGS=${HOST_CXX_FLAGS}")
  run(${CMAKE_COMMAND} --build ${WORK_DIR}/cmake)
  check_built(${WORK_DIR}/cmake/embed/embed_host ${WORK_DIR}/cmake/plugin/libwordstats.so)
elseif(STEP STREQUAL "pkgconfig")
  set(out ${WORK_DIR}/pkgconfig)
  file(REMOVE_RECURSE ${out})
  file(MAKE_DIRECTORY ${out})
  set(ENV{PKG_CONFIG_PATH} ${usr}/${LIBDIR}/pkgconfig)
  run(pkg-config --cflags troupe-sdk)
  separate_arguments(sdk_flags UNIX_COMMAND "${last_output}")
  run(pkg-config --cflags --libs troupe)
  separate_arguments(engine_flags UNIX_COMMAND "${last_output}")
  separate_arguments(host_flags UNIX_COMMAND "${HOST_CXX_FLAGS}")
  set(examples ${usr}/share/troupe/examples)
  run(${CXX_COMPILER} -std=c++20 -O1 -fPIC -fvisibility=hidden -fvisibility-inlines-hidden -shared ${sdk_flags}
      ${examples}/plugin/wordstats_plugin.cpp -o ${out}/libwordstats.so)
  run(${CXX_COMPILER} -std=c++20 -O1 ${host_flags} ${examples}/embed/embed_host.cpp ${engine_flags}
      -Wl,-rpath,${usr}/${LIBDIR} -o ${out}/embed_host)
  check_built(${out}/embed_host ${out}/libwordstats.so)
else()
  message(FATAL_ERROR "STEP must be build, cmake or pkgconfig, not '${STEP}'")
endif()
