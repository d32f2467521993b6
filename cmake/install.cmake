# Install rules: binaries, libraries, public headers, man pages, pkg-config
# file and a CMake package (find_package(pmap) -> pmap::pmap).
include(CMakePackageConfigHelpers)

install(TARGETS pmap pmap_static EXPORT pmapTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/lib/include/pmap
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")
install(FILES ${PROJECT_BINARY_DIR}/include/pmap/version.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/pmap)

install(EXPORT pmapTargets NAMESPACE pmap::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/pmap)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/pmapConfig.cmake.in
  ${PROJECT_BINARY_DIR}/pmapConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/pmap)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/pmapConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/pmapConfig.cmake ${PROJECT_BINARY_DIR}/pmapConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/pmap)

# pmap.pc finds its prefix relative to itself, so the install can move.
file(RELATIVE_PATH PM_PC_TO_PREFIX "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
configure_file(${PROJECT_SOURCE_DIR}/cmake/pmap.pc.in ${PROJECT_BINARY_DIR}/pmap.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/pmap.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# Man pages (docs/man): one per command, git's way (pmap-compress(1), ...,
# pmap-datagen(1)), and the overview pmap-tools(7). Never a pmap(1): that
# is procps's page (a process's memory map), and so is the command name.
file(GLOB PM_MAN1 CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/man/*.1)
if(NOT PM_MPI)   # pmap-mpi(1) only with the binary it describes
  list(REMOVE_ITEM PM_MAN1 ${PROJECT_SOURCE_DIR}/docs/man/pmap-mpi.1)
endif()
file(GLOB PM_MAN7 CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/man/*.7)
install(FILES ${PM_MAN1} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${PM_MAN7} DESTINATION ${CMAKE_INSTALL_MANDIR}/man7)
