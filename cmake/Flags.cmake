# Warnings, hardening and sanitizers, set once for the whole tree.
add_compile_definitions(_GNU_SOURCE)
set(CVM_WARN -Wall -Wextra -Wshadow -Wformat=2 -Wvla -Wstrict-prototypes
    -Wmissing-prototypes -Wimplicit-fallthrough -Wcast-qual -Wpointer-arith -Wundef)
# lib/ adds these on top (see lib/CMakeLists.txt).
set(CVM_WARN_LIB -Wconversion -Wsign-conversion)
if(CVM_WERROR)
  list(APPEND CVM_WARN -Werror)
endif()
add_compile_options(${CVM_WARN} -fstack-protector-strong -fstack-clash-protection)
if(NOT CMAKE_BUILD_TYPE STREQUAL "Debug" AND NOT CVM_SANITIZE)
  add_compile_definitions($<$<NOT:$<CONFIG:Debug>>:_FORTIFY_SOURCE=2>)
endif()
add_link_options(-Wl,-z,relro,-z,now)
set(CMAKE_POSITION_INDEPENDENT_CODE ON)
include(CheckPIESupported)
check_pie_supported()

if(CVM_SANITIZE)
  add_compile_options(-fsanitize=${CVM_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${CVM_SANITIZE})
endif()
if(CVM_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "CVM_FUZZ=ON needs clang (CC=clang)")
  endif()
  # Instrument everything, not only the harness: libFuzzer is blind otherwise.
  add_compile_options(-fsanitize=fuzzer-no-link)
  add_compile_definitions(CVM_FUZZING_UNSAFE)
endif()

# ECDSA P-256/P-384 verification: ON computes u1*G + u2*Q itself on OpenSSL's
# EC point operations, with per-key tables for authenticated keys (fast);
# OFF sends every ECDSA verification to OpenSSL's EVP and compiles none of
# that code (lib/crypto/crypto_int.h). Same verdicts either way; CI tests both.
option(CVM_FAST_ECDSA "Own ECDSA verification arithmetic and per-key tables (OFF: OpenSSL EVP only)" ON)
if(CVM_FAST_ECDSA)
  add_compile_definitions(CVM_FAST_ECDSA=1)
else()
  add_compile_definitions(CVM_FAST_ECDSA=0)
endif()
