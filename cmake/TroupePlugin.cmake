# troupe_add_plugin(NAME SOURCES... [OUTPUT_DIRECTORY dir])
#
# Builds a troupe plugin: a MODULE library lib<NAME>.so, position
# independent, with hidden visibility (so plugins never shadow each other's
# symbols), linked against the header-only troupe::sdk.
function(troupe_add_plugin name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "OUTPUT_DIRECTORY" "")
  if(NOT arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "troupe_add_plugin(${name}): no sources given")
  endif()
  add_library(${name} MODULE ${arg_UNPARSED_ARGUMENTS})
  if(TARGET troupe::sdk)
    target_link_libraries(${name} PRIVATE troupe::sdk)
  else()
    message(FATAL_ERROR "troupe_add_plugin(${name}): troupe::sdk not found; call find_package(troupe) first")
  endif()
  set_target_properties(${name} PROPERTIES
    PREFIX "lib"
    POSITION_INDEPENDENT_CODE ON
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    CXX_STANDARD 20
    CXX_STANDARD_REQUIRED ON)
  if(arg_OUTPUT_DIRECTORY)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${arg_OUTPUT_DIRECTORY})
  elseif(DEFINED TROUPE_PLUGIN_OUTPUT_DIRECTORY)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${TROUPE_PLUGIN_OUTPUT_DIRECTORY})
  endif()
endfunction()
