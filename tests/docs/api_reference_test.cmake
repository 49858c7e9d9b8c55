# Docs.ApiReferenceListsEveryPublicHeader: docs/api.md has an entry for every
# public header and none for a header that does not exist.
#   cmake -DSOURCE_DIR=<repository root> -P api_reference_test.cmake
# A public header (sdk/, engine/, config/ and mpi/ include folders, outside
# troupe/detail/) needs a heading "### `<troupe/x.hpp>`"; a troupe/detail/
# header needs a mention "`<troupe/detail/x.hpp>`" (the "Not API" section).
# Every "<troupe/x.hpp>" the page names must exist, except under a heading
# marked " (upcoming)", which must name one that does not exist yet.
# Headers are globbed here, when the test runs, so a new header fails the
# test without a reconfigure.
cmake_minimum_required(VERSION 3.25)
if(NOT SOURCE_DIR)
  message(FATAL_ERROR "pass -DSOURCE_DIR=<repository root>")
endif()
set(page ${SOURCE_DIR}/docs/api.md)
if(NOT EXISTS ${page})
  message(FATAL_ERROR "${page} does not exist")
endif()

set(headers "")
foreach(part IN ITEMS sdk engine config mpi)
  file(GLOB_RECURSE found LIST_DIRECTORIES false RELATIVE ${SOURCE_DIR}/${part}/include
       ${SOURCE_DIR}/${part}/include/troupe/*.hpp)
  list(APPEND headers ${found})
endforeach()
if(NOT headers)
  message(FATAL_ERROR "no headers found under ${SOURCE_DIR}/{sdk,engine,config}/include")
endif()

# The page as lines; ';' and brackets would split or join CMake list items,
# and no rule here needs them.
file(READ ${page} text)
string(REGEX REPLACE "[][;]" " " text "${text}")
string(REPLACE "\n" ";" lines "${text}")

set(problems "")
set(entries "")   # headings, "path" per entry
set(upcoming "")  # headings marked (upcoming)
set(mentions "")  # "path@line" for every <troupe/...> named
set(line_no 0)
foreach(line IN LISTS lines)
  math(EXPR line_no "${line_no} + 1")
  if(line MATCHES "^### ")
    if(line MATCHES "^### `<(troupe/[A-Za-z0-9_/.]+\\.hpp)>`( \\(upcoming\\))?$")
      set(path ${CMAKE_MATCH_1})
      if(path IN_LIST entries)
        list(APPEND problems "docs/api.md:${line_no}: a second entry for <${path}>")
      endif()
      list(APPEND entries ${path})
      if(CMAKE_MATCH_2)
        list(APPEND upcoming ${path})
      endif()
    else()
      list(APPEND problems
           "docs/api.md:${line_no}: a ### heading must be an include path, \"### `<troupe/x.hpp>`\": '${line}'")
    endif()
  endif()
  string(REGEX MATCHALL "<troupe/[A-Za-z0-9_/.]+\\.hpp>" named "${line}")
  foreach(mention IN LISTS named)
    string(REGEX REPLACE "^<(.*)>$" "\\1" path "${mention}")
    list(APPEND mentions "${path}@${line_no}")
  endforeach()
endforeach()

foreach(header IN LISTS headers)
  if(header MATCHES "^troupe/detail/")
    string(FIND "${text}" "`<${header}>`" at)
    if(at EQUAL -1)
      list(APPEND problems "<${header}> (a detail header) is not listed in docs/api.md's \"Not API\" section")
    endif()
  elseif(NOT header IN_LIST entries)
    list(APPEND problems "<${header}> has no entry in docs/api.md: add a heading \"### `<${header}>`\" \
saying what its types are for, their members and what throws")
  elseif(header IN_LIST upcoming)
    list(APPEND problems "<${header}> exists now: drop the \" (upcoming)\" mark from its docs/api.md heading")
  endif()
endforeach()

foreach(mention IN LISTS mentions)
  string(REGEX MATCH "^(.*)@([0-9]+)$" _ "${mention}")
  set(path ${CMAKE_MATCH_1})
  set(at_line ${CMAKE_MATCH_2})
  if(NOT path IN_LIST headers AND NOT path IN_LIST upcoming)
    list(APPEND problems "docs/api.md:${at_line}: names <${path}>, which no include folder has \
(removed or renamed? mark a header that is still to come \"(upcoming)\")")
  endif()
endforeach()

if(problems)
  list(REMOVE_DUPLICATES problems)
  list(LENGTH problems count)
  list(JOIN problems "\n  " listed)
  message(FATAL_ERROR "docs/api.md is out of step with the headers (${count} found):\n  ${listed}")
endif()
list(LENGTH entries count)
message(STATUS "docs/api.md: ${count} header entries, every public header covered")
