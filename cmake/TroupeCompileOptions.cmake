# Warnings and sanitizers for troupe's own targets (never forced on consumers).
add_library(troupe_warnings INTERFACE)
target_compile_options(troupe_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
                                                 -Wold-style-cast -Wcast-align -Woverloaded-virtual)
# GCC 12 at -O2/-O3 reports two well-known false positives: -Wrestrict on
# ordinary `"literal" + std::string` (GCC bug 105329) and
# -Wmaybe-uninitialized on engaged std::optional values (GCC bug 80635).
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  target_compile_options(troupe_warnings INTERFACE -Wno-restrict -Wno-maybe-uninitialized)
endif()
if(TROUPE_WERROR)
  target_compile_options(troupe_warnings INTERFACE -Werror)
endif()

if(TROUPE_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(TROUPE_SANITIZE STREQUAL "thread")
  # g++ 12 warns that atomic_thread_fence is unsupported under TSan.
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer -Wno-error=tsan)
  add_link_options(-fsanitize=thread)
elseif(NOT TROUPE_SANITIZE STREQUAL "")
  message(FATAL_ERROR "TROUPE_SANITIZE must be '', 'address' or 'thread', not '${TROUPE_SANITIZE}'")
endif()

find_program(TROUPE_CCACHE ccache)
if(TROUPE_CCACHE)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${TROUPE_CCACHE})
endif()
