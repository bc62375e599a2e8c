# docpipe_add_plugin(<target> SOURCES <files...> [OUTPUT_DIRECTORY <dir>])
#
# Builds a docpipe plugin package: a MODULE library linked to Docpipe::sdk, with hidden
# visibility (only the DOCPIPE_PLUGIN symbols are exported) and named lib<target>.so.
# Install it into the runtime's plugin folder, or point DOCPIPE_PLUGIN_PATH / the
# pipeline's plugin_paths at its folder.
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
endfunction()
