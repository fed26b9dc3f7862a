# Warning and tuning flags for project targets only (third-party headers come in as SYSTEM).
add_library(attnlab_options INTERFACE)
target_compile_options(attnlab_options INTERFACE
  $<$<COMPILE_LANG_AND_ID:CXX,GNU,Clang>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
      -Wcast-align -Woverloaded-virtual -Wimplicit-fallthrough>
)
# GCC 12 reports false positives inside system headers when they are instantiated in our code:
# -Wmaybe-uninitialized in avx512fintrin.h (GCC PR 105593) and -Wrestrict in std::string
# (GCC PR 105329). Both are fixed in GCC 13; silence only these two, only on GCC 12.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  target_compile_options(attnlab_options INTERFACE
    $<$<COMPILE_LANGUAGE:CXX>:-Wno-maybe-uninitialized -Wno-restrict>)
endif()
if(ATTNLAB_WERROR)
  target_compile_options(attnlab_options INTERFACE $<$<COMPILE_LANG_AND_ID:CXX,GNU,Clang>:-Werror>)
endif()
if(ATTNLAB_NATIVE)
  include(CheckCXXCompilerFlag)
  check_cxx_compiler_flag(-march=native ATTNLAB_HAS_MARCH_NATIVE)
  if(ATTNLAB_HAS_MARCH_NATIVE)
    target_compile_options(attnlab_options INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-march=native>)
  endif()
endif()
# Eigen's own asserts cost a lot in hot loops; our checks throw typed errors before Eigen sees data.
target_compile_definitions(attnlab_options INTERFACE $<$<CONFIG:Release,RelWithDebInfo>:EIGEN_NO_DEBUG>)
