# Turns a file into a C array (the live view's page, embedded in the library so that the node
# serves it with no file to install and nothing fetched at run time).
#   cmake -DIN=live.html -DOUT=live_page.c -DNAME=phttp__live_page -P embed.cmake
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR bytes "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n    " body "${body}")
file(WRITE ${OUT} "/* Generated from ${IN} by embed.cmake: do not edit. */\n#include <stddef.h>\n\n"
     "const unsigned char ${NAME}[] = {\n    ${body}0x00};\nconst size_t ${NAME}_len = ${bytes};\n")
