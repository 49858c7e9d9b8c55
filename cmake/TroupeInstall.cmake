# Install rules and the CMake package: find_package(troupe) gives
# troupe::sdk and troupe_add_plugin() (component sdk), and troupe::engine and
# troupe::config (component engine, which needs oneTBB). Two export sets, so
# a plugin author's find_package works where TBB is not installed.
#
# Every rule names an install component, one per Debian package
# (cmake/TroupePackaging.cmake): runtime (libtroupe0: the engine library and
# troupe-worker), development (libtroupe-dev: headers, CMake and pkg-config
# files, examples) and cli (troupe: the command, the bundled plugins, the docs).
include(CMakePackageConfigHelpers)

set(TROUPE_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/troupe)
set(TROUPE_INSTALL_PLUGINDIR ${CMAKE_INSTALL_LIBDIR}/troupe/plugins)

install(TARGETS troupe_sdk EXPORT troupeSdkTargets)
install(TARGETS troupe_engine troupe_config
        EXPORT troupeEngineTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT development
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT development
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
install(TARGETS troupe_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT cli)
if(TARGET troupe_worker)
  install(TARGETS troupe_worker RUNTIME DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/troupe COMPONENT runtime)
endif()
install(DIRECTORY sdk/include/ engine/include/ config/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        COMPONENT development)
# troupe::mpi (component mpi of the CMake package), where Open MPI was found:
# the library goes with the engine's (the troupe command links it to serve
# pools of kind mpi under mpirun).
if(TARGET troupe_mpi)
  install(TARGETS troupe_mpi
          EXPORT troupeMpiTargets
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT development)
  install(DIRECTORY mpi/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT development)
  install(EXPORT troupeMpiTargets NAMESPACE troupe:: DESTINATION ${TROUPE_INSTALL_CMAKEDIR} COMPONENT development)
endif()
install(TARGETS troupe_text LIBRARY DESTINATION ${TROUPE_INSTALL_PLUGINDIR} COMPONENT cli)

install(EXPORT troupeSdkTargets NAMESPACE troupe:: DESTINATION ${TROUPE_INSTALL_CMAKEDIR} COMPONENT development)
install(EXPORT troupeEngineTargets NAMESPACE troupe:: DESTINATION ${TROUPE_INSTALL_CMAKEDIR}
        COMPONENT development)
configure_package_config_file(cmake/troupeConfig.cmake.in ${PROJECT_BINARY_DIR}/troupeConfig.cmake
                              INSTALL_DESTINATION ${TROUPE_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/troupeConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/troupeConfig.cmake ${PROJECT_BINARY_DIR}/troupeConfigVersion.cmake
              cmake/TroupePlugin.cmake
        DESTINATION ${TROUPE_INSTALL_CMAKEDIR} COMPONENT development)

# pkg-config, for builds without CMake: troupe-sdk (a plugin) and troupe (a host).
# Their prefix is found from where the file lies, so the same files serve
# /usr (the packages), any --prefix, and an unpacked package tree.
file(RELATIVE_PATH TROUPE_PC_TO_PREFIX /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
foreach(pc IN ITEMS troupe-sdk troupe)
  configure_file(cmake/pkgconfig/${pc}.pc.in ${PROJECT_BINARY_DIR}/pkgconfig/${pc}.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/pkgconfig/${pc}.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
          COMPONENT development)
endforeach()

# The examples, buildable where they land against the installed package
# (examples/CMakeLists.txt finds troupe when it is the top-level project).
install(DIRECTORY examples/ DESTINATION ${CMAKE_INSTALL_DATADIR}/troupe/examples COMPONENT development)
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT cli)
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT cli FILES_MATCHING PATTERN "*.md")
