# platoon_protoc_c(OUT_SRCS OUT_HDRS proto files...)
# Compiles .proto files (paths relative to proto/) with protoc-c into the build tree at
# configure-independent build time. Nothing generated is committed.
function(platoon_protoc_c out_srcs out_hdrs)
  set(srcs)
  set(hdrs)
  set(gen_dir ${CMAKE_BINARY_DIR}/gen)
  foreach(rel ${ARGN})
    get_filename_component(dir ${rel} DIRECTORY)
    get_filename_component(base ${rel} NAME_WE)
    set(c ${gen_dir}/${dir}/${base}.pb-c.c)
    set(h ${gen_dir}/${dir}/${base}.pb-c.h)
    add_custom_command(
      OUTPUT ${c} ${h}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${gen_dir}
      COMMAND ${PROTOC_C} --proto_path=${PROJECT_SOURCE_DIR}/proto --c_out=${gen_dir}
              ${PROJECT_SOURCE_DIR}/proto/${rel}
      DEPENDS ${PROJECT_SOURCE_DIR}/proto/${rel}
      COMMENT "protoc-c ${rel}"
      VERBATIM)
    list(APPEND srcs ${c})
    list(APPEND hdrs ${h})
  endforeach()
  set(${out_srcs} ${srcs} PARENT_SCOPE)
  set(${out_hdrs} ${hdrs} PARENT_SCOPE)
endfunction()
