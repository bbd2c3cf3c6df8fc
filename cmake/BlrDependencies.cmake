# Finds what the build needs. Required: CUDA toolkit (cudart, cuBLAS/cuBLASLt, cuSOLVER, cuRAND), cuDNN,
# Eigen, nlohmann-json. Optional, each reported once: OpenCV (camera/video/image input), ImGui + GLFW +
# OpenGL (the studio), stb_image_write (PNG output), libzip (PyTorch .pt/.bin checkpoints), GoogleTest.
find_package(CUDAToolkit REQUIRED)

# cuDNN lives next to the toolkit on some machines and in the system folders on others (Debian/Ubuntu
# packages put it in /usr/include/<triplet> and /usr/lib/<triplet>), so search both.
find_path(CUDNN_INCLUDE_DIR cudnn.h
  HINTS ${CUDAToolkit_INCLUDE_DIRS} ${CUDAToolkit_LIBRARY_ROOT}/include
  PATHS /usr/include /usr/include/x86_64-linux-gnu /usr/include/aarch64-linux-gnu)
find_library(CUDNN_LIBRARY cudnn
  HINTS ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}/lib64
  PATHS /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu)
if(NOT CUDNN_INCLUDE_DIR OR NOT CUDNN_LIBRARY)
  message(FATAL_ERROR "cuDNN 9 not found (cudnn.h / libcudnn.so). Install it next to the CUDA toolkit "
                      "or in the system library folders.")
endif()
add_library(blr_cudnn INTERFACE)
target_include_directories(blr_cudnn SYSTEM INTERFACE ${CUDNN_INCLUDE_DIR})
target_link_libraries(blr_cudnn INTERFACE ${CUDNN_LIBRARY})

find_package(Eigen3 3.3 REQUIRED NO_MODULE)
find_package(nlohmann_json 3.2 REQUIRED)
find_package(OpenMP)
find_package(Threads REQUIRED)
find_package(PkgConfig)

# --- optional parts -------------------------------------------------------------------------------
set(BLR_HAVE_OPENCV OFF)
find_package(OpenCV QUIET COMPONENTS core imgproc imgcodecs videoio)
if(OpenCV_FOUND)
  set(BLR_HAVE_OPENCV ON)
else()
  message(STATUS "OpenCV C++ not found: camera, video and image input are disabled (install libopencv-dev)")
endif()

set(BLR_HAVE_STB OFF)
find_path(STB_INCLUDE_DIR stb_image_write.h
  HINTS ${BLR_STB_DIR} PATHS /usr/include/stb /usr/local/include/stb /usr/include)
if(STB_INCLUDE_DIR)
  set(BLR_HAVE_STB ON)
else()
  message(STATUS "stb_image_write.h not found: PNG output is disabled (install libstb-dev or set BLR_STB_DIR)")
endif()

set(BLR_HAVE_LIBZIP OFF)
if(PkgConfig_FOUND)
  pkg_check_modules(LIBZIP QUIET IMPORTED_TARGET libzip)
  if(LIBZIP_FOUND)
    set(BLR_HAVE_LIBZIP ON)
  endif()
endif()
if(NOT BLR_HAVE_LIBZIP)
  message(STATUS "libzip not found: PyTorch .pt/.bin checkpoints are disabled (install libzip-dev)")
endif()

set(BLR_HAVE_STUDIO OFF)
if(BLR_BUILD_STUDIO AND PkgConfig_FOUND)
  pkg_check_modules(IMGUI QUIET IMPORTED_TARGET imgui)
  pkg_check_modules(GLFW QUIET IMPORTED_TARGET glfw3)
  set(OpenGL_GL_PREFERENCE GLVND)
  find_package(OpenGL QUIET)
  if(IMGUI_FOUND AND GLFW_FOUND AND OpenGL_FOUND)
    set(BLR_HAVE_STUDIO ON)
  endif()
endif()
if(BLR_BUILD_STUDIO AND NOT BLR_HAVE_STUDIO)
  message(STATUS "Dear ImGui, GLFW or OpenGL not found: blr-studio is skipped "
                 "(install libimgui-dev libglfw3-dev libgl-dev)")
endif()

if(BLR_BUILD_TESTS)
  find_package(GTest REQUIRED)
  include(GoogleTest)
endif()
