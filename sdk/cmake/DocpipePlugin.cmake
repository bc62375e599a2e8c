# docpipe_add_plugin(<target> SOURCES <files...> [OUTPUT_DIRECTORY <dir>])
#
# Builds a docpipe plugin package: a MODULE library linked to Docpipe::sdk, with hidden
# visibility (only the DOCPIPE_PLUGIN symbols are exported) and named lib<target>.so.
# Install it into the runtime's plugin folder, or point DOCPIPE_PLUGIN_PATH / the
# pipeline's plugin_paths at its folder.
#
# RUNPATH of the installed file (the build tree's copy keeps CMake's build RUNPATH):
# - built against an installed SDK (find_package(DocpipeSDK)): the SDK's lib folder,
#   absolute (DOCPIPE_SDK_LIBRARY_DIR), wherever the plugin itself is installed;
# - a first-party plugin in the docpipe tree, installed into <libdir>/docpipe/plugins:
#   $ORIGIN/../.. , which is <libdir>, where libdocpipe_sdk.so is installed.
function(docpipe_add_plugin target)
  cmake_parse_arguments(ARG "" "OUTPUT_DIRECTORY" "SOURCES" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "docpipe_add_plugin(${target}): SOURCES is required")
  endif()
  add_library(${target} MODULE ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE Docpipe::sdk)
  target_compile_features(${target} PRIVATE cxx_std_20)
  set_target_properties(${target} PROPERTIES
    PREFIX "lib"
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(ARG_OUTPUT_DIRECTORY)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${ARG_OUTPUT_DIRECTORY})
  endif()

  get_target_property(sdk_imported Docpipe::sdk IMPORTED)
  if(sdk_imported)
    set(sdk_libdir "${DOCPIPE_SDK_LIBRARY_DIR}")
    if(NOT sdk_libdir)
      # A package config without the variable: this file sits in <libdir>/cmake/DocpipeSDK.
      get_filename_component(sdk_libdir "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/../.." ABSOLUTE)
    endif()
    set_target_properties(${target} PROPERTIES INSTALL_RPATH "${sdk_libdir}")
  elseif(DEFINED DOCPIPE_INSTALL_PLUGIN_DIR AND NOT IS_ABSOLUTE "${DOCPIPE_INSTALL_PLUGIN_DIR}"
         AND NOT IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
    # From the plugin folder up to <libdir>: "../.." for lib/docpipe/plugins.
    file(RELATIVE_PATH up "/${DOCPIPE_INSTALL_PLUGIN_DIR}" "/${CMAKE_INSTALL_LIBDIR}")
    string(REGEX REPLACE "/$" "" up "${up}")
    set_target_properties(${target} PROPERTIES INSTALL_RPATH "$ORIGIN/${up}")
  else()
    set_target_properties(${target} PROPERTIES INSTALL_RPATH "${CMAKE_INSTALL_FULL_LIBDIR}")
  endif()
endfunction()
