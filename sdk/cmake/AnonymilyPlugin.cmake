# anm_add_plugin(): builds an Anonymily provider plugin the way the edge expects to load it.
# SPDX-License-Identifier: Apache-2.0
#
#   anm_add_plugin(<name> SOURCES <file>... [TARGET <target>])
#
# Creates a MODULE library (target anm_plugin_<name> unless TARGET is given) whose file is
# anm-<name>.so, linked to anm::sdk only, with hidden visibility so that the entry function is
# the one exported symbol. <name> is the provider name: lower-case [a-z0-9_-], 1 to 32 chars,
# the same rule the edge applies to the descriptor's name.
#
# Inside the Anonymily build the module goes to ${ANM_PLUGIN_OUTPUT_DIR}, where the edge finds
# it, and installs to ${ANM_PLUGIN_INSTALL_SUBDIR}. Out of tree the caller decides where to
# install it, e.g. install(TARGETS anm_plugin_<name> LIBRARY DESTINATION ...).
include_guard(GLOBAL)

function(anm_add_plugin name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "TARGET" "SOURCES")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "anm_add_plugin(${name}): unknown arguments ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT name MATCHES "^[a-z0-9_-]+$")
    message(FATAL_ERROR "anm_add_plugin: provider name \"${name}\" must match [a-z0-9_-]{1,32}")
  endif()
  string(LENGTH "${name}" name_length)
  if(name_length GREATER 32)
    message(FATAL_ERROR "anm_add_plugin: provider name \"${name}\" is longer than 32 characters")
  endif()
  if(NOT arg_SOURCES)
    message(FATAL_ERROR "anm_add_plugin(${name}): SOURCES is required")
  endif()
  set(target "anm_plugin_${name}")
  if(arg_TARGET)
    set(target "${arg_TARGET}")
  endif()

  add_library(${target} MODULE ${arg_SOURCES})
  target_link_libraries(${target} PRIVATE anm::sdk)
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    OUTPUT_NAME "anm-${name}"
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)

  # A plugin may use only the C library and the host's services: refusing undefined symbols at
  # link time turns a plugin that could never load (the edge loads with RTLD_NOW) into a build
  # error instead of a start-up warning.
  if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
    target_link_options(${target} PRIVATE "LINKER:--no-undefined")
  endif()

  # The real (non-imported) anm_sdk target exists only inside the Anonymily build.
  if(TARGET anm_sdk AND DEFINED ANM_PLUGIN_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${ANM_PLUGIN_OUTPUT_DIR}")
    install(TARGETS ${target} LIBRARY DESTINATION "${ANM_PLUGIN_INSTALL_SUBDIR}" COMPONENT plugins)
  endif()
endfunction()
