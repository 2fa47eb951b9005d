# cvm-vmmd's web UI (docs/daemons/cvm-vmmd-webui.md): static files, no
# build step. Included from daemons/CMakeLists.txt.
include(GNUInstallDirs)
set(CVM_VMM_WEBUI_SRC ${CMAKE_CURRENT_LIST_DIR})
file(GLOB cvm_webui_files CONFIGURE_DEPENDS
  ${CMAKE_CURRENT_LIST_DIR}/*.html ${CMAKE_CURRENT_LIST_DIR}/*.js ${CMAKE_CURRENT_LIST_DIR}/*.css ${CMAKE_CURRENT_LIST_DIR}/*.svg)
install(FILES ${cvm_webui_files} DESTINATION ${CMAKE_INSTALL_DATADIR}/cvmkit/webui)
# The default of [vmm] webui_dir (vmm_webui_default_dir) is the install dir.
set_property(SOURCE ${CMAKE_CURRENT_LIST_DIR}/../webui.c APPEND PROPERTY COMPILE_DEFINITIONS
  CVM_VMM_WEBUI_DIR_DEFAULT="${CMAKE_INSTALL_FULL_DATADIR}/cvmkit/webui")

# The serving code (daemons/vmm/webui.c) as a library of its own, for its
# unit test and fuzz target; the daemon links it too.
add_library(cvm_vmm_webui STATIC ${CMAKE_CURRENT_LIST_DIR}/../webui.c)
target_include_directories(cvm_vmm_webui PUBLIC ${CMAKE_CURRENT_LIST_DIR}/..)
target_compile_options(cvm_vmm_webui PRIVATE ${CVM_WARN_DAEMON})
target_link_libraries(cvm_vmm_webui PUBLIC cvm_daemon_common)
foreach(t replay_vmm_webui fuzz_vmm_webui)
  if(TARGET ${t})
    target_link_libraries(${t} PRIVATE cvm_vmm_webui)
  endif()
endforeach()
# The unit test links the shared library first (as unit.dstack_verify does).
if(TARGET test_vmm_webui)
  set_property(TARGET test_vmm_webui PROPERTY LINK_LIBRARIES cvm_vmm_webui cvm_testcommon)
endif()
