# Compiler warnings, sanitizers, ccache and the helper that declares one library per layer.

find_program(SLUICE_CCACHE ccache)
if(SLUICE_CCACHE)
    set(CMAKE_CXX_COMPILER_LAUNCHER ${SLUICE_CCACHE})
endif()

if(SLUICE_ASAN AND SLUICE_TSAN)
    message(FATAL_ERROR "SLUICE_ASAN and SLUICE_TSAN cannot be combined")
endif()

add_library(sluice_warnings INTERFACE)
target_compile_options(sluice_warnings INTERFACE
    -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align -Woverloaded-virtual
    -Wnull-dereference -Wimplicit-fallthrough -Wformat=2 -Wmissing-declarations)
if(SLUICE_WERROR)
    target_compile_options(sluice_warnings INTERFACE -Werror)
endif()

if(SLUICE_ASAN)
    add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
    add_link_options(-fsanitize=address,undefined)
endif()
if(SLUICE_TSAN)
    add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
    add_link_options(-fsanitize=thread)
endif()

# sluice_add_layer(<target> SOURCES ... DEPS ...): one static library per layer, includes rooted at
# the repository top so headers read as "protocol/error_codes.h", "server/core/log.h".
function(sluice_add_layer target)
    cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
    add_library(${target} STATIC ${ARG_SOURCES})
    target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR}/generated)
    target_link_libraries(${target} PUBLIC ${ARG_DEPS} PRIVATE sluice_warnings ${ARG_PRIVATE_DEPS})
    if(SLUICE_PCH)
        target_precompile_headers(${target} PRIVATE
            <cstdint> <memory> <optional> <string> <string_view> <utility> <variant> <vector>
            <fmt/format.h>)
    endif()
endfunction()
