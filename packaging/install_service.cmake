# packaging/install_service.cmake: installs the systemd unit, the default edge.conf, the state
# directory and the service documentation. Runs at install time (from install(CODE) in
# packaging/CMakeLists.txt), because the unit and the config name the installed programs and
# plugins, whose place is known only once `cmake --install --prefix` or CPack chose the prefix.
# SPDX-License-Identifier: Apache-2.0
#
# Set by the caller: ANM_TEMPLATE_DIR, ANM_GENERATED_DIR, ANM_DOCS (files to install as docs),
# ANM_DOC_PAGES_DIR (its *.md go to docs/ beside them),
# ANM_BINDIR, ANM_PLUGIN_SUBDIR, ANM_DOCDIR (relative to the prefix), ANM_SYSCONF_DIR and
# ANM_STATE_DIR (absolute: they are the unit's ConfigurationDirectory= and StateDirectory=,
# which systemd always places in /etc and /var/lib, whatever the prefix).

set(_anm_prefix "${CMAKE_INSTALL_PREFIX}")
set(ANM_BIN_DIR "${_anm_prefix}/${ANM_BINDIR}")
set(ANM_PLUGIN_DIR "${_anm_prefix}/${ANM_PLUGIN_SUBDIR}")
set(ANM_DOC_DIR "${_anm_prefix}/${ANM_DOCDIR}")

# Generated per prefix, so that an install into /usr after one into /usr/local (or CPack's
# run) never picks up the other's paths.
string(MD5 _anm_prefix_id "${_anm_prefix}")
set(_anm_out "${ANM_GENERATED_DIR}/${_anm_prefix_id}")
configure_file("${ANM_TEMPLATE_DIR}/anonymily-edge.service.in"
  "${_anm_out}/anonymily-edge.service" @ONLY)
configure_file("${ANM_TEMPLATE_DIR}/edge.conf.in" "${_anm_out}/edge.conf" @ONLY)

# Readable by everyone: the dynamic user reads edge.conf through "others", so the file must not
# hold secrets (they go in credentials, see the unit).
set(_anm_public_file OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
file(INSTALL "${_anm_out}/anonymily-edge.service"
  DESTINATION "${_anm_prefix}/lib/systemd/system" FILE_PERMISSIONS ${_anm_public_file})
# An edge.conf the operator changed is never overwritten by a later install: the new default
# goes beside it as edge.conf.new (the Debian package has dpkg's conffile handling instead).
set(_anm_conf "$ENV{DESTDIR}${ANM_SYSCONF_DIR}/edge.conf")
set(_anm_conf_name edge.conf)
if(EXISTS "${_anm_conf}")
  file(SHA256 "${_anm_conf}" _anm_installed)
  file(SHA256 "${_anm_out}/edge.conf" _anm_new)
  if(NOT _anm_installed STREQUAL _anm_new)
    set(_anm_conf_name edge.conf.new)
    message(STATUS "Keeping ${ANM_SYSCONF_DIR}/edge.conf; the new default is edge.conf.new")
  endif()
endif()
file(INSTALL "${_anm_out}/edge.conf" DESTINATION "${ANM_SYSCONF_DIR}"
  RENAME "${_anm_conf_name}" FILE_PERMISSIONS ${_anm_public_file})
file(INSTALL ${ANM_DOCS} DESTINATION "${ANM_DOC_DIR}" FILE_PERMISSIONS ${_anm_public_file})
# The README links to the pages under docs/, which keep that place beside it.
file(INSTALL "${ANM_DOC_PAGES_DIR}/" DESTINATION "${ANM_DOC_DIR}/docs"
  FILE_PERMISSIONS ${_anm_public_file}
  DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
    WORLD_READ WORLD_EXECUTE
  FILES_MATCHING PATTERN "*.md")

# The state directory: owned by root and closed to everyone else until systemd moves it to
# /var/lib/private/anonymily and hands it to the dynamic user on the first start.
get_filename_component(_anm_state_parent "${ANM_STATE_DIR}" DIRECTORY)
get_filename_component(_anm_state_name "${ANM_STATE_DIR}" NAME)
file(MAKE_DIRECTORY "${_anm_out}/state/${_anm_state_name}")
file(INSTALL "${_anm_out}/state/${_anm_state_name}" DESTINATION "${_anm_state_parent}"
  DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE)
