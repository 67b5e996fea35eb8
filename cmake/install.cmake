# What `make install` (cmake --install) puts under the prefix, by component:
#   libraries  lib/libplatoon.so.1*, lib/libplatoon-raft.so.1*                  (the runtime)
#   dev        include/platoon/*.h, lib/*.so (links), lib/*.a, lib/pkgconfig/*.pc
#   programs   bin/platoond, bin/platoonctl, bin/platoon-inspect, their manual pages (built
#              from their --help texts), the systemd unit and the example environment file
# The Debian packages (cmake/package.cmake) are cut along the same components.
include(GNUInstallDirs)

# ----- libraries
set(platoon_installed_libs platoon platoon_static)
if(TARGET platoon_raft_shared)
  list(APPEND platoon_installed_libs platoon_raft_shared platoon_raft_static)
endif()
install(TARGETS ${platoon_installed_libs}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT libraries
                NAMELINK_COMPONENT dev
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
install(DIRECTORY include/platoon DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev
        FILES_MATCHING PATTERN "*.h")

# ----- pkg-config files. The prefix is found from the file's own place (${pcfiledir}), so the
# same files work under any prefix, after `cmake --install --prefix`, and inside a staging root.
file(RELATIVE_PATH platoon_pc_to_prefix
     /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
set(PLATOON_PC_PREFIX "\${pcfiledir}/${platoon_pc_to_prefix}")
foreach(pc platoon platoon-raft)
  configure_file(${PROJECT_SOURCE_DIR}/cmake/${pc}.pc.in ${CMAKE_BINARY_DIR}/pkgconfig/${pc}.pc
                 @ONLY)
  install(FILES ${CMAKE_BINARY_DIR}/pkgconfig/${pc}.pc
          DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)
endforeach()

# ----- programs and their manual pages
foreach(prog platoond platoonctl platoon-inspect)
  if(NOT TARGET ${prog})
    continue()
  endif()
  install(TARGETS ${prog} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT programs)
  set(man ${CMAKE_BINARY_DIR}/man/${prog}.1)
  add_custom_command(
    OUTPUT ${man}
    COMMAND ${CMAKE_COMMAND} -DPROGRAM=$<TARGET_FILE:${prog}> -DNAME=${prog}
            -DVERSION=${PROJECT_VERSION} -DOUT=${man} -P ${PROJECT_SOURCE_DIR}/cmake/help2man.cmake
    DEPENDS ${prog} ${PROJECT_SOURCE_DIR}/cmake/help2man.cmake
    COMMENT "manual page of ${prog}"
    VERBATIM)
  add_custom_target(${prog}_man ALL DEPENDS ${man})
  install(FILES ${man} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT programs)
endforeach()

if(TARGET platoond)
  # The unit names the installed program, whose path is only known at install time (a
  # `--prefix` given to cmake --install, or /usr when CPack stages a Debian package).
  install(CODE "
    set(PLATOOND_PROGRAM \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}/platoond\")
    set(PLATOON_DOCDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_DATADIR}/doc/platoon\")
    set(unit \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/lib/systemd/system/platoond.service\")
    message(STATUS \"Installing: \${unit}\")
    configure_file(${PROJECT_SOURCE_DIR}/packaging/platoond.service.in \${unit} @ONLY)"
    COMPONENT programs)
  install(FILES ${PROJECT_SOURCE_DIR}/packaging/platoond.sysusers DESTINATION lib/sysusers.d
          RENAME platoond.conf COMPONENT programs)
  install(FILES ${PROJECT_SOURCE_DIR}/packaging/platoond.env
          DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/platoon/examples COMPONENT programs)
endif()
