# Warnings for host code and for the host side of CUDA code. Kept in one place so every target agrees.
add_library(blr_warnings INTERFACE)
target_compile_options(blr_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>
  $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wno-unused-parameter --expt-relaxed-constexpr -lineinfo>)

if(BLR_SANITIZE)
  # Host code only: device code is checked with compute-sanitizer on the GPU machine instead.
  add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-fsanitize=address,undefined>
                      $<$<COMPILE_LANGUAGE:CXX>:-fno-omit-frame-pointer>
                      $<$<COMPILE_LANGUAGE:CXX>:-fno-sanitize-recover=undefined>)
  add_link_options(-fsanitize=address,undefined)
endif()
