# Install rules and the CMake package: find_package(troupe) gives
# troupe::sdk and troupe_add_plugin() (component sdk), and troupe::engine and
# troupe::config (component engine, which needs oneTBB). Two export sets, so
# a plugin author's find_package works where TBB is not installed.
include(CMakePackageConfigHelpers)

set(TROUPE_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/troupe)

install(TARGETS troupe_sdk EXPORT troupeSdkTargets)
install(TARGETS troupe_engine troupe_config
        EXPORT troupeEngineTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS troupe_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
if(TARGET troupe_worker)
  install(TARGETS troupe_worker RUNTIME DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/troupe)
endif()
install(DIRECTORY sdk/include/ engine/include/ config/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS troupe_text LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/troupe/plugins)

install(EXPORT troupeSdkTargets NAMESPACE troupe:: DESTINATION ${TROUPE_INSTALL_CMAKEDIR})
install(EXPORT troupeEngineTargets NAMESPACE troupe:: DESTINATION ${TROUPE_INSTALL_CMAKEDIR})
configure_package_config_file(cmake/troupeConfig.cmake.in ${PROJECT_BINARY_DIR}/troupeConfig.cmake
                              INSTALL_DESTINATION ${TROUPE_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/troupeConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/troupeConfig.cmake ${PROJECT_BINARY_DIR}/troupeConfigVersion.cmake
              cmake/TroupePlugin.cmake
        DESTINATION ${TROUPE_INSTALL_CMAKEDIR})
