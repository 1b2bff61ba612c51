# Cross-compiling berth for Windows (x86-64) with Debian's mingw-w64
# toolchain; the tests run under Wine (scripts/test-windows.sh).
#   cmake -S . -B build-win -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64.cmake \
#         -DBERTH_WIN_DEPS=<prefix of the cross-built xxHash, zstd, lz4, cmocka>
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(BERTH_MINGW x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${BERTH_MINGW}-gcc)
set(CMAKE_CXX_COMPILER ${BERTH_MINGW}-g++)
set(CMAKE_RC_COMPILER ${BERTH_MINGW}-windres)

set(CMAKE_FIND_ROOT_PATH /usr/${BERTH_MINGW} ${BERTH_WIN_DEPS})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config looks only at the cross-built dependencies' .pc files.
if(BERTH_WIN_DEPS)
	set(ENV{PKG_CONFIG_LIBDIR} "${BERTH_WIN_DEPS}/lib/pkgconfig")
	set(ENV{PKG_CONFIG_PATH} "")
endif()

# Static executables: no mingw runtime DLLs to find under Wine.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")

# CTest runs every test program through Wine.
find_program(BERTH_WINE NAMES wine64 wine PATHS /usr/lib/wine NO_DEFAULT_PATH)
if(NOT BERTH_WINE)
	find_program(BERTH_WINE NAMES wine64 wine)
endif()
if(BERTH_WINE)
	set(CMAKE_CROSSCOMPILING_EMULATOR ${BERTH_WINE})
endif()
