# Where the tests find the real vectors (tests/vectors/README.md):
#  - CVM_REPO_VECTORS_DIR, the repository's tests/vectors: every vector a test
#    names comes from there, and only from there;
#  - CVM_VECTORS_DIR (cache, empty by default): an extra folder of the same
#    layout. Tests that go through every vector of a kind (and the fuzz
#    replay's seeds) take its vectors too, after tests/vectors; a vector whose
#    path tests/vectors also has is taken from tests/vectors only. The tests
#    get it in their environment; set when running a test by hand, the
#    environment variable of the same name wins (empty: none).
set(CVM_REPO_VECTORS_DIR "${PROJECT_SOURCE_DIR}/tests/vectors")
if(NOT CVM_VECTORS_DIR STREQUAL "")
  get_filename_component(_cvm_extra "${CVM_VECTORS_DIR}" ABSOLUTE)
  if(NOT IS_DIRECTORY "${_cvm_extra}")
    message(FATAL_ERROR "CVM_VECTORS_DIR='${CVM_VECTORS_DIR}' is not a folder: name a folder of extra vectors in the "
      "layout of tests/vectors, or pass -DCVM_VECTORS_DIR= for none")
  endif()
  set(CVM_VECTORS_DIR "${_cvm_extra}" CACHE PATH "${_cvm_vectors_doc}" FORCE)
  message(STATUS "Extra vectors: ${CVM_VECTORS_DIR}")
endif()

# cvm_vector_glob(<out> <pattern>...) sets <out> to the files that match each
# pattern (relative to a vectors folder, e.g. tdx/*/quote.bin) under
# tests/vectors, then under CVM_VECTORS_DIR those whose relative path
# tests/vectors lacks. A pattern that matches nothing in tests/vectors is
# passed on as it is, with a warning, so that the test given it fails: the
# repository's vectors are incomplete.
function(cvm_vector_glob out)
  set(files)
  foreach(pattern ${ARGN})
    file(GLOB own RELATIVE "${CVM_REPO_VECTORS_DIR}" "${CVM_REPO_VECTORS_DIR}/${pattern}")
    if(NOT own)
      message(WARNING "tests/vectors/${pattern} matches no file: the repository's vectors are incomplete "
        "(git checkout -- tests/vectors restores them); the tests given it will fail")
      set(own "${pattern}")
    endif()
    list(SORT own)
    foreach(f ${own})
      list(APPEND files "${CVM_REPO_VECTORS_DIR}/${f}")
    endforeach()
    if(NOT CVM_VECTORS_DIR STREQUAL "")
      file(GLOB extra RELATIVE "${CVM_VECTORS_DIR}" "${CVM_VECTORS_DIR}/${pattern}")
      list(SORT extra)
      foreach(f ${extra})
        if(NOT f IN_LIST own)
          list(APPEND files "${CVM_VECTORS_DIR}/${f}")
        endif()
      endforeach()
    endif()
  endforeach()
  set(${out} ${files} PARENT_SCOPE)
endfunction()
