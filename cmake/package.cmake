# Debian packages, cut along the install components (cmake/install.cmake), with CPack's DEB
# generator (`make deb`, or `cpack -G DEB` in a build tree):
#   libplatoon1       libplatoon.so.1 and libplatoon-raft.so.1            (component libraries)
#   libplatoon-dev    headers, pkg-config files, static libraries, .so links   (component dev)
#   platoon           platoond, platoonctl, platoon-inspect, manual pages, the systemd unit, the
#                     platoond user and an example /etc/default/platoond  (component programs)
# The library package is named after the SONAME's major version, as Debian's policy asks, so
# that two ABI generations can be installed side by side.
set(CPACK_PACKAGE_NAME platoon)
set(CPACK_PACKAGE_VENDOR "The Platoon authors")
set(CPACK_PACKAGE_CONTACT "The Platoon authors <platoon@localhost>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Raft-replicated vehicle-state store")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/packages)
set(CPACK_GENERATOR DEB)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL libraries dev programs)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Dependencies of the binaries come from dpkg-shlibdeps (dpkg-dev), as in any Debian build.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The build tree keeps its debug information; the packages do not.
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)

set(CPACK_DEBIAN_LIBRARIES_PACKAGE_NAME libplatoon${PLATOON_SOVERSION})
set(CPACK_COMPONENT_LIBRARIES_DESCRIPTION
    "Platoon's libraries\n libplatoon-raft is the Raft consensus core alone (no I/O); libplatoon\n adds the LMDB storage engine, the gRPC transport and the node runtime.")
# ldconfig after the shared libraries come or go, through dpkg's trigger (what debhelper does
# today). Maintainer scripts of our own keep CPack from adding ones that call ldconfig directly:
# those would run it on the host's root, not DPKG_ROOT's, when dpkg installs into another root.
set(libdir ${CMAKE_BINARY_DIR}/packaging/libraries)
file(WRITE ${libdir}/triggers "activate-noawait ldconfig\n")
foreach(script postinst postrm)
  file(WRITE ${libdir}/${script}
       "#!/bin/sh\n# ldconfig runs from the package's trigger (activate-noawait ldconfig).\nexit 0\n")
endforeach()
set(CPACK_DEBIAN_LIBRARIES_PACKAGE_CONTROL_EXTRA ${libdir}/triggers ${libdir}/postinst
                                                 ${libdir}/postrm)
set(CPACK_DEBIAN_LIBRARIES_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libplatoon-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_COMPONENT_DEV_DEPENDS libraries)
set(CPACK_COMPONENT_DEV_DESCRIPTION
    "Platoon's libraries: headers, pkg-config files and static libraries\n Build with `pkg-config --cflags --libs platoon` (everything) or platoon-raft\n (the consensus core alone). The -dev packages of the dependencies are\n needed for static linking and for libprotobuf-c's header.")
# The headers include protobuf-c's; static linking needs the rest (pkg-config --static).
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
    "pkg-config | pkgconf, libprotobuf-c-dev, liblmdb-dev, libzstd-dev, libxxhash-dev, libssl-dev, libgrpc-dev, libmicrohttpd-dev, libgnutls28-dev")

set(CPACK_DEBIAN_PROGRAMS_PACKAGE_NAME platoon)
set(CPACK_DEBIAN_PROGRAMS_PACKAGE_SECTION database)
set(CPACK_COMPONENT_PROGRAMS_DESCRIPTION
    "Platoon: a Raft-replicated vehicle-state store\n platoond (the server, with a hardened systemd unit), platoonctl (the\n command-line client and certificate tool) and platoon-inspect (a data\n directory checker).")
set(CPACK_DEBIAN_PROGRAMS_PACKAGE_DEPENDS "systemd | systemd-standalone-sysusers")
set(PLATOON_PKG_PREFIX ${CPACK_PACKAGING_INSTALL_PREFIX})
configure_file(${PROJECT_SOURCE_DIR}/packaging/postinst.in
               ${CMAKE_BINARY_DIR}/packaging/programs/postinst @ONLY)
set(CPACK_DEBIAN_PROGRAMS_PACKAGE_CONTROL_EXTRA ${CMAKE_BINARY_DIR}/packaging/programs/postinst)
set(CPACK_DEBIAN_PROGRAMS_PACKAGE_CONTROL_STRICT_PERMISSION ON)

include(CPack)
