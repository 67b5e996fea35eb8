# Turns a program's --help text into a small manual page (man(7) macros), so that `man platoond`
# shows the same text as `platoond --help`: one source for both.
#   cmake -DPROGRAM=path -DNAME=name -DVERSION=x.y.z -DOUT=file.1 -P help2man.cmake
execute_process(COMMAND ${PROGRAM} --help OUTPUT_VARIABLE help ERROR_VARIABLE help_err
                RESULT_VARIABLE rc)
# A program may print its usage on stderr and exit 2 (platoon-inspect): take whichever has text.
if(help STREQUAL "")
  set(help "${help_err}")
endif()
if(help STREQUAL "")
  message(FATAL_ERROR "${PROGRAM} --help printed nothing (exit ${rc})")
endif()
# Backslashes and leading dots or quotes would be read as roff requests.
string(REPLACE "\\" "\\e" help "${help}")
string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" help "${help}")
string(TOUPPER ${NAME} upper)
file(WRITE ${OUT} ".TH ${upper} 1 \"\" \"platoon ${VERSION}\" \"Platoon\"\n"
                  ".SH NAME\n${NAME} \\- part of Platoon, a Raft-replicated vehicle-state store\n"
                  ".SH SYNOPSIS AND OPTIONS\n.nf\n${help}.fi\n"
                  ".SH SEE ALSO\nplatoond(1), platoonctl(1), platoon-inspect(1)\n")
