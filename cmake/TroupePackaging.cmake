# Debian packages with CPack, one per install component (cmake/TroupeInstall.cmake):
#   libtroupe0     runtime      libtroupe.so.*, troupe-worker
#   libtroupe-dev  development  headers, libtroupe.so, CMake and pkg-config files, examples
#   troupe         cli          the troupe command, the bundled plugins, docs
# From a release build:  cd build/release && cpack -G DEB
# Shared-library dependencies are computed by dpkg-shlibdeps; only what
# headers need (libtroupe-dev) is listed by hand.
set(CPACK_PACKAGE_NAME troupe)
set(CPACK_PACKAGE_VENDOR "troupe developers")
set(CPACK_PACKAGE_CONTACT "troupe developers <troupe-dev@lists.example.org>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_GENERATOR DEB)
set(CPACK_STRIP_FILES ON)
set(CPACK_COMPONENTS_ALL runtime development cli)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_COMPRESSION_TYPE gzip)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)

set(troupe_deb_version "${PROJECT_VERSION}")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME libtroupe0)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
# A shlibs file, and an ldconfig trigger instead of CPack's default
# postinst/postrm calling ldconfig (Debian policy 8.1.1).
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/libtroupe0/triggers ${PROJECT_SOURCE_DIR}/packaging/libtroupe0/postinst
    ${PROJECT_SOURCE_DIR}/packaging/libtroupe0/postrm)
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION
    "troupe engine library\n troupe runs plugin tasks on thread pools and crash-isolating process\n pools. This package has the engine library and troupe-worker, the\n process pools' worker executable.")

set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_NAME libtroupe-dev)
set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_SECTION libdevel)
# Plugins must be built with the engine's exact nlohmann-json (troupeConfig.cmake says so).
string(REGEX MATCH "^[0-9]+\\.[0-9]+" troupe_json_minor "${nlohmann_json_VERSION}")
math(EXPR troupe_json_patch_next "${nlohmann_json_VERSION_PATCH} + 1")
set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_DEPENDS
    "libtroupe0 (= ${troupe_deb_version}), libtbb-dev, libboost-dev, nlohmann-json3-dev (>= ${nlohmann_json_VERSION}), nlohmann-json3-dev (<< ${troupe_json_minor}.${troupe_json_patch_next})")
set(CPACK_COMPONENT_DEVELOPMENT_DESCRIPTION
    "troupe engine and plugin SDK: development files\n Headers, the CMake package (find_package(troupe), troupe_add_plugin()),\n pkg-config files (troupe-sdk, troupe) and buildable examples.")

set(CPACK_DEBIAN_CLI_PACKAGE_NAME troupe)
set(CPACK_DEBIAN_CLI_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_CLI_PACKAGE_DEPENDS "libtroupe0 (= ${troupe_deb_version})")
# dpkg-shlibdeps runs in each component's staging folder: the CLI finds
# libtroupe in the runtime component's, beside it (its package is the Depends above).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ../runtime/usr/${CMAKE_INSTALL_LIBDIR})
set(CPACK_COMPONENT_CLI_DESCRIPTION
    "troupe command: inspect and call plugins\n The troupe command line tool, the bundled text plugin and troupe's\n documentation.")

# Debian wants a copyright file and a changelog in each package's doc folder.
file(MAKE_DIRECTORY ${PROJECT_BINARY_DIR}/packaging)
execute_process(COMMAND gzip -9nc ${PROJECT_SOURCE_DIR}/packaging/changelog
                OUTPUT_FILE ${PROJECT_BINARY_DIR}/packaging/changelog.gz COMMAND_ERROR_IS_FATAL ANY)
foreach(pair IN ITEMS "runtime:libtroupe0" "development:libtroupe-dev" "cli:troupe")
  string(REPLACE ":" ";" pair "${pair}")
  list(GET pair 0 component)
  list(GET pair 1 package)
  install(FILES ${PROJECT_SOURCE_DIR}/packaging/copyright ${PROJECT_BINARY_DIR}/packaging/changelog.gz
          DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${package} COMPONENT ${component})
endforeach()

include(CPack)
